"""Exact counting of a DSL space's distinct complete decision sequences, without enumerating them.

The count walks the module structure once per *environment*: the values of the hyperparameters
that are referenced from more than one place (shared ones), plus a marker per reused module that
was already derived. Everything else is local to one position, so its values multiply the count
and are forgotten straight away; the number of environments stays the product of the shared
domains, not the size of the space.

A hyperparameter counts as shared when a static scan of the space (every alternative, every repeat
copy, every cell part) reaches it from two places. A module object placed at several positions is
derived anew at each (shapes differ) but asks nothing after its first derivation, so the scan
enters it once and the count marks it instead.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from workbench.dsl.core import Dependent, Hyperparameter, Module


class Infinite(Exception):
    """Internal: the space has a continuous hyperparameter."""


class Counting:
    """Counts over ``root``; module ``count`` methods call back into it."""

    def __init__(self, root: Module):
        self.hp_refs: Counter[int] = Counter()
        self.mod_refs: Counter[int] = Counter()
        self._keep: list[Any] = []  # keeps scanned objects alive so ids stay unique
        self._mods: dict[int, Module] = {}
        self._scan(root)
        self.tracked = {k for k, n in self.hp_refs.items() if n > 1}
        # a reused module matters only if it asks something (else every copy counts 1 anyway)
        self.reused = {k for k, n in self.mod_refs.items() if n > 1 and self._asks(k)}

    # -- static scan ----------------------------------------------------------------------------
    def _scan(self, module: Module) -> None:
        stack = [module]
        while stack:
            m = stack.pop()
            self.mod_refs[id(m)] += 1
            if self.mod_refs[id(m)] > 1:
                continue
            self._mods[id(m)] = m
            for hp in m.own_hps():
                self._ref(hp)
            stack.extend(reversed(m.parts()))

    def _asks(self, key: int) -> bool:
        module = self._mods[key]
        seen: set[int] = set()
        stack = [module]
        while stack:
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            if any(isinstance(h, Hyperparameter) for h in m.own_hps()):
                return True
            stack.extend(m.parts())
        return False

    def _ref(self, hp: Any) -> None:
        if not isinstance(hp, Hyperparameter):
            return
        self._keep.append(hp)
        self.hp_refs[id(hp)] += 1
        if isinstance(hp, Dependent):
            for x in hp.inputs:
                self._ref(x)

    def touches_shared(self, module: Module) -> bool:
        """Whether anything below ``module`` is shared (then its count depends on the env)."""
        seen: set[int] = set()
        stack = [module]
        while stack:
            m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            if m is not module and id(m) in self.reused:
                return True
            if any(self._shared_hp(h) for h in m.own_hps()):
                return True
            stack.extend(m.parts())
        return False

    def _shared_hp(self, hp: Any) -> bool:
        if not isinstance(hp, Hyperparameter):
            return False
        if id(hp) in self.tracked:
            return True
        return isinstance(hp, Dependent) and any(self._shared_hp(x) for x in hp.inputs)

    # -- counting -------------------------------------------------------------------------------
    def values(self, hp: Any, env: frozenset) -> list[tuple[Any, frozenset]]:
        """Each possible value of ``hp`` in ``env`` with the environment it leads to."""
        if not isinstance(hp, Hyperparameter):
            return [(hp, env)]
        if isinstance(hp, Dependent):
            combos: list[tuple[list[Any], frozenset]] = [([], env)]
            for x in hp.inputs:
                combos = [(vals + [v], e2) for vals, e in combos for v, e2 in self.values(x, e)]
            return [(hp.fn(*vals), e) for vals, e in combos]
        dom = hp.domain()
        if dom is None:
            raise Infinite
        key = id(hp)
        if key not in self.tracked:
            return [(v, env) for v in dom]
        for k, v in env:
            if k == key:
                return [(v, env)]
        return [(v, env | {(key, v)}) for v in dom]

    def bind(self, hps: tuple[Any, ...], env: frozenset) -> Counter:
        """Ask ``hps`` in order (values unused): the environments and their multiplicities."""
        out: Counter = Counter({env: 1})
        for hp in hps:
            nxt: Counter = Counter()
            for e, n in out.items():
                for _, e2 in self.values(hp, e):
                    nxt[e2] += n
            out = nxt
        return out

    def module(self, m: Module, env: frozenset) -> Counter:
        if id(m) not in self.reused:
            return m.count(self, env)
        mark = (("module", id(m)), True)
        if mark in env:
            return Counter({env: 1})
        return Counter({e | {mark}: n for e, n in m.count(self, env).items()})

    def chain(self, modules: Any, envs: Counter) -> Counter:
        """Count ``modules`` one after the other starting from the environments ``envs``."""
        for m in modules:
            nxt: Counter = Counter()
            for e, n in envs.items():
                for e2, k in self.module(m, e).items():
                    nxt[e2] += n * k
            envs = nxt
        return envs

    def total(self, m: Module) -> int:
        """All sequences of ``m`` on its own (used for cell parts that share nothing)."""
        return sum(m.count(self, frozenset()).values())


def count_space(root: Module) -> int | None:
    """Distinct complete decision sequences of ``root``, or None where a range is continuous.

    >>> from workbench.dsl import choice, linear, one_of, relu, seq, tanh
    >>> act = choice(["relu", "tanh"], name="act")
    >>> block = lambda: seq(linear(choice([8, 16])), one_of({"relu": relu(), "tanh": tanh()},
    ...                                                      choice=act))
    >>> count_space(seq(block(), block()))  # 2 widths x 2 widths x one shared activation (2)
    8
    """
    try:
        return sum(Counting(root).module(root, frozenset()).values())
    except Infinite:
        return None


def enumerate_decisions(space: Any) -> list[tuple[tuple[str, Any], ...]]:
    """Every complete decision sequence of a finite space, as ``((path, choice), ...)`` tuples.

    A policy-driven depth-first search over the decision points: each derivation follows a
    prefix of choices and takes the first option after it; every other option of every point
    past the prefix becomes a new prefix. A derivation that ends in a rejected spec yields no
    sequence. Meant for checking :meth:`size` on small spaces (it derives each sequence once).

    >>> from workbench.dsl import DSLSpace, choice, linear, optional, relu, seq
    >>> space = DSLSpace(seq(linear(choice([2, 4])), optional(relu())), (3,), 2, name="tiny")
    >>> [dict(s) for s in enumerate_decisions(space)]  # doctest: +NORMALIZE_WHITESPACE
    [{'units': 2, 'optional': False}, {'units': 2, 'optional': True},
     {'units': 4, 'optional': False}, {'units': 4, 'optional': True}]
    """
    from workbench.errors import InvalidArchitecture

    found = []
    stack: list[tuple] = [()]
    while stack:
        prefix = stack.pop()
        points: list[Any] = []

        def policy(point: Any, prefix: tuple = prefix, points: list = points) -> Any:
            if not point.options:
                raise InvalidArchitecture(f"at {point.path}: expected finite options to "
                                          f"enumerate, found a continuous range")
            points.append(point)
            i = len(points) - 1
            return prefix[i] if i < len(prefix) else point.options[0]

        try:
            arch = space.derive(policy, backtrack=False)
            found.append(tuple((d.path, d.choice) for d in arch.decisions))
        except InvalidArchitecture as exc:
            if "continuous range" in str(exc):
                raise
        for i in range(len(prefix), len(points)):
            head = prefix + tuple(p.options[0] for p in points[len(prefix):i])
            stack.extend(head + (alt,) for alt in points[i].options[1:])
    return found


def product(values: Any) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def pairs_upper(vertices: int) -> list[tuple[int, int]]:
    """All (i, j) with i < j over ``vertices`` vertices, row by row."""
    return list(itertools.combinations(range(vertices), 2))

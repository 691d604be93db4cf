"""Core of the tree DSL: hyperparameters, the module base class and specification (the
derivation context that asks the policy for each hyperparameter's value).

Users import everything from :mod:`workbench.dsl`; this module holds the pieces every other DSL
module (layers, substitution modules, cells, counting) builds on.

Hyperparameters compare by identity: the same object placed in several positions is *one*
decision, asked the first time a derivation reaches it.

>>> h = choice([16, 32], name="width")
>>> h.domain()
(16, 32)
>>> dependent(lambda w: 2 * w, h).inputs == (h,)
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.architecture import Choice, Decision, DecisionPoint, Node, Policy
from workbench.errors import GrammarError, InvalidArchitecture

Shape = tuple[int, ...]
# Integer ranges up to this many values are offered as an option list; wider ones as a range.
MAX_LISTED_INTS = 1024
# Every node the DSL makes names the module whose import registers the builders of the DSL's own
# symbols (conv2d, dag_cell ...): the compiler imports it when it meets a symbol it lacks, so a
# tree compiles in any process, and importing a space never imports torch.
BUILDERS_MODULE = "workbench.dsl.build"


# -- hyperparameters ------------------------------------------------------------------------------
class Hyperparameter:
    """Base class: an open value chosen during derivation (identity semantics, see module doc)."""

    name: str | None

    def domain(self) -> tuple[Choice, ...] | None:
        """All values in the order offered to policies, or None where continuous."""
        raise NotImplementedError

    def weights(self) -> tuple[float, ...]:
        dom = self.domain() or ()
        return tuple(1.0 / len(dom) for _ in dom)


@dataclass(frozen=True, eq=False)
class Categorical(Hyperparameter):
    """One of a fixed list of values (``choice``)."""

    options: tuple[Choice, ...]
    probs: tuple[float, ...] = ()
    name: str | None = None

    def domain(self) -> tuple[Choice, ...]:
        return self.options

    def weights(self) -> tuple[float, ...]:
        if not self.probs:
            return super().weights()
        total = sum(self.probs)
        return tuple(p / total for p in self.probs)


@dataclass(frozen=True, eq=False)
class IntRange(Hyperparameter):
    """An integer in ``[low, high]`` (inclusive) on a ``step`` grid, uniform."""

    low: int
    high: int
    step: int = 1
    name: str | None = None

    def domain(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1, self.step))

    @property
    def count(self) -> int:
        return (self.high - self.low) // self.step + 1


@dataclass(frozen=True, eq=False)
class FloatRange(Hyperparameter):
    """A real number in ``[low, high]``; ``log=True`` samples log-uniformly."""

    low: float
    high: float
    log: bool = False
    name: str | None = None

    def domain(self) -> None:
        return None

    def sample(self, rng: random.Random) -> float:
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True, eq=False)
class Boolean(Hyperparameter):
    """False or True; ``p`` is the probability of True."""

    p: float = 0.5
    name: str | None = None

    def domain(self) -> tuple[bool, ...]:
        return (False, True)

    def weights(self) -> tuple[float, ...]:
        return (1.0 - self.p, self.p)


@dataclass(frozen=True, eq=False)
class Dependent(Hyperparameter):
    """A value computed from other hyperparameters; never a decision of its own."""

    fn: Callable[..., Any]
    inputs: tuple[Any, ...]
    name: str | None = None

    def domain(self) -> None:
        return None


def choice(options: Sequence[Choice], weights: Sequence[float] | None = None,
           name: str | None = None) -> Categorical:
    """A categorical hyperparameter. ``name`` makes its decision path exactly ``name``.

    >>> choice(["relu", "elu"], name="act").options
    ('relu', 'elu')
    """
    opts = tuple(options)
    if not opts:
        raise GrammarError("choice: expected at least one option, found none")
    if len(set(map(repr, opts))) != len(opts):
        raise GrammarError(f"choice: expected distinct options, found {opts}")
    probs = tuple(float(w) for w in weights) if weights else ()
    if probs and (len(probs) != len(opts) or min(probs) < 0 or sum(probs) <= 0):
        raise GrammarError(f"choice: expected {len(opts)} non-negative weights, found {probs}")
    return Categorical(opts, probs, name)


def int_range(low: int, high: int, step: int = 1, name: str | None = None) -> IntRange:
    """An integer hyperparameter in ``[low, high]`` inclusive.

    >>> int_range(1, 9, 4).domain()
    (1, 5, 9)
    """
    if step < 1 or high < low:
        raise GrammarError(f"int_range: expected low <= high and step >= 1, found "
                           f"low={low} high={high} step={step}")
    return IntRange(int(low), int(high), int(step), name)


def float_range(low: float, high: float, log: bool = False, name: str | None = None) -> FloatRange:
    """A continuous hyperparameter; ``log=True`` needs ``0 < low``.

    >>> 0.1 <= float_range(0.1, 1.0, log=True).sample(random.Random(0)) <= 1.0
    True
    """
    if not high > low or (log and low <= 0):
        raise GrammarError(f"float_range: expected low < high (and low > 0 with log), found "
                           f"low={low} high={high} log={log}")
    return FloatRange(float(low), float(high), bool(log), name)


def boolean(p: float = 0.5, name: str | None = None) -> Boolean:
    """A yes/no hyperparameter, True with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise GrammarError(f"boolean: expected 0 <= p <= 1, found {p}")
    return Boolean(float(p), name)


def dependent(fn: Callable[..., Any], *inputs: Any) -> Dependent:
    """A value computed as ``fn(*values of inputs)`` (hyperparameters or constants)."""
    return Dependent(fn, tuple(inputs))


def join(*parts: str | None) -> str:
    """Join path parts with ``/``, skipping empty ones.

    >>> join("", "cell[0]", None, "units")
    'cell[0]/units'
    """
    return "/".join(p for p in parts if p)


# -- derivation context ---------------------------------------------------------------------------
@dataclass
class Ctx:
    """State of one derivation: the policy, the generator, the decisions so far and the values
    of every hyperparameter already asked (by object identity)."""

    policy: Policy | None
    rng: random.Random
    backtrack: bool
    max_tries: int = 1000
    decisions: list[Decision] = field(default_factory=list)
    values: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # id -> (hp, value)
    owners: dict[str, int] = field(default_factory=dict)  # path -> id of the hp asked there
    drawn: int = 0  # decisions the policy left to the generator (retrying them can help)

    def checkpoint(self) -> tuple[int, int, set[int], set[str]]:
        return len(self.decisions), self.drawn, set(self.values), set(self.owners)

    def restore(self, cp: tuple[int, int, set[int], set[str]]) -> None:
        n, self.drawn, values, owners = cp
        del self.decisions[n:]
        for key in set(self.values) - values:
            del self.values[key]
        for path in set(self.owners) - owners:
            del self.owners[path]

    def value(self, hp: Any, path: str, kind: str = "hp", depth: int = 0) -> Any:
        """The value of ``hp`` (constants pass through); asks the policy the first time."""
        if not isinstance(hp, Hyperparameter):
            return hp
        known = self.values.get(id(hp))
        if known is not None:
            return known[1]
        if isinstance(hp, Dependent):
            args = [self.value(x, f"{path}/arg{i}", kind, depth) for i, x in enumerate(hp.inputs)]
            out = hp.fn(*args)
        else:
            out = self._ask(hp, hp.name or path, kind, depth)
        self.values[id(hp)] = (hp, out)
        return out

    def _ask(self, hp: Hyperparameter, path: str, kind: str, depth: int) -> Choice:
        owner = self.owners.get(path)
        if owner is not None and owner != id(hp):
            raise GrammarError(f"at {path}: expected one hyperparameter per decision path, found "
                               f"two different ones; give one of the modules a distinct name")
        self.owners[path] = id(hp)
        point = _point(hp, path, kind, depth)
        answer = self.policy(point) if self.policy is not None else None
        if answer is None:
            self.drawn += 1
            answer = (hp.sample(self.rng) if isinstance(hp, FloatRange)
                      else _draw_int(hp, self.rng) if isinstance(hp, IntRange) and not point.options
                      else self.rng.choices(point.options, weights=point.weights)[0])
        else:
            answer = _check(point, answer)
        self.decisions.append(Decision(path, answer))
        return answer


def _point(hp: Hyperparameter, path: str, kind: str, depth: int) -> DecisionPoint:
    if isinstance(hp, FloatRange):
        return DecisionPoint(path, (), kind=kind, depth=depth, low=hp.low, high=hp.high,
                             log=hp.log)
    if isinstance(hp, IntRange) and hp.count > MAX_LISTED_INTS:
        return DecisionPoint(path, (), kind=kind, depth=depth, low=hp.low, high=hp.high,
                             integer=True)
    return DecisionPoint(path, hp.domain() or (), hp.weights(), kind=kind, depth=depth)


def _draw_int(hp: IntRange, rng: random.Random) -> int:
    return hp.low + hp.step * rng.randrange(hp.count)


def _check(point: DecisionPoint, answer: Any) -> Choice:
    """The policy's answer as one of the point's values, or a one-line error."""
    if point.options:
        for opt in point.options:  # match by value *and* type so True never stands for 1
            if opt == answer and type(opt) is type(answer):
                return opt
        for opt in point.options:
            if opt == answer and not isinstance(answer, bool) and not isinstance(opt, bool):
                return opt
        shown = ", ".join(map(repr, point.options[:10]))
        raise InvalidArchitecture(f"at {point.path}: expected one of {shown}, found {answer!r}")
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        raise InvalidArchitecture(f"at {point.path}: expected a number in [{point.low}, "
                                  f"{point.high}], found {answer!r}")
    if point.low is None or point.high is None or not point.low <= answer <= point.high:
        raise InvalidArchitecture(f"at {point.path}: expected a number in [{point.low}, "
                                  f"{point.high}], found {answer!r}")
    if point.integer:
        if answer != int(answer):
            raise InvalidArchitecture(f"at {point.path}: expected an integer, found {answer!r}")
        return int(answer)
    return float(answer)


def make_node(symbol: str, label: str, kind: str, path: str, in_shape: Shape, out_shape: Shape,
              args: tuple = (), children: tuple[Node, ...] = (),
              attrs: tuple[tuple[str, Any], ...] = ()) -> Node:
    """A tree node made by the DSL: a :class:`~workbench.architecture.Node` whose ``builders``
    attribute names :data:`BUILDERS_MODULE`.

    >>> make_node("relu", "relu", "layer", "act", (4,), (4,)).attr("builders")
    'workbench.dsl.build'
    """
    return Node(symbol, label, kind, path, in_shape, out_shape, args, tuple(children),
                (*attrs, ("builders", BUILDERS_MODULE)))


def merge_node(merge: str, path: str, shapes: list[Shape]) -> tuple[Node, Shape]:
    """The ``add``/``cat`` merge node of parallel branches, checking their shapes."""
    if not shapes:
        raise InvalidArchitecture(f"at {path or 'root'}: {merge} expects at least one input, "
                                  f"found none")
    first = shapes[0]
    if merge == "add":
        if any(s != first for s in shapes):
            raise InvalidArchitecture(f"at {path or 'root'}: add expects branches of one shape, "
                                      f"found {shapes}")
        return make_node("add", "add", "merge", path, first, first), first
    if any(len(s) != len(first) or s[1:] != first[1:] for s in shapes) or not first:
        raise InvalidArchitecture(f"at {path or 'root'}: concat expects branches equal but for "
                                  f"the channel axis, found {shapes}")
    out = (sum(s[0] for s in shapes), *first[1:])
    return make_node("cat", "cat(1)", "merge", path, first, out, (1,)), out


# -- modules --------------------------------------------------------------------------------------
class Module:
    """Base class of DSL modules (layers and substitution modules).

    Subclasses implement ``derive(ctx, scope, shape) -> (Node, out_shape)``; for counting,
    ``own_hps()`` (hyperparameters the module itself reads), ``parts()`` (every sub-module that
    any choice could use) and ``count(counter, env)``.
    """

    name: str | None

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        raise NotImplementedError

    def own_hps(self) -> tuple[Any, ...]:
        return ()

    def parts(self) -> tuple[Module, ...]:
        return ()

    def count(self, counter: Any, env: frozenset) -> Any:
        raise NotImplementedError


def as_module(obj: Any, where: str) -> Module:
    if not isinstance(obj, Module):
        raise GrammarError(f"{where}: expected a DSL module (a layer, seq, one_of ...), "
                           f"found {type(obj).__name__}")
    return obj

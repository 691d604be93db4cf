"""Substitution modules of the tree DSL: they expand into other modules once their
hyperparameter is chosen.

:func:`seq` (one after the other), :func:`one_of` (or), :func:`repeat` (tied or untied copies),
:func:`optional`, :func:`permutation` (order of sub-modules, see :func:`orders`),
:func:`split_combine` (parallel branches merged by add or concat) and :func:`residual`.
Each module's ``derive`` asks its own hyperparameters at a path below the enclosing scope (see
``docs/dsl.md`` for the exact paths) and ``count`` counts its decision sequences for
:func:`workbench.dsl.count.count_space`.

>>> import random
>>> from workbench.dsl import DSLSpace, linear, relu, tanh
>>> space = DSLSpace(seq(linear(4), one_of({"relu": relu(), "tanh": tanh()}, name="act")), (3,),
...                  2, name="doc")
>>> space.sample(random.Random(0)).text
'act="tanh"'
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.architecture import Node
from workbench.dsl.core import (
    Categorical,
    Ctx,
    Hyperparameter,
    Module,
    Shape,
    as_module,
    boolean,
    choice,
    join,
    make_node,
    merge_node,
)
from workbench.errors import GrammarError, InvalidArchitecture

__all__ = ["OneOf", "Optional", "Permutation", "Repeat", "Residual", "Seq", "SplitCombine",
           "one_of", "optional", "orders", "permutation", "repeat", "residual", "seq",
           "split_combine"]


def _seq_node(label: str, path: str, shape: Shape, children: list[Node], out: Shape) -> Node:
    if not children:
        return make_node("identity", "identity", "layer", path, shape, shape)
    return make_node("sequential", label, "module", path, shape, out, (), tuple(children))


def _chain(ctx: Ctx, items: Sequence[tuple[Module, str]], shape: Shape) -> tuple[list[Node], Shape]:
    nodes = []
    for module, scope in items:
        node, shape = module.derive(ctx, scope, shape)
        nodes.append(node)
    return nodes, shape


@dataclass(frozen=True, eq=False)
class Seq(Module):
    """Modules one after the other; a name adds a path level."""

    items: tuple[Module, ...]
    name: str | None = None

    def parts(self) -> tuple[Module, ...]:
        return self.items

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        nodes, out = _chain(ctx, [(m, where) for m in self.items], shape)
        return _seq_node(self.name or "seq", where, shape, nodes, out), out

    def count(self, counting: Any, env: frozenset) -> Counter:
        return counting.chain(self.items, Counter({env: 1}))


@dataclass(frozen=True, eq=False)
class OneOf(Module):
    """One of several modules, chosen at ``<scope>/<name>``; the chosen one is derived under
    ``<scope>/<name>/<key>``."""

    options: tuple[tuple[str, Module], ...]
    choice: Any
    name: str = "op"

    def own_hps(self) -> tuple[Any, ...]:
        return (self.choice,)

    def parts(self) -> tuple[Module, ...]:
        return tuple(m for _, m in self.options)

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        key = ctx.value(self.choice, where, "one_of", where.count("/"))
        return dict(self.options)[key].derive(ctx, join(where, str(key)), shape)

    def count(self, counting: Any, env: frozenset) -> Counter:
        table = dict(self.options)
        out: Counter = Counter()
        for key, e in counting.values(self.choice, env):
            for e2, n in counting.module(table[key], e).items():
                out[e2] += n
        return out


@dataclass(frozen=True, eq=False)
class Repeat(Module):
    """``n`` copies of a body one after the other (see :func:`repeat`)."""

    body: Module | Callable[[int], Module]
    n: Any
    tied: bool
    name: str = "repeat"
    _bodies: dict[int, Module] = field(default_factory=dict, repr=False)

    def body_at(self, i: int) -> Module:
        if isinstance(self.body, Module):
            return self.body
        i = 0 if self.tied else i
        if i not in self._bodies:  # one object per copy, so its hyperparameters are its own
            self._bodies[i] = as_module(self.body(i), f"repeat {self.name!r} body({i})")
        return self._bodies[i]

    def _max(self) -> int:
        if not isinstance(self.n, Hyperparameter):
            return int(self.n)
        dom = self.n.domain()
        if dom is None:
            raise GrammarError(f"repeat {self.name!r}: expected a finite count, found a "
                               f"continuous range")
        return max(int(v) for v in dom)

    def own_hps(self) -> tuple[Any, ...]:
        return (self.n,)

    def parts(self) -> tuple[Module, ...]:
        return (self.body_at(0),) if self.tied else tuple(map(self.body_at, range(self._max())))

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        n = int(ctx.value(self.n, join(where, "n"), "repeat", where.count("/")))
        items = [(self.body_at(i), where if self.tied else f"{where}[{i}]") for i in range(n)]
        nodes, out = _chain(ctx, items, shape)
        return _seq_node(f"repeat({n})", where, shape, nodes, out), out

    def count(self, counting: Any, env: frozenset) -> Counter:
        out: Counter = Counter()
        for n, e in counting.values(self.n, env):
            n = int(n)
            bodies = [self.body_at(0)] if self.tied and n else list(map(self.body_at, range(n)))
            for e2, k in counting.chain(bodies, Counter({e: 1})).items():
                out[e2] += k
        return out


@dataclass(frozen=True, eq=False)
class Optional(Module):
    """A module or nothing, switched at ``<scope>/<name>``; the module lives under that path."""

    module: Module
    switch: Any
    name: str = "optional"

    def own_hps(self) -> tuple[Any, ...]:
        return (self.switch,)

    def parts(self) -> tuple[Module, ...]:
        return (self.module,)

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        if ctx.value(self.switch, where, "optional", where.count("/")):
            return self.module.derive(ctx, where, shape)
        return make_node("identity", "identity", "layer", where, shape, shape), shape

    def count(self, counting: Any, env: frozenset) -> Counter:
        out: Counter = Counter()
        for on, e in counting.values(self.switch, env):
            for e2, n in (counting.module(self.module, e) if on else {e: 1}).items():
                out[e2] += n
        return out


@dataclass(frozen=True, eq=False)
class Permutation(Module):
    """The modules in a chosen order (``"1,0"`` = second first), chosen at ``<scope>/<name>``.
    The modules keep the enclosing scope, so their paths do not depend on the order."""

    items: tuple[Module, ...]
    order: Any
    name: str = "order"

    def own_hps(self) -> tuple[Any, ...]:
        return (self.order,)

    def parts(self) -> tuple[Module, ...]:
        return self.items

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        order = str(ctx.value(self.order, where, "permutation", where.count("/")))
        items = [(self.items[int(i)], scope) for i in order.split(",")]
        nodes, out = _chain(ctx, items, shape)
        return _seq_node(f"permutation({order})", where, shape, nodes, out), out

    def count(self, counting: Any, env: frozenset) -> Counter:
        out: Counter = Counter()
        for order, e in counting.values(self.order, env):
            items = [self.items[int(i)] for i in str(order).split(",")]
            for e2, n in counting.chain(items, Counter({e: 1})).items():
                out[e2] += n
        return out


def _branching(label: str, path: str, shape: Shape, branches: list[Node], merge: str):
    k = len(branches)
    split = make_node("clone", f"clone({k})", "split", path, shape, shape, (k,))
    mnode, out = merge_node(merge, path, [b.out_shape for b in branches])
    node = make_node("branching", label, "module", path, shape, out, (),
                     (split, *branches, mnode), (("k", k),))
    return node, out


@dataclass(frozen=True, eq=False)
class SplitCombine(Module):
    """Parallel branches on the same input, merged by ``add`` or ``concat`` (channels)."""

    branches: tuple[Module, ...]
    merge: str
    name: str = "split"

    def parts(self) -> tuple[Module, ...]:
        return self.branches

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        nodes = [b.derive(ctx, f"{where}[{i}]", shape)[0] for i, b in enumerate(self.branches)]
        return _branching(f"split_combine({self.merge})", where, shape, nodes, self.merge)

    def count(self, counting: Any, env: frozenset) -> Counter:
        return counting.chain(self.branches, Counter({env: 1}))


@dataclass(frozen=True, eq=False)
class Residual(Module):
    """``body(x) + shortcut(x)``: the shortcut is the identity, or a 1x1 conv / linear projection
    when the body changes the shape."""

    body: Module
    name: str = "residual"

    def parts(self) -> tuple[Module, ...]:
        return (self.body,)

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        body, out = self.body.derive(ctx, where, shape)
        path = join(where, "shortcut")
        if out == shape:
            short = make_node("identity", "identity", "layer", path, shape, shape)
        elif len(shape) == 3 and len(out) == 3:
            s = -(-shape[1] // out[1])
            if (-(-shape[1] // s), -(-shape[2] // s)) != out[1:]:
                raise InvalidArchitecture(f"at {where}: residual expects the body to keep or "
                                          f"stride the spatial size, found {shape} -> {out}")
            short = make_node("conv2d", f"conv2d({out[0]},1,{s})", "layer", path, shape, out,
                         (shape[0], out[0], 1, s, 0))
        elif len(shape) == 1 and len(out) == 1:
            short = make_node("linear", f"linear({out[0]})", "layer", path, shape, out, (out[0],))
        else:
            raise InvalidArchitecture(f"at {where}: residual expects the body to keep the rank, "
                                      f"found {shape} -> {out}")
        return _branching("residual", where, shape, [body, short], "add")

    def count(self, counting: Any, env: frozenset) -> Counter:
        return counting.module(self.body, env)


# -- constructors ---------------------------------------------------------------------------------
def seq(*modules: Module, name: str | None = None) -> Seq:
    """Modules one after the other."""
    return Seq(tuple(as_module(m, "seq") for m in modules), name)


def one_of(options: Mapping[str, Module], choice: Any = None,
           weights: Sequence[float] | None = None, name: str = "op") -> OneOf:
    """Choose one module by key. Pass ``choice`` (a hyperparameter over the keys) to share it."""
    keys = tuple(options)
    if choice is None:
        choice = Categorical(keys, tuple(weights or ()))
    dom = choice.domain() if isinstance(choice, Hyperparameter) else None
    if dom is None or set(dom) != set(keys):
        raise GrammarError(f"one_of {name!r}: expected a choice over {keys}, found {dom}")
    return OneOf(tuple((k, as_module(m, f"one_of {name!r}")) for k, m in options.items()),
                 choice, name)


def repeat(body: Module | Callable[[int], Module], n: Any, *, tied: bool = False,
           name: str = "repeat") -> Repeat:
    """``n`` copies of ``body`` in sequence (``n`` a constant or a hyperparameter).

    Untied (default): ``body`` is a function ``i -> module`` called once per copy index, so each
    copy has its own hyperparameters, asked under ``<name>[i]/...``; hyperparameters created
    outside the function are shared by all copies. Tied: one set of choices, asked once under
    ``<name>/...``, copied to every repeat (``body`` may be a module or a function).
    """
    if not tied and isinstance(body, Module):
        raise GrammarError(f"repeat {name!r}: expected a function i -> module for an untied "
                           f"repeat (each copy needs its own hyperparameters), found a module")
    if not isinstance(body, Module) and not callable(body):
        raise GrammarError(f"repeat {name!r}: expected a module or a function, found "
                           f"{type(body).__name__}")
    return Repeat(body, n, bool(tied), name)


def optional(module: Module, switch: Any = None, p: float = 0.5,
             name: str = "optional") -> Optional:
    """``module`` or nothing; pass ``switch`` (a :func:`boolean`) to share the switch."""
    return Optional(as_module(module, f"optional {name!r}"),
                    boolean(p) if switch is None else switch, name)


def orders(k: int, name: str | None = None) -> Categorical:
    """A choice over all orders of ``k`` modules, e.g. to share one order between permutations.

    >>> orders(2).options
    ('0,1', '1,0')
    """
    return choice([",".join(map(str, p)) for p in itertools.permutations(range(k))], name=name)


def permutation(modules: Sequence[Module], order: Any = None, name: str = "order") -> Permutation:
    """The modules in a chosen order; pass ``order`` (from :func:`orders`) to share it."""
    items = tuple(as_module(m, f"permutation {name!r}") for m in modules)
    order = orders(len(items)) if order is None else order
    valid = set(orders(len(items)).options)
    dom = order.domain() if isinstance(order, Hyperparameter) else (order,)
    if not dom or not set(map(str, dom)) <= valid:
        raise GrammarError(f"permutation {name!r}: expected orders of {len(items)} modules "
                           f"like {sorted(valid)[0]!r}, found {dom}")
    return Permutation(items, order, name)


def split_combine(branches: Sequence[Module], merge: str = "add",
                  name: str = "split") -> SplitCombine:
    """Parallel branches merged by ``"add"`` (equal shapes) or ``"concat"`` (channel axis)."""
    if merge not in ("add", "concat"):
        raise GrammarError(f"split_combine {name!r}: expected merge 'add' or 'concat', "
                           f"found {merge!r}")
    if not branches:
        raise GrammarError(f"split_combine {name!r}: expected at least one branch, found none")
    return SplitCombine(tuple(as_module(b, f"split_combine {name!r}") for b in branches),
                        merge, name)


def residual(body: Module, name: str = "residual") -> Residual:
    """``body(x) + x`` (with a projection shortcut when the body changes the shape)."""
    return Residual(as_module(body, f"residual {name!r}"), name)

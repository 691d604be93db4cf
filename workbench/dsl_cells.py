"""DAG cells: vertices and edges, each edge choosing an operation (or a plain on/off bit), plus a
*wiring* that turns the chosen edges into the cell's graph or rejects the spec.

Vertices are numbered ``0`` (the cell input), ``1..k`` (intermediate) and ``k+1`` (the output).
An intermediate vertex sums its incoming edges (each the source state, through the edge's
operation if it has one) and applies its vertex module; the output vertex merges its incoming
edges by ``add`` or ``concat`` (channels). Derivation order: every decided edge first, row by row
(``edge[0,1]``, ``edge[0,2]``, ...), then the wiring; a rejected spec is re-drawn (sampling) or is
an error (replay); then, for each kept vertex in order, its live incoming edge operations and its
vertex module. Edges cut away by the wiring keep their decision but never ask what is inside.

Two wirings ship:

* :func:`nb101_wiring` (NAS-Bench-101): every pair ``i < j`` over all ``k + 2`` vertices is an edge
  bit. Vertices not on an input-to-output path are pruned with their edges (as NAS-Bench-101
  does); the spec is rejected when the output is unreachable or more than ``max_edges`` edges
  remain after pruning.
* :func:`genetic_wiring` (Genetic CNN): one bit per pair of intermediate vertices; vertices with
  neither inputs nor outputs are dropped, vertices without inputs read the cell input, vertices
  without outputs feed the output; when every vertex is dropped the output is the input.

>>> from workbench.dsl_layers import identity
>>> nb101_wiring(9).apply(2, frozenset({(0, 1), (1, 3), (0, 2)}))
CellGraph(vertices=(1,), edges=((0, 1), (1, 3)))
>>> genetic_wiring().apply(3, frozenset({(1, 2)}))
CellGraph(vertices=(1, 2), edges=((0, 1), (1, 2), (2, 4)))
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.architecture import Node
from workbench.dsl_core import (
    Boolean,
    Categorical,
    Ctx,
    Module,
    Shape,
    as_module,
    join,
    merge_node,
)
from workbench.dsl_count import pairs_upper, product
from workbench.errors import DerivationFailed, GrammarError, InvalidArchitecture

Pair = tuple[int, int]
# Cells with at most this many decided edges are counted by plain enumeration.
ENUMERATE_UP_TO = 14


@dataclass(frozen=True)
class CellGraph:
    """A cell's effective graph: kept intermediate vertices and edges (implicit ones included)."""

    vertices: tuple[int, ...]
    edges: tuple[Pair, ...]


@dataclass(frozen=True)
class NB101Wiring:
    """NAS-Bench-101 rules (see the module doc)."""

    max_edges: int | None = 9

    def pairs(self, k: int) -> list[Pair]:
        return pairs_upper(k + 2)

    def apply(self, k: int, active: frozenset) -> CellGraph | str:
        out = k + 1
        fwd = {0}
        for j in range(1, k + 2):
            if any(i in fwd and (i, j) in active for i in range(j)):
                fwd.add(j)
        bwd = {out}
        for i in range(k, -1, -1):
            if any(j in bwd and (i, j) in active for j in range(i + 1, k + 2)):
                bwd.add(i)
        if out not in fwd:
            return "the output is not reachable from the input"
        live = tuple(sorted(e for e in active if e[0] in fwd and e[1] in bwd))
        if self.max_edges is not None and len(live) > self.max_edges:
            return f"{len(live)} edges on input-output paths, expected at most {self.max_edges}"
        return CellGraph(tuple(v for v in range(1, out) if v in fwd and v in bwd), live)

    def arrays(self, k: int, bits: dict[Pair, Any]) -> tuple[Any, dict, dict]:
        """Vectorised :meth:`apply` over numpy arrays of edge bits: (valid, kept, live)."""
        import numpy as np

        n = k + 2
        one = np.ones_like(next(iter(bits.values())), dtype=bool)
        fwd = {0: one}
        for j in range(1, n):
            fwd[j] = np.logical_or.reduce([fwd[i] & bits[(i, j)] for i in range(j)])
        bwd = {n - 1: one}
        for i in range(n - 2, -1, -1):
            bwd[i] = np.logical_or.reduce([bits[(i, j)] & bwd[j] for j in range(i + 1, n)])
        live = {(i, j): b & fwd[i] & bwd[j] for (i, j), b in bits.items()}
        valid = fwd[n - 1].copy()
        if self.max_edges is not None:
            valid &= sum(x.astype(np.int64) for x in live.values()) <= self.max_edges
        kept = {v: fwd[v] & bwd[v] for v in range(1, n - 1)}
        return valid, kept, live


@dataclass(frozen=True)
class GeneticWiring:
    """Genetic CNN rules (see the module doc)."""

    def pairs(self, k: int) -> list[Pair]:
        return [(i + 1, j + 1) for i, j in pairs_upper(k)]

    def apply(self, k: int, active: frozenset) -> CellGraph:
        has_in = {j for _, j in active}
        has_out = {i for i, _ in active}
        kept = tuple(v for v in range(1, k + 1) if v in has_in or v in has_out)
        edges = set(active)
        edges |= {(0, v) for v in kept if v not in has_in}
        edges |= {(v, k + 1) for v in kept if v not in has_out}
        return CellGraph(kept, tuple(sorted(edges)) if kept else ((0, k + 1),))

    def arrays(self, k: int, bits: dict[Pair, Any]) -> tuple[Any, dict, dict]:
        import numpy as np

        zero = np.zeros_like(next(iter(bits.values())), dtype=bool)
        kept = {v: np.logical_or.reduce([zero] + [b for (i, j), b in bits.items() if v in (i, j)])
                for v in range(1, k + 1)}
        return ~zero, kept, dict(bits)


def nb101_wiring(max_edges: int | None = 9) -> NB101Wiring:
    """NAS-Bench-101 wiring: prune vertices off input-output paths, reject over ``max_edges``."""
    return NB101Wiring(max_edges)


def genetic_wiring() -> GeneticWiring:
    """Genetic CNN wiring: implicit input/output edges, isolated vertices dropped."""
    return GeneticWiring()


@dataclass(frozen=True, eq=False)
class DagCell(Module):
    """A DAG cell (see :func:`dag_cell`)."""

    k: int
    vertex: Module | Callable[[int], Module]
    wiring: Any
    edge_ops: tuple[tuple[str, Any], ...] | None
    edge_p: float
    merge: str
    check: Callable[[CellGraph], str | None] | None
    name: str
    _edges: dict[Pair, Any] = field(default_factory=dict, repr=False)
    _parts: dict[Any, Module] = field(default_factory=dict, repr=False)

    def pairs(self) -> list[Pair]:
        return self.wiring.pairs(self.k)

    def edge_hp(self, pair: Pair) -> Any:
        if pair not in self._edges:  # one hyperparameter object per edge, made once
            self._edges[pair] = (Boolean(self.edge_p) if self.edge_ops is None else
                                 Categorical(("none", *(n for n, _ in self.edge_ops))))
        return self._edges[pair]

    def vertex_module(self, v: int) -> Module:
        if isinstance(self.vertex, Module):
            return self.vertex
        if v not in self._parts:
            self._parts[v] = as_module(self.vertex(v), f"dag_cell {self.name!r} vertex({v})")
        return self._parts[v]

    def edge_module(self, pair: Pair, op: str) -> Module:
        made = dict(self.edge_ops or ())[op]
        if isinstance(made, Module):
            return made
        key = (pair, op)
        if key not in self._parts:
            self._parts[key] = as_module(made(*pair), f"dag_cell {self.name!r} edge {op}")
        return self._parts[key]

    def own_hps(self) -> tuple[Any, ...]:
        return tuple(self.edge_hp(p) for p in self.pairs())

    def parts(self) -> tuple[Module, ...]:
        edges = [self.edge_module(p, op) for p in self.pairs() for op, _ in self.edge_ops or ()]
        return (*(self.vertex_module(v) for v in range(1, self.k + 1)), *edges)

    # -- derivation -----------------------------------------------------------------------------
    def _graph(self, active: dict[Pair, Any]) -> CellGraph | str:
        graph = self.wiring.apply(self.k, frozenset(active))
        if isinstance(graph, CellGraph) and self.check is not None:
            return self.check(graph) or graph
        return graph

    def derive(self, ctx: Ctx, scope: str, shape: Shape) -> tuple[Node, Shape]:
        where = join(scope, self.name)
        depth = where.count("/") + 1
        result: CellGraph | str = ""
        for _ in range(max(ctx.max_tries, 1)):
            cp = ctx.checkpoint()
            active = {}
            for i, j in self.pairs():
                v = ctx.value(self.edge_hp((i, j)), join(where, f"edge[{i},{j}]"), "edge", depth)
                if v is not False and v != "none":
                    active[(i, j)] = v
            result = self._graph(active)
            if isinstance(result, CellGraph):
                return self._build(ctx, where, shape, active, result)
            if not ctx.backtrack:
                raise InvalidArchitecture(f"at {where}: expected a valid cell spec, found one "
                                          f"that is rejected ({result})")
            drawn = ctx.drawn - cp[1]
            ctx.restore(cp)
            if not drawn:  # the policy fixed every edge: re-asking gives the same spec
                raise DerivationFailed(f"at {where}: cell spec rejected ({result})")
        raise DerivationFailed(f"at {where}: no valid cell spec in {ctx.max_tries} tries "
                               f"(last: {result})")

    def _build(self, ctx: Ctx, where: str, shape: Shape, active: dict[Pair, Any],
               graph: CellGraph) -> tuple[Node, Shape]:
        children: list[Node] = []
        state = {0: 0}
        shapes = [shape]

        def incoming(j: int) -> tuple[tuple[int, int], ...]:
            ins = []
            for i, jj in graph.edges:
                if jj != j:
                    continue
                op = active.get((i, j))
                child = -1
                if self.edge_ops is not None and op is not None:
                    path = join(where, f"edge[{i},{j}]", str(op))
                    node, _ = self.edge_module((i, j), op).derive(ctx, path, shapes[state[i]])
                    children.append(node)
                    child = len(children) - 1
                ins.append((state[i], child))
            return tuple(ins)

        def in_shapes(ins: tuple[tuple[int, int], ...]) -> list[Shape]:
            return [children[c].out_shape if c >= 0 else shapes[s] for s, c in ins]

        plan = []
        for v in graph.vertices:
            ins = incoming(v)
            merged, _ = merge_node("add", join(where, f"v{v}"), in_shapes(ins))
            node, out = self.vertex_module(v).derive(ctx, join(where, f"v{v}"), merged.out_shape)
            children.append(node)
            plan.append((ins, len(children) - 1))
            state[v] = len(shapes)
            shapes.append(out)
        outs = incoming(self.k + 1)
        _, out = merge_node(self.merge, join(where, "output"), in_shapes(outs))
        attrs = (("plan", tuple(plan)), ("outputs", outs), ("merge", self.merge))
        node = Node("dag_cell", f"dag_cell({self.k},{self.merge})", "cell", where, shape, out,
                    (), tuple(children), attrs)
        return node, out

    # -- counting -------------------------------------------------------------------------------
    def count(self, counting: Any, env: frozenset) -> Counter:
        pairs = self.pairs()
        if (len(pairs) <= ENUMERATE_UP_TO or self.check is not None
                or not hasattr(self.wiring, "arrays") or counting.touches_shared(self)):
            return count_enumerate(self, counting, env)
        return Counter({env: count_vectorized(self, counting)})


def count_enumerate(cell: DagCell, counting: Any, env: frozenset) -> Counter:
    """Count by going through every edge assignment (any wiring, any check, shared parts)."""
    out: Counter = Counter()
    pairs = cell.pairs()
    combos: list[tuple[dict[Pair, Any], frozenset]] = [({}, env)]
    for p in pairs:
        combos = [({**a, p: v}, e2) for a, e in combos
                  for v, e2 in counting.values(cell.edge_hp(p), e)]
    for assignment, e in combos:
        active = {p: v for p, v in assignment.items() if v is not False and v != "none"}
        graph = cell._graph(active)
        if isinstance(graph, str):
            continue
        parts = []
        for v in graph.vertices:
            parts += [cell.edge_module(ed, active[ed]) for ed in graph.edges
                      if ed[1] == v and cell.edge_ops is not None and ed in active]
            parts.append(cell.vertex_module(v))
        parts += [cell.edge_module(ed, active[ed]) for ed in graph.edges
                  if ed[1] == cell.k + 1 and cell.edge_ops is not None and ed in active]
        for e2, n in counting.chain(parts, Counter({e: 1})).items():
            out[e2] += n
    return out


def count_vectorized(cell: DagCell, counting: Any) -> int:
    """Count with numpy over all 2**edges on/off patterns (the cell shares nothing outside)."""
    import numpy as np

    pairs = cell.pairs()
    vertex = {v: counting.total(cell.vertex_module(v)) for v in range(1, cell.k + 1)}
    dead = {p: 1 if cell.edge_ops is None else len(cell.edge_ops) for p in pairs}
    live_n = {p: 1 if cell.edge_ops is None else
              sum(counting.total(cell.edge_module(p, op)) for op, _ in cell.edge_ops)
              for p in pairs}
    masks = np.arange(2 ** len(pairs), dtype=np.int64)
    bits = {p: ((masks >> b) & 1).astype(bool) for b, p in enumerate(pairs)}
    valid, kept, live = cell.wiring.arrays(cell.k, bits)
    bound = product(max(live_n[p], dead[p], 1) for p in pairs) * product(vertex.values())
    dtype = np.int64 if bound * len(masks) < 2 ** 62 else object
    weight = np.ones(len(masks), dtype=dtype)
    for p in pairs:
        if live_n[p] != 1 or dead[p] != 1:
            weight *= np.where(bits[p], np.where(live[p], live_n[p], dead[p]), 1).astype(dtype)
    for v, n in vertex.items():
        if n != 1:
            weight *= np.where(kept[v], n, 1).astype(dtype)
    return int(weight[valid].sum())


def dag_cell(k: int, vertex: Module | Callable[[int], Module], *, wiring: Any = None,
             edge_ops: dict[str, Any] | None = None, edge_p: float = 0.5, merge: str = "concat",
             check: Callable[[CellGraph], str | None] | None = None,
             name: str = "cell") -> DagCell:
    """A DAG cell with ``k`` intermediate vertices.

    ``vertex`` is the vertex module or a function ``v -> module`` (one object per vertex, so each
    has its own hyperparameters, asked under ``<name>/v<v>/``). Edges are on/off bits
    (probability ``edge_p``) or, with ``edge_ops`` (name -> module or ``(i, j) -> module``), a
    choice among ``"none"`` and the operations. ``wiring`` defaults to :func:`nb101_wiring`;
    ``check(graph)`` may reject a graph the wiring accepts by returning the reason.

    >>> from workbench.dsl_layers import relu
    >>> cell = dag_cell(1, relu(), wiring=nb101_wiring(None))
    >>> [p for p in cell.pairs()]
    [(0, 1), (0, 2), (1, 2)]
    """
    if k < 1:
        raise GrammarError(f"dag_cell {name!r}: expected at least one vertex, found k={k}")
    if merge not in ("add", "concat"):
        raise GrammarError(f"dag_cell {name!r}: expected merge 'add' or 'concat', found {merge!r}")
    if edge_ops is not None and ("none" in edge_ops or not edge_ops):
        raise GrammarError(f"dag_cell {name!r}: expected edge operations other than 'none', "
                           f"found {sorted(edge_ops)}")
    if not 0.0 < edge_p < 1.0:
        raise GrammarError(f"dag_cell {name!r}: expected edge_p in (0, 1), found {edge_p}")
    if not isinstance(vertex, Module) and not callable(vertex):
        raise GrammarError(f"dag_cell {name!r}: expected a vertex module or function, found "
                           f"{type(vertex).__name__}")
    ops = tuple(edge_ops.items()) if edge_ops is not None else None
    return DagCell(int(k), vertex, wiring or nb101_wiring(), ops, float(edge_p), merge, check,
                   name)


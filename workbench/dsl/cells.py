"""DAG cells: vertices and edges, each edge choosing an operation (or a plain on/off bit), plus a
*wiring* that turns the chosen edges into the cell's graph or rejects the spec.

Vertices are numbered ``0`` (the cell input), ``1..k`` (intermediate) and ``k+1`` (the output).
An intermediate vertex sums its incoming edges (each the source state, through the edge's
operation if it has one) and applies its vertex module; the output vertex merges its incoming
edges by ``add`` or ``concat`` (channels). An edge is *absent* when its bit is off or its
operation is the zero op (:func:`~workbench.dsl.layers.zero`, an ordinary named option: put it
anywhere among ``edge_ops`` or leave it out, then every edge is present).

A vertex that no present edge from the input reaches is zero: it drops out with the edges leaving
it, and nothing inside it or them is asked. When the output itself is zero, the cell outputs zeros
of its input's shape (NAS-Bench-201 has 341 such cells; a wiring such as :func:`nb101_wiring`
rejects them instead).

Derivation order: every decided edge first, in the wiring's pair order, then the wiring; a
rejected spec is re-drawn (sampling) or is an error (replay); then, for each live vertex in order,
its live incoming edge operations and its vertex module. Edges cut away keep their decision but
never ask what is inside.

Three wirings ship:

* :func:`nb101_wiring` (NAS-Bench-101): every pair ``i < j`` over all ``k + 2`` vertices is an edge,
  row by row. Vertices not on an input-to-output path are pruned with their edges (as
  NAS-Bench-101 does); the spec is rejected when the output is unreachable or more than
  ``max_edges`` edges remain after pruning.
* :func:`genetic_wiring` (Genetic CNN): one bit per pair of intermediate vertices; vertices with
  neither inputs nor outputs are dropped, vertices without inputs read the cell input, vertices
  without outputs feed the output; when every vertex is dropped the output is the input.
* :func:`dense_wiring` (NAS-Bench-201, DARTS): every pair ``i < j``, listed by target vertex
  (``(0,1), (0,2), (1,2), (0,3) ...``); the chosen edges are the graph, nothing is rejected.

A wiring is any object with ``pairs(k) -> [(i, j), ...]`` (the decided edges, in asking order)
and ``apply(k, present) -> CellGraph | str`` (the graph, or why the spec is rejected); a graph
that breaks the rules above is a :class:`~workbench.errors.GrammarError` naming the cell.

>>> nb101_wiring(9).apply(2, frozenset({(0, 1), (1, 3), (0, 2)}))
CellGraph(vertices=(1,), edges=((0, 1), (1, 3)))
>>> genetic_wiring().apply(3, frozenset({(1, 2)}))
CellGraph(vertices=(1, 2), edges=((0, 1), (1, 2), (2, 4)))
>>> dense_wiring().pairs(2)
[(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
>>> live_part(dense_wiring().apply(2, frozenset({(1, 2), (2, 3)})), 2)  # vertex 1 has no input
CellGraph(vertices=(), edges=())
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from workbench.architecture import Node
from workbench.dsl.core import (
    Boolean,
    Categorical,
    Ctx,
    Module,
    Shape,
    as_module,
    join,
    make_node,
    merge_node,
)
from workbench.dsl.count import pairs_upper, product
from workbench.dsl.layers import is_zero
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


@dataclass(frozen=True)
class DenseWiring:
    """NAS-Bench-201 / DARTS rules (see the module doc): the present edges as they are."""

    def pairs(self, k: int) -> list[Pair]:
        return [(i, j) for j in range(1, k + 2) for i in range(j)]

    def apply(self, k: int, active: frozenset) -> CellGraph:
        return CellGraph(tuple(range(1, k + 1)), tuple(sorted(active)))

    def arrays(self, k: int, bits: dict[Pair, Any]) -> tuple[Any, dict, dict]:
        import numpy as np

        one = np.ones_like(next(iter(bits.values())), dtype=bool)
        fwd = {0: one}
        for j in range(1, k + 2):
            fwd[j] = np.logical_or.reduce([fwd[i] & bits[(i, j)] for i in range(j)])
        live = {(i, j): b & fwd[i] for (i, j), b in bits.items()}
        return one, {v: fwd[v] for v in range(1, k + 1)}, live


def live_part(graph: CellGraph, k: int) -> CellGraph:
    """The part of ``graph`` the input reaches: a vertex without a live incoming edge is zero and
    drops out with every edge leaving it (vertices ascend and edges point forward, so one pass
    settles it). Wirings that prune or feed every vertex already give their live part."""
    live = {0}
    edges: list[Pair] = []
    for v in (*graph.vertices, k + 1):
        ins = [e for e in graph.edges if e[1] == v and e[0] in live]
        if ins:
            live.add(v)
            edges += ins
    return CellGraph(tuple(v for v in graph.vertices if v in live), tuple(sorted(edges)))


def nb101_wiring(max_edges: int | None = 9) -> NB101Wiring:
    """NAS-Bench-101 wiring: prune vertices off input-output paths, reject over ``max_edges``."""
    return NB101Wiring(max_edges)


def genetic_wiring() -> GeneticWiring:
    """Genetic CNN wiring: implicit input/output edges, isolated vertices dropped."""
    return GeneticWiring()


def dense_wiring() -> DenseWiring:
    """NAS-Bench-201 / DARTS wiring: every pair by target vertex, the present edges as they are."""
    return DenseWiring()


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
                                 Categorical(tuple(n for n, _ in self.edge_ops)))
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

    def present(self, pair: Pair, value: Any) -> bool:
        """Whether an edge with this decided value is in the graph (not off, not the zero op)."""
        if self.edge_ops is None:
            return bool(value)
        return not is_zero(self.edge_module(pair, value))

    def own_hps(self) -> tuple[Any, ...]:
        return tuple(self.edge_hp(p) for p in self.pairs())

    def parts(self) -> tuple[Module, ...]:
        edges = [self.edge_module(p, op) for p in self.pairs() for op, _ in self.edge_ops or ()]
        return (*(self.vertex_module(v) for v in range(1, self.k + 1)), *edges)

    # -- derivation -----------------------------------------------------------------------------
    def graph(self, active: dict[Pair, Any], where: str) -> CellGraph | str:
        """The live graph for the present edges ``active`` (checked), or why it is rejected."""
        graph = self.wiring.apply(self.k, frozenset(active))
        if isinstance(graph, str):
            return graph
        graph = live_part(self._valid(graph, where), self.k)
        if self.check is not None:
            return self.check(graph) or graph
        return graph

    def _valid(self, graph: Any, where: str) -> CellGraph:
        k, wiring = self.k, type(self.wiring).__name__
        if not isinstance(graph, CellGraph):
            raise GrammarError(f"at {where or 'root'}: expected wiring {wiring} to return a "
                               f"CellGraph or a rejection reason (str), found "
                               f"{type(graph).__name__}")
        verts = graph.vertices
        if list(verts) != sorted(set(verts)) or not all(isinstance(v, int) and 1 <= v <= k
                                                        for v in verts):
            raise GrammarError(f"at {where or 'root'}: expected wiring {wiring} to keep vertices "
                               f"in increasing order within 1..{k}, found {verts}")
        sources, targets = {0, *verts}, {*verts, k + 1}
        for e in graph.edges:
            if not (isinstance(e, tuple) and len(e) == 2 and e[0] in sources
                    and e[1] in targets and e[0] < e[1]):
                raise GrammarError(f"at {where or 'root'}: expected wiring {wiring} to give edges "
                                   f"(i, j), i < j, from 0 or a kept vertex {verts} to a kept "
                                   f"vertex or the output {k + 1}, found {e!r}")
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
                if self.present((i, j), v):
                    active[(i, j)] = v
            result = self.graph(active, where)
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
        if outs:
            _, out = merge_node(self.merge, join(where, "output"), in_shapes(outs))
        else:  # the input reaches no edge into the output: zeros, of the only shape known
            out = shape
        attrs = (("plan", tuple(plan)), ("outputs", outs), ("merge", self.merge))
        node = make_node("dag_cell", f"dag_cell({self.k},{self.merge})", "cell", where, shape,
                         out, (), tuple(children), attrs)
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
        active = {p: v for p, v in assignment.items() if cell.present(p, v)}
        graph = cell.graph(active, cell.name)
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
    # per edge, the sequences when it is absent (zero ops), present but cut away (its op is
    # decided, nothing inside asked) and live (everything inside asked)
    ops = {p: [op for op, _ in cell.edge_ops or ()] for p in pairs}
    off = {p: 1 if cell.edge_ops is None else
           sum(not cell.present(p, op) for op in ops[p]) for p in pairs}
    dead = {p: 1 if cell.edge_ops is None else len(ops[p]) - off[p] for p in pairs}
    live_n = {p: 1 if cell.edge_ops is None else
              sum(counting.total(cell.edge_module(p, op)) for op in ops[p] if cell.present(p, op))
              for p in pairs}
    masks = np.arange(2 ** len(pairs), dtype=np.int64)
    bits = {p: ((masks >> b) & 1).astype(bool) for b, p in enumerate(pairs)}
    valid, kept, live = cell.wiring.arrays(cell.k, bits)
    bound = product(max(live_n[p], dead[p], off[p], 1) for p in pairs) * product(vertex.values())
    dtype = np.int64 if bound * len(masks) < 2 ** 62 else object
    weight = np.ones(len(masks), dtype=dtype)
    for p in pairs:
        if live_n[p] != 1 or dead[p] != 1 or off[p] != 1:
            weight *= np.where(bits[p], np.where(live[p], live_n[p], dead[p]),
                               off[p]).astype(dtype)
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
    choice among the operations in the order given; a :func:`~workbench.dsl.layers.zero`
    operation is the absent edge. ``wiring`` defaults to :func:`nb101_wiring`; ``check(graph)``
    may reject a graph the wiring accepts by returning the reason.

    >>> from workbench.dsl.layers import identity, relu, zero
    >>> cell = dag_cell(1, relu(), wiring=nb101_wiring(None))
    >>> [p for p in cell.pairs()]
    [(0, 1), (0, 2), (1, 2)]
    >>> cell = dag_cell(2, identity(), wiring=dense_wiring(),
    ...                 edge_ops={"skip": identity(), "none": zero()})
    >>> cell.edge_hp((0, 1)).options
    ('skip', 'none')
    """
    if k < 1:
        raise GrammarError(f"dag_cell {name!r}: expected at least one vertex, found k={k}")
    if merge not in ("add", "concat"):
        raise GrammarError(f"dag_cell {name!r}: expected merge 'add' or 'concat', found {merge!r}")
    if edge_ops is not None and not edge_ops:
        raise GrammarError(f"dag_cell {name!r}: expected at least one edge operation, found none")
    if not 0.0 < edge_p < 1.0:
        raise GrammarError(f"dag_cell {name!r}: expected edge_p in (0, 1), found {edge_p}")
    if not isinstance(vertex, Module) and not callable(vertex):
        raise GrammarError(f"dag_cell {name!r}: expected a vertex module or function, found "
                           f"{type(vertex).__name__}")
    wiring = wiring or nb101_wiring()
    pairs = wiring.pairs(int(k))
    if len(set(pairs)) != len(pairs) or not all(
            isinstance(p, tuple) and len(p) == 2 and 0 <= p[0] < p[1] <= k + 1 for p in pairs):
        raise GrammarError(f"dag_cell {name!r}: expected wiring {type(wiring).__name__} to "
                           f"decide distinct pairs (i, j) with 0 <= i < j <= {k + 1}, found "
                           f"{pairs}")
    ops = tuple(edge_ops.items()) if edge_ops is not None else None
    return DagCell(int(k), vertex, wiring, ops, float(edge_p), merge, check, name)

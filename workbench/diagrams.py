"""Circuit diagrams of architectures: DOT source from tree walkers, rendered by graphviz's ``dot``.

Two views of the same :class:`~workbench.architecture.Architecture`:

* ``dataflow`` (the "circuit diagram"): input -> operations -> output, tensor shapes on the edges
  (batch dim omitted: ``64×8×8`` for im tensors, ``L=64, D=512`` for col tensors), modules as nested
  clusters. Sequential chains are flattened into one cluster; ``branching`` is a cluster whose split
  fans out to the branches and back into the merge (a k=4/8 replicated inner module is drawn once,
  badged ``×4 (untied)``); ``routing`` is a cluster pre -> body -> post, except the conv lowering
  ``routing[im2col(k,s,p), computation[linear(N)], col2im]`` which is one ``conv k×k /s C→N`` node.
  Identity operations are not drawn (the edge passes through) unless highlighted.
* ``macro``: dataflow with each run of structurally identical modules drawn once, framed ``×N
  <unit>``, first input / last output shape on its edges, differing sizes in its label and
  tooltip (``width 128 → 256 → 512``); runs nest. See :mod:`workbench.macro_view`.
* ``tree``: the derivation tree itself, labels as in the bracket syntax.

``depth`` collapses what is nested deeper: in the dataflow view a module at nesting level > depth
(members of the root chain are level 1, a branch of a level-1 branching is level 2, ...) becomes
one box "type · n ops · params, in → out"; in the tree view nodes below tree depth ``depth`` are
folded into their ancestor. :data:`DEFAULT_DEPTH` (3) shows ResNet-18 and WRN-16-4 completely
(their deepest module is level 2) and ViT down to the attention head, whose inside is one box.

The walker dispatches on node symbols (see :data:`DATAFLOW_RULES`); a symbol without a rule gets
the generic one (a leaf is an operation box, a node with children a cluster whose children are
chained in order), so tree-DSL spaces diagram without changes here.

Palette (fill colours, shown in the legend when used): :data:`PALETTE`.

>>> from workbench.spaces import get_space
>>> arch = get_space("einspace", (3, 8, 8), 10).parse(
...     "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]")
>>> src = to_dot(arch)
>>> "conv 3×3 /1 3→16" in src and '"16×8×8"' in src
True
>>> render_svg(arch).lstrip().startswith("<?xml")
True
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from workbench.architecture import Architecture, Node
from workbench.errors import ConfigError, DiagramError
from workbench.macro_view import Run, group_runs

DEFAULT_DEPTH = 3
RENDER_TIMEOUT_S = 60.0

# category -> (fill colour, legend text). Fixed so the same operation always has the same colour.
PALETTE: dict[str, tuple[str, str]] = {
    "compute": ("#9ecae1", "linear / conv"),
    "norm": ("#a1d99b", "norm"),
    "activation": ("#fdae6b", "activation"),
    "misc": ("#c6b9e6", "pos_enc / softmax"),
    "routing": ("#fff3a0", "routing (im2col / col2im / permute / pool)"),
    "split": ("#f7a8c4", "branch split"),
    "merge": ("#e7298a", "branch merge"),
    "regular": ("#d9d9d9", "dropout / identity"),
    "sequential": ("#eeeeee", "sequential module"),
    "branching": ("#fde0ef", "branching module"),
    "routing_module": ("#fff9d0", "routing module"),
    "computation": ("#e6f0f8", "computation"),
    "module": ("#f2f2f2", "module"),
    "other": ("#ffffff", "other operation"),
}
# module symbol -> category of its box (tree view, collapsed modules); others are "module".
_MODULE_CATEGORY = {"sequential": "sequential", "branching": "branching",
                    "routing": "routing_module", "computation": "computation"}
# cluster border colour by module symbol; unknown modules are grey.
CLUSTER_COLOURS = {"branching": "#c51b7d", "routing": "#b59b00", "sequential": "#888888"}
RUN_COLOUR = "#2171b5"  # the border of a macro-view run (``×N ...``)
HIGHLIGHT = "#e41a1c"

_CATEGORY = {
    **dict.fromkeys(("linear", "conv", "conv2d", "conv1d", "dense", "sep_conv", "dil_conv",
                     "matmul"), "compute"),
    **dict.fromkeys(("norm", "batchnorm", "layernorm", "groupnorm", "batch_norm",
                     "layer_norm"), "norm"),
    **dict.fromkeys(("relu", "gelu", "tanh", "sigmoid", "elu", "leaky_relu", "swish", "silu",
                     "relu6", "selu", "activation"), "activation"),
    **dict.fromkeys(("softmax", "pos_enc"), "misc"),
    **dict.fromkeys(("im2col", "col2im", "permute", "flatten", "reshape", "maxpool",
                     "avgpool", "max_pool", "avg_pool", "pool", "global_pool"), "routing"),
    **dict.fromkeys(("clone", "group"), "split"),
    **dict.fromkeys(("add", "cat", "concat", "sum", "dot_product", "scaled_dot_product",
                     "mul"), "merge"),
    **dict.fromkeys(("dropout", "identity", "zero", "none", "skip", "skip_connect"), "regular"),
}
_KEYWORDS = (("conv", "compute"), ("linear", "compute"), ("norm", "norm"), ("pool", "routing"),
             ("relu", "activation"), ("drop", "regular"))
_KIND_CATEGORY = {"split": "split", "merge": "merge", "pre": "routing", "post": "routing"}
# Operations with no parameters: a summary box may state a parameter count only when every
# operation in it is either here or has a closed form in :func:`_op_params`.
_NO_PARAMS = frozenset(("relu", "gelu", "tanh", "sigmoid", "elu", "leaky_relu", "softmax",
                        "identity", "clone", "group", "add", "cat", "concat", "sum",
                        "dot_product", "scaled_dot_product", "permute", "im2col", "col2im",
                        "flatten", "dropout", "maxpool", "avgpool", "max_pool", "avg_pool",
                        "zero", "none", "skip"))


def category(node: Node) -> str:
    """The palette category of an operation node.

    >>> category(Node("batchnorm", "batchnorm", "op", "root", (8,), (8,)))
    'norm'
    >>> category(Node("my_conv3x3", "my_conv3x3", "op", "root", (8,), (8,)))
    'compute'
    """
    if node.symbol in _CATEGORY:
        return _CATEGORY[node.symbol]
    if node.kind in _KIND_CATEGORY:
        return _KIND_CATEGORY[node.kind]
    low = node.symbol.lower()
    return next((cat for key, cat in _KEYWORDS if key in low), "other")


def format_shape(shape: Iterable[int]) -> str:
    """A shape without the batch dim, as drawn on edges.

    >>> format_shape((64, 8, 8)), format_shape((64, 512)), format_shape((10,))
    ('64×8×8', 'L=64, D=512', '10')
    """
    shape = tuple(shape)
    if len(shape) == 2:
        return f"L={shape[0]}, D={shape[1]}"
    return "×".join(str(d) for d in shape)


def format_count(n: int) -> str:
    """``1234567`` -> ``'1.2M'``.

    >>> format_count(950), format_count(74_112), format_count(11_173_962)
    ('950', '74.1k', '11.2M')
    """
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


# -- facts about subtrees ----------------------------------------------------------------------
def _flatten_sequential(node: Node) -> list[Node]:
    out: list[Node] = []
    for child in node.children:
        out.extend(_flatten_sequential(child) if child.symbol == "sequential" else [child])
    return out


def _lowerable(node: Node) -> bool:
    """``routing[im2col, computation[linear], col2im]``: the compiler makes it one Conv2d."""
    if node.symbol != "routing" or len(node.children) != 3:
        return False
    pre, body, post = node.children
    return (pre.symbol == "im2col" and post.symbol == "col2im" and body.symbol == "computation"
            and body.children[0].symbol == "linear")


def _replicas(node: Node) -> int:
    """How many times a branching's single inner module is instantiated (1 if not replicated)."""
    return int(node.attr("k", 1)) if node.symbol == "branching" and len(node.children) == 3 else 1


def _op_count(node: Node) -> int:
    """Operations as the dataflow view draws them (a lowered conv is one, identities none)."""
    if _lowerable(node):
        return 1
    if not node.children:
        return 0 if node.symbol == "identity" else 1
    if _replicas(node) > 1:
        split, inner, merge = node.children
        return _op_count(split) + _replicas(node) * _op_count(inner) + _op_count(merge)
    return sum(_op_count(c) for c in node.children)


def _op_params(node: Node) -> int | None:
    """Parameters of one leaf in closed form (the einspace conventions), None where unknown."""
    given = node.attr("params")
    if given is not None:
        return int(given)
    if node.symbol in _NO_PARAMS:
        return 0
    if node.symbol == "linear":
        return node.in_shape[-1] * node.out_shape[-1] + node.out_shape[-1]
    if node.symbol == "norm":
        return 2 * (node.in_shape[0] if len(node.in_shape) == 3 else node.in_shape[-1])
    if node.symbol == "pos_enc":
        n = 1
        for d in node.in_shape:
            n *= d
        return n
    return None


def params(node: Node) -> int | None:
    """Parameter count of a subtree (replicated branches counted k times), None where unknown.

    >>> from workbench.spaces import get_space
    >>> params(get_space("einspace", (3, 8, 8), 10).parse(
    ...     "sequential[computation[linear(16)], computation[norm]]").tree)
    150
    """
    if node.attr("params") is not None or not node.children:
        return _op_params(node)
    maybe = [params(c) for c in node.children]
    parts = [p for p in maybe if p is not None]
    if len(parts) < len(maybe):
        return None
    if _replicas(node) > 1:
        return parts[0] + _replicas(node) * parts[1] + parts[2]
    return sum(parts)


def _touches(path: str, highlight: frozenset[str]) -> bool:
    """Whether the subtree at ``path`` contains or lies inside a highlighted path."""
    return any(h == path or path.startswith(h + "/") or h.startswith(path + "/")
               for h in highlight)


def _inside(path: str, highlight: frozenset[str]) -> bool:
    return any(h == path or path.startswith(h + "/") for h in highlight)


# -- DOT building -----------------------------------------------------------------------------
def _q(text: str) -> str:
    """A quoted DOT string (ids and labels); ``\\n`` in labels stays a line break."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


@dataclass
class _Graph:
    """Mutable DOT builder used inside one :func:`to_dot` call (the walker's output sink)."""

    highlight: frozenset[str]
    depth: int | None
    macro: bool = False  # group runs of repeated structure in every chain (the macro view)
    signatures: dict[int, tuple] = field(default_factory=dict)  # memo for macro_view.signature
    stack: list[list[str]] = field(default_factory=lambda: [[]])
    edges: list[str] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    ids: dict[str, int] = field(default_factory=dict)  # node or cluster id -> times used

    def unique(self, name: str) -> str:
        """``name``, else ``name#2``, ``#3`` ...: tree-DSL paths repeat (tied repeats, unnamed
        layers), a run starts where its nested run does; dot merges or crashes on reused ids."""
        n = self.ids[name] = self.ids.get(name, 0) + 1
        return name if n == 1 else f"{name}#{n}"

    def node(self, nid: str, label: str, cat: str, *, hot: bool, tooltip: str = "",
             shape: str = "box", style: str = "rounded,filled") -> str:
        self.used.add(cat)
        nid = self.unique(nid)
        attrs = [f"label={_q(label)}", f"fillcolor={_q(PALETTE[cat][0])}", f"shape={shape}",
                 f"style={_q(style)}"]
        if cat == "merge":
            attrs.append('fontcolor="white"')
        if tooltip:
            attrs.append(f"tooltip={_q(tooltip)}")
        if hot:
            attrs += [f"color={_q(HIGHLIGHT)}", "penwidth=3"]
        self.stack[-1].append(f"{_q(nid)} [{', '.join(attrs)}]")
        return nid

    def open(self, cid: str, label: str, colour: str, *, hot: bool, dashed: bool = False,
             tooltip: str = "", width: int = 1) -> None:
        style = "rounded,dashed" if dashed else "rounded"
        pen = (f'color="{HIGHLIGHT}"; penwidth=3' if hot else f'color="{colour}"'
               + (f"; penwidth={width}" if width != 1 else ""))
        tip = f" tooltip={_q(tooltip)};" if tooltip else ""
        cid = self.unique("cluster:" + cid)[len("cluster:"):]
        self.stack.append([f"subgraph {_q('cluster:' + cid)} {{",
                           f"label={_q(label)}; style={_q(style)}; {pen};{tip}"])

    def close(self) -> None:
        block = self.stack.pop()
        self.stack[-1].extend(["  " + line for line in block] + ["  }"])

    def connect(self, tails: Iterable[str], heads: Iterable[str], shape: Iterable[int],
                **attrs: str) -> None:
        extra = "".join(f", {k}={_q(v)}" for k, v in attrs.items())
        for t in tails:
            for h in heads:
                self.edges.append(f"{_q(t)} -> {_q(h)} [label={_q(format_shape(shape))}{extra}]")

    def source(self, title: str) -> str:
        head = ["digraph architecture {", f"label={_q(title)}; labelloc=t; fontname=Helvetica;",
                "rankdir=TB; nodesep=0.25; ranksep=0.3; newrank=true;",
                'node [fontname=Helvetica, fontsize=10, height=0.3];',
                'edge [fontname=Helvetica, fontsize=8, fontcolor="#555555", color="#555555"];']
        legend = [c for c in PALETTE if c in self.used]
        if legend:
            rows = "".join(f'<tr><td bgcolor="{PALETTE[c][0]}">{_html(PALETTE[c][1])}</td></tr>'
                           for c in legend)
            head.append('legend [shape=plaintext, fontsize=8, label=<<table border="0" '
                        f'cellborder="1" cellspacing="0" cellpadding="2">{rows}</table>>]')
        return "\n".join(head + ["  " + line for line in self.stack[0]] + self.edges + ["}"]) + "\n"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class _Frag:
    """What a walked subtree exposes: node ids edges enter by and leave from (empty: the tensor
    passes through unchanged, e.g. an identity)."""

    entries: tuple[str, ...] = ()
    exits: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.entries


Walk = Callable[[Node, int], _Frag]
Rule = Callable[[Node, int, _Graph, Walk], _Frag]
DATAFLOW_RULES: dict[str, Rule] = {}


def rule(*symbols: str) -> Callable[[Rule], Rule]:
    """Register a dataflow rule ``fn(node, level, graph, walk) -> _Frag`` for node symbols."""
    def deco(fn: Rule) -> Rule:
        for s in symbols:
            DATAFLOW_RULES[s] = fn
        return fn
    return deco


def _tip(node: Node) -> str:
    return f"{node.path}: {format_shape(node.in_shape)} → {format_shape(node.out_shape)}"


def _op(node: Node, g: _Graph, label: str | None = None, cat: str | None = None) -> _Frag:
    nid = g.node(node.path, label or node.label, cat or category(node),
                 hot=_touches(node.path, g.highlight), tooltip=_tip(node))
    return _Frag((nid,), (nid,))


def _collapsed(node: Node, level: int, g: _Graph) -> bool:
    return g.depth is not None and level > g.depth


def _box(node: Node, g: _Graph) -> _Frag:
    """A collapsed module: one box with its type, size and in -> out shape."""
    p = params(node)
    size = f"{_op_count(node)} ops" + (f" · {format_count(p)} params" if p is not None else "")
    label = (f"{node.label}\n{size}\n"
             f"{format_shape(node.in_shape)} → {format_shape(node.out_shape)}")
    cat = _MODULE_CATEGORY.get(node.symbol, "module")
    nid = g.node(node.path, label, cat, hot=_touches(node.path, g.highlight),
                 tooltip=_tip(node), style="rounded,filled,dashed")
    return _Frag((nid,), (nid,))


def _chain(items: list[Node], level: int, g: _Graph, walk: Walk) -> _Frag:
    """Walk ``items`` in order and connect each to the next with the tensor between them (in the
    macro view a run of repeated items is one item: its first member, framed ``×N``)."""
    first: tuple[str, ...] = ()
    exits: tuple[str, ...] = ()
    for item in group_runs(items, g.signatures) if g.macro else items:
        frag = _run(item, level, g, walk) if isinstance(item, Run) else walk(item, level)
        if frag.empty:
            continue
        if exits:
            g.connect(exits, frag.entries, item.in_shape)
        first = first or frag.entries
        exits = frag.exits
    return _Frag(first, exits)


def _run(run: Run, level: int, g: _Graph, walk: Walk) -> _Frag:
    """A run drawn once: its first member's items (grouped again: runs nest) in a ``×N`` frame,
    red when any member holds a highlighted path."""
    g.open(run.path + "#run", run.label, RUN_COLOUR, width=2, tooltip=run.tooltip,
           hot=any(_touches(p, g.highlight) for p in run.paths))
    frag = _chain(list(run.first), level, g, walk)
    g.close()
    return frag


def _cluster(node: Node, level: int, g: _Graph, label: str, body: Callable[[], _Frag],
             *, dashed: bool = False) -> _Frag:
    colour = CLUSTER_COLOURS.get(node.symbol, "#888888")
    g.open(node.path, label, colour, hot=_inside(node.path, g.highlight), dashed=dashed)
    frag = body()
    g.close()
    return frag


@rule("sequential")
def _sequential(node: Node, level: int, g: _Graph, walk: Walk) -> _Frag:
    if _collapsed(node, level, g):
        return _box(node, g)
    items = _flatten_sequential(node)
    if level == 0:  # the network itself: no frame around everything
        return _chain(items, level + 1, g, walk)
    return _cluster(node, level, g, "sequential",
                    lambda: _chain(items, level + 1, g, walk), dashed=True)


@rule("computation")
def _computation(node: Node, level: int, g: _Graph, walk: Walk) -> _Frag:
    return walk(node.children[0], level)


@rule("identity")
def _identity(node: Node, level: int, g: _Graph, walk: Walk) -> _Frag:
    # Drawn only when highlighted (a mutation may have made something an identity).
    return _op(node, g) if _touches(node.path, g.highlight) else _Frag()


@rule("routing")
def _routing(node: Node, level: int, g: _Graph, walk: Walk) -> _Frag:
    if _lowerable(node):
        pre, body, _ = node.children
        k, s, _p = pre.args
        label = f"conv {k}×{k} /{s} {pre.in_shape[0]}→{body.out_shape[-1]}"
        return _op(node, g, label, "compute")
    if _collapsed(node, level, g):
        return _box(node, g)
    return _cluster(node, level, g, "routing",
                    lambda: _chain(list(node.children), level + 1, g, walk))


@rule("branching")
def _branching(node: Node, level: int, g: _Graph, walk: Walk) -> _Frag:
    if _collapsed(node, level, g):
        return _box(node, g)
    split, *branches, merge = node.children
    k = _replicas(node)

    def body() -> _Frag:
        s = walk(split, level + 1)
        m = walk(merge, level + 1)
        for branch in branches:
            if k > 1:  # one module instantiated k times with separate weights: draw it once
                g.open(branch.path + "#replica", f"×{k} (untied)", CLUSTER_COLOURS["branching"],
                       hot=_inside(branch.path, g.highlight), dashed=True)
                frag = walk(branch, level + 1)
                g.close()
            else:
                frag = walk(branch, level + 1)
            bold = {"penwidth": "2", "style": "bold"} if k > 1 else {}
            if frag.empty:
                g.connect(s.exits, m.entries, split.out_shape, **bold)
                continue
            g.connect(s.exits, frag.entries, split.out_shape, **bold)
            g.connect(frag.exits, m.entries, branch.out_shape, **bold)
        return _Frag(s.entries, m.exits)
    return _cluster(node, level, g, node.label, body)


_EDGE = re.compile(r"edge_(\d+)_(\d+)$")
_NO_EDGE = frozenset(("none", "zero"))


def _dag_edges(node: Node) -> list[tuple[int, int, Node]] | None:
    """``(to, from, op)`` when every child is a DAG-cell edge named ``.../edge_<to>_<from>``
    (NAS-Bench-style cells), else None."""
    found = [(m, c) for c in node.children if (m := _EDGE.search(c.path)) is not None]
    if not found or len(found) < len(node.children):
        return None
    return [(int(m.group(1)), int(m.group(2)), c) for m, c in found]


def _cell(node: Node, level: int, g: _Graph, walk: Walk,
          edges: list[tuple[int, int, Node]]) -> _Frag:
    """A DAG cell: numbered state nodes (each sums its incoming edges), one op box per edge;
    ``none``/``zero`` edges carry nothing and are left out."""
    def body() -> _Frag:
        states = sorted({i for e in edges for i in e[:2]})
        ids = {i: g.node(f"{node.path}#node{i}", str(i), "merge", hot=False, shape="circle",
                         style="filled", tooltip=f"{node.path}: cell node {i}") for i in states}
        for to, frm, op in edges:
            if op.symbol in _NO_EDGE and not _touches(op.path, g.highlight):
                continue
            frag = walk(op, level + 1)
            if frag.empty:
                g.connect([ids[frm]], [ids[to]], op.in_shape)
                continue
            g.connect([ids[frm]], frag.entries, op.in_shape)
            g.connect(frag.exits, [ids[to]], op.out_shape)
        return _Frag((ids[states[0]],), (ids[states[-1]],))
    return _cluster(node, level, g, f"{node.label} cell", body)


def _generic(node: Node, level: int, g: _Graph, walk: Walk) -> _Frag:
    """Unknown symbols: a leaf is an operation; a node whose children are named ``edge_<to>_<from>``
    a DAG cell; any other node with children a cluster of its children chained in order (one
    child: drawn in place, no frame)."""
    if not node.children:
        return _op(node, g)
    if len(node.children) == 1:
        return walk(node.children[0], level)
    if _collapsed(node, level, g):
        return _box(node, g)
    edges = _dag_edges(node)
    if edges is not None:
        return _cell(node, level, g, walk, edges)
    if level == 0:
        return _chain(list(node.children), level + 1, g, walk)
    return _cluster(node, level, g, node.label,
                    lambda: _chain(list(node.children), level + 1, g, walk))


def _dataflow(arch: Architecture, g: _Graph) -> None:
    def walk(node: Node, level: int) -> _Frag:
        return DATAFLOW_RULES.get(node.symbol, _generic)(node, level, g, walk)

    g.node("input", "input", "other", hot=False, shape="ellipse", style="filled")
    g.node("output", f"head → {arch.num_classes} classes", "other", hot=False,
           shape="ellipse", style="filled")
    g.used.discard("other")  # the ends are not operations; keep them out of the legend
    frag = walk(arch.tree, 0)
    if frag.empty:
        g.connect(["input"], ["output"], arch.input_shape)
        return
    g.connect(["input"], frag.entries, arch.input_shape)
    g.connect(frag.exits, ["output"], arch.tree.out_shape)


# -- tree view ----------------------------------------------------------------------------------
def _tree(arch: Architecture, g: _Graph) -> None:
    def visit(node: Node, d: int) -> str:
        fold = g.depth is not None and d >= g.depth and bool(node.children)
        cat = _MODULE_CATEGORY.get(node.symbol, "module") if node.children else category(node)
        label = node.label + (f"\n+{node.size - 1} nodes" if fold else "")
        hot = _touches(node.path, g.highlight) if fold else _inside(node.path, g.highlight)
        style = "filled,dashed" if fold else "filled" if node.children else "rounded,filled"
        nid = g.node(node.path, label, cat, hot=hot, tooltip=_tip(node), style=style)
        if not fold:
            for child in node.children:
                g.edges.append(f"{_q(nid)} -> {_q(visit(child, d + 1))} [arrowsize=0.5]")
        return nid

    visit(arch.tree, 0)


# -- public API ---------------------------------------------------------------------------------
VIEWS = ("dataflow", "macro", "tree")
FORMATS = ("svg", "png")


def to_dot(arch: Architecture, *, view: str = "dataflow", depth: int | None = None,
           highlight: Iterable[str] = frozenset(), title: str | None = None) -> str:
    """DOT source of ``arch`` in the given view, collapsed below ``depth`` (None: everything),
    with the subtrees at the ``highlight`` paths drawn with a thick red border."""
    if view not in VIEWS:
        raise ConfigError(f"diagram view: expected one of {', '.join(VIEWS)}, found {view!r}")
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ConfigError(f"diagram depth: expected a non-negative integer or None, found {depth!r}")
    g = _Graph(frozenset(highlight), depth, macro=view == "macro")
    (_tree if view == "tree" else _dataflow)(arch, g)
    return g.source(title if title is not None else f"{arch.space} {arch.hash}")


def render_dot(source: str, fmt: str = "svg", *, timeout: float = RENDER_TIMEOUT_S) -> bytes:
    """Run graphviz's ``dot`` on DOT source and return the rendered bytes."""
    if fmt not in FORMATS:
        raise ConfigError(f"diagram format: expected one of {', '.join(FORMATS)}, found {fmt!r}")
    exe = shutil.which("dot")
    if exe is None:
        raise DiagramError("graphviz 'dot' not found on PATH: install graphviz "
                           "(apt-get install graphviz)")
    try:
        done = subprocess.run([exe, f"-T{fmt}"], input=source.encode(), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DiagramError(f"dot: expected a drawing within {timeout:g}s, timed out "
                           f"(try a smaller depth)") from None
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode(errors="replace").strip().splitlines()
        raise DiagramError(f"dot -T{fmt} failed (exit {done.returncode}): "
                           f"{err[0] if err else 'no output'}")
    return done.stdout


def render(arch: Architecture, fmt: str = "svg", **kwargs) -> bytes:
    """Rendered diagram bytes (``svg`` or ``png``); keyword arguments as :func:`to_dot`."""
    if fmt not in FORMATS:
        raise ConfigError(f"diagram format: expected one of {', '.join(FORMATS)}, found {fmt!r}")
    return render_dot(to_dot(arch, **kwargs), fmt)


def render_svg(arch: Architecture, **kwargs) -> str:
    """The diagram as an SVG string, ready to embed in a web page."""
    return render(arch, "svg", **kwargs).decode()

"""The diagrams' macro view: runs of structurally identical modules in a chain, drawn once.

A researcher reads ResNet-18 as "a stem, then stages of residual blocks", not as 8 blocks drawn
out in full. This module finds that structure in a chain of sibling nodes (the members of a
flattened ``sequential``, the children of a routing module, ...); :mod:`workbench.diagrams`
draws each run once, as a cluster labelled ``×N <unit>`` (``to_dot(arch, view="macro")``).

* The **structural signature** of a subtree (:func:`signature`) is its symbols, kinds, the
  digit-free form of its labels, its static attributes and every argument *except* the size
  parameters named in :data:`SIZE_ARGS` (widths, channels, strides). Stages that differ only in
  their channel counts share a signature; a block with a projection shortcut and one with an
  identity shortcut do not (the drawing would hide a convolution otherwise).
* :func:`group_runs` scans the chain left to right and at each position takes the repetition
  ``unit × N`` (a unit of ``p`` consecutive nodes, ``N >= 2``) that covers the most nodes, the
  shortest unit on ties; what it cannot group stays a single node. For ResNet-18 that is the stem,
  ``×2 [residual block → relu]`` (stage 1: identity shortcuts) and ``×3 [residual block → relu →
  residual block → relu]`` with ``width 128 → 256 → 512`` (stages 2-4: a strided block with a
  projection shortcut, then a plain one). Mixer: ``×8 residual block``; ViT: ``×4 [residual
  block → norm → residual block → norm]``.
* A :class:`Run` knows its members, the first member's input shape and the last member's output
  shape (the shapes on the cluster's edges), and the size parameters in which members differ
  (its label's second line, and per member in its tooltip).

The drawing walks the first member's nodes with the same chain grouping, so repeats nested inside
a unit collapse too.

>>> from workbench.spaces import get_space
>>> sp = get_space("einspace", (3, 8, 8), 10)
>>> items = list(sp.parse("sequential[computation[linear(16)], sequential[computation[relu], "
...     "sequential[computation[linear(32)], sequential[computation[relu], "
...     "computation[norm]]]]]").tree.walk())
>>> chain = [n for n in items if n.symbol == "computation"]
>>> [u.label if isinstance(u, Run) else u.label for u in group_runs(chain)]
['×2 [linear → relu]\\nwidth 16 → 32', 'computation']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workbench.architecture import Node, Shape

# symbol -> {argument position: name} of the size parameters a signature ignores; a name of None
# is ignored and not reported (a DSL conv's input channels follow from the previous layer).
SIZE_ARGS: dict[str, dict[int, str | None]] = {
    "linear": {0: "width"},  # einspace linear(N) (relative widths are strings: kept), DSL linear
    "im2col": {1: "stride"},  # einspace im2col(kernel, stride, padding)
    "conv2d": {0: None, 1: "channels", 3: "stride"},  # DSL conv2d (in, out, kernel, stride, pad)
    "batchnorm": {0: None},  # DSL batchnorm (channels): follows the input
    "maxpool": {2: "stride"}, "avgpool": {2: "stride"},  # DSL pools (kh, kw, stride, pad, ceil)
}
_IGNORED_ATTRS = frozenset(("params",))  # a closed-form parameter count follows the sizes
_DIGITS = re.compile(r"\d+(?:\.\d+)?")
_SHOWN_MEMBERS = 4  # a label lists every member's value up to this many, else first → … → last
_SHOWN_UNIT = 4  # a unit of more nodes is named by its first ones and its length


def _size(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def signature(node: Node, memo: dict[int, tuple] | None = None) -> tuple:
    """The structural signature of a subtree (hashable; equal for "the same module, other sizes").

    ``memo`` (keyed by node id, valid while the tree lives) saves recomputing nested subtrees.

    >>> from workbench.spaces import get_space
    >>> sp = get_space("einspace", (3, 8, 8), 10)
    >>> a, b, c = (sp.parse(f"sequential[computation[linear({w})], computation[relu]]").tree
    ...            for w in ("16", "32", "x2"))
    >>> signature(a) == signature(b), signature(a) == signature(c)
    (True, False)
    """
    if memo is not None and id(node) in memo:
        return memo[id(node)]
    sizes = SIZE_ARGS.get(node.symbol, {})
    args = tuple("#" if i in sizes and _size(a) else a for i, a in enumerate(node.args))
    attrs = tuple((k, v) for k, v in node.attrs if k not in _IGNORED_ATTRS)
    sig = (node.symbol, node.kind, _DIGITS.sub("#", node.label), args, attrs,
           tuple(signature(c, memo) for c in node.children))
    if memo is not None:
        memo[id(node)] = sig
    return sig


def sizes(nodes: Sequence[Node]) -> list[tuple[str | None, Any]]:
    """The size parameters of subtrees in pre-order, as ``(name, value)``.

    Two subtrees with one signature give lists of the same names in the same order.
    """
    out: list[tuple[str | None, Any]] = []
    for top in nodes:
        for n in top.walk():
            named = SIZE_ARGS.get(n.symbol, {})
            out += [(named[i], a) for i, a in enumerate(n.args) if i in named and _size(a)]
    return out


def _leaf_ops(node: Node) -> int:
    return sum(1 for n in node.walk() if not n.children and n.symbol != "identity")


def _residual(node: Node) -> bool:
    """``x + f(x)``: a clone(2) ... add branching whose shortcut is lighter than its body."""
    if node.symbol != "branching" or len(node.children) != 4:
        return False
    split, a, b, merge = node.children
    return (split.symbol == "clone" and merge.symbol == "add"
            and _leaf_ops(a) != _leaf_ops(b))


def unit_name(node: Node) -> str:
    """What one node of a run is called in its label.

    >>> from workbench.spaces import get_space
    >>> sp = get_space("einspace", (3, 8, 8), 10)
    >>> unit_name(sp.parse("branching(2)[clone(2), sequential[computation[linear(x1)], "
    ...                    "computation[relu]], computation[identity], add]").tree)
    'residual block'
    >>> unit_name(sp.parse("routing[im2col(3,1,1), computation[linear(16)], col2im]").tree)
    'conv 3×3'
    """
    if node.symbol == "computation" and len(node.children) == 1:
        return unit_name(node.children[0])
    if _residual(node):
        return "residual block"
    kids = [c.symbol for c in node.children]
    if node.symbol == "routing" and kids[:1] == ["im2col"] and kids[-1:] == ["col2im"]:
        k = node.children[0].args[0] if node.children[0].args else "?"
        return f"conv {k}×{k}"
    return node.label if node.children else node.symbol


def _values(vs: tuple) -> str:
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vs)


@dataclass(frozen=True)
class Run:
    """``N`` consecutive repetitions of one unit of ``p`` sibling nodes (same signature)."""

    members: tuple[tuple[Node, ...], ...]

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def first(self) -> tuple[Node, ...]:
        """The member that is drawn."""
        return self.members[0]

    @property
    def path(self) -> str:
        return self.members[0][0].path

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(n.path for m in self.members for n in m)

    @property
    def in_shape(self) -> Shape:
        return self.members[0][0].in_shape

    @property
    def out_shape(self) -> Shape:
        return self.members[-1][-1].out_shape

    @property
    def unit(self) -> str:
        names = [unit_name(n) for n in self.first]
        if len(names) == 1:
            return names[0]
        shown = names if len(names) <= _SHOWN_UNIT else [*names[:_SHOWN_UNIT - 1], "…"]
        more = "" if len(names) <= _SHOWN_UNIT else f" ({len(names)} modules)"
        return "[" + " → ".join(shown) + "]" + more

    def differing(self) -> dict[str, tuple[tuple, ...]]:
        """Size parameter name -> per member, its distinct values in order; only the names
        whose values are not the same in every member."""
        per = [sizes(m) for m in self.members]
        names = list(dict.fromkeys(name for name, _ in per[0] if name is not None))
        out = {}
        for name in names:
            values = tuple(tuple(dict.fromkeys(v for k, v in p if k == name)) for p in per)
            if len(set(values)) > 1:
                out[name] = values
        return out

    @property
    def label(self) -> str:
        """``×N unit``, then the differing sizes, e.g. ``width 128 → 256 → 512``."""
        lines = [f"×{self.count} {self.unit}"]
        for name, values in self.differing().items():
            shown = [_values(v) for v in values]
            if len(shown) > _SHOWN_MEMBERS:
                shown = [shown[0], "…", shown[-1]]
            lines.append(f"{name} {' → '.join(shown)}")
        return "\n".join(lines)

    @property
    def tooltip(self) -> str:
        """One line per member: its first path, shapes in and out, its differing sizes."""
        diff = self.differing()
        lines = [f"×{self.count} {self.unit} (drawn: the first)"]
        for i, m in enumerate(self.members):
            extra = "".join(f"; {name} {_values(vs[i])}" for name, vs in diff.items())
            lines.append(f"{i + 1}. {m[0].path}: {_fmt(m[0].in_shape)} → "
                         f"{_fmt(m[-1].out_shape)}{extra}")
        return "\n".join(lines)


def _fmt(shape: Shape) -> str:
    return "×".join(map(str, shape))


def group_runs(items: Sequence[Node], memo: dict[int, tuple] | None = None
               ) -> list[Node | Run]:
    """``items`` with every run of repeated structure replaced by one :class:`Run`.

    >>> from workbench.architecture import Node
    >>> def op(name, path): return Node(name, name, "op", path, (4,), (4,))
    >>> chain = [op("a", "0"), op("b", "1"), op("b", "2"), op("b", "3"), op("c", "4")]
    >>> [(u.count, u.path) if isinstance(u, Run) else u.path for u in group_runs(chain)]
    ['0', (3, '1'), '4']
    """
    memo = {} if memo is None else memo
    table: dict[tuple, int] = {}
    ids = [table.setdefault(signature(n, memo), len(table)) for n in items]

    def repeats(i: int, p: int) -> int:
        n = 1
        while (i + (n + 1) * p <= len(ids) and ids[i + n * p] == ids[i]  # cheap test first
               and ids[i + n * p:i + (n + 1) * p] == ids[i:i + p]):
            n += 1
        return n

    out: list[Node | Run] = []
    i = 0
    while i < len(items):
        p, n = max(((p, repeats(i, p)) for p in range(1, (len(items) - i) // 2 + 1)),
                   key=lambda pn: (pn[1] >= 2, pn[0] * pn[1], -pn[0]), default=(1, 1))
        if n < 2:
            out.append(items[i])
            i += 1
            continue
        # the same repetition may start a little later: begin the unit at its biggest node
        # (WRN's stages are [block, bn, relu] x 3, not [bn, relu, block] x 3 after a stem ending in
        # bn, relu)
        shift = max((s for s in range(p) if repeats(i + s, p) >= n),
                    key=lambda s: (items[i + s].size, -s))
        out += items[i:i + shift]
        i += shift
        out.append(Run(tuple(tuple(items[i + k * p:i + (k + 1) * p]) for k in range(n))))
        i += p * n
    return out

"""NAS-Bench-201's network as torch modules, and the compiler builder of the ``nb201`` node.

Kept apart from :mod:`search_spaces.nb201` so that importing the space (and ``search_spaces``)
does not import torch: the ``nb201`` node names this module in its ``builders`` attribute and
the compiler imports it when it first compiles one (see :mod:`workbench.compiler`). Every class
is top-level, so compiled models pickle and ``torch.save``/``torch.load`` them by name.

>>> import torch
>>> Cell(4, ["nor_conv_3x3", "none", "skip_connect", "none", "none", "avg_pool_3x3"])(
...     torch.zeros(2, 4, 5, 5)).shape
torch.Size([2, 4, 5, 5])
"""

from __future__ import annotations

import torch
from torch import nn

from search_spaces.nb201 import EDGES
from workbench.architecture import Node
from workbench.compiler import Build, register


class ReLUConvBN(nn.Sequential):
    """ReLU -> conv (no bias, "same" padding) -> BatchNorm: NB201's ``nor_conv``."""

    def __init__(self, ci: int, co: int, k: int, stride: int = 1):
        super().__init__(nn.ReLU(), nn.Conv2d(ci, co, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(co))


def edge_op(op: str, ch: int) -> nn.Module | None:
    """The module of one edge operation (None for ``none``: the edge is absent)."""
    if op == "none":
        return None
    if op == "skip_connect":
        return nn.Identity()
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, 1, 1, count_include_pad=False)
    return ReLUConvBN(ch, ch, 1 if op == "nor_conv_1x1" else 3)


class Cell(nn.Module):
    """node_j = sum_{i<j} op_ji(node_i); returns node_3. x: [B, C, H, W] -> [B, C, H, W].

    A node no present edge from the input reaches is zero; when that is node 3, so is the cell.
    """

    def __init__(self, ch: int, ops: list[str]):
        super().__init__()
        built = [edge_op(op, ch) for op in ops]
        self.edges = [(to, frm, i) for i, ((to, frm), m) in enumerate(zip(EDGES, built))
                      if m is not None]
        self.ops = nn.ModuleDict({str(i): m for i, m in enumerate(built) if m is not None})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x, None, None, None]
        for to, frm, i in self.edges:  # EDGES is ordered by target node
            src = nodes[frm]
            if src is None:
                continue
            y = self.ops[str(i)](src)
            nodes[to] = y if nodes[to] is None else nodes[to] + y
        return nodes[3] if nodes[3] is not None else torch.zeros_like(x)


class Reduction(nn.Module):
    """NB201's residual block: [B, C, H, W] -> [B, 2C, H/2, W/2]."""

    def __init__(self, ch: int):
        super().__init__()
        self.a = ReLUConvBN(ch, 2 * ch, 3, 2)
        self.b = ReLUConvBN(2 * ch, 2 * ch, 3, 1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2, ceil_mode=True),
                                      nn.Conv2d(ch, 2 * ch, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


class Backbone(nn.Sequential):
    """stem -> N cells (C) -> reduce -> N cells (2C) -> reduce -> N cells (4C) -> BN, ReLU."""

    def __init__(self, cin: int, ch: int, n: int, ops: list[str]):
        layers: list[nn.Module] = [nn.Conv2d(cin, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch)]
        for stage in range(3):
            c = ch * 2 ** stage
            if stage:
                layers.append(Reduction(c // 2))
            layers += [Cell(c, ops) for _ in range(n)]
        layers += [nn.BatchNorm2d(4 * ch), nn.ReLU()]
        super().__init__(*layers)


@register("nb201")
def build_nb201(node: Node, build: Build) -> nn.Module:
    """The ``nb201`` node: args ``(channels, cells_per_stage)``, one child per edge (its op)."""
    return Backbone(node.in_shape[0], node.args[0], node.args[1], [c.symbol for c in node.children])

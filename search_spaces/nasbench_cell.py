"""``nasbench_cell``: a NAS-Bench-101-style space: one cell, stacked 3 stacks x 3 cells.

The cell has 7 vertices: input (0), five intermediate vertices (1-5) and output (6). Its spec is
21 edge bits over the upper triangle (``cell/edge[i,j]``), then one operation per *kept*
intermediate vertex (``cell/v<v>/op`` in conv1x1, conv3x3, maxpool3x3; each conv is
conv -> batchnorm -> relu keeping the channel count, the pool is 3x3, stride 1, "same").

Vertices not on a path from input to output are pruned with their edges, as NAS-Bench-101 does;
their operations are never asked. A spec is rejected when the output is not reachable from the
input or more than 9 edges remain after pruning; sampling draws the edges again, replaying a
rejected spec is an error. Intermediate vertices sum their inputs; the output concatenates its
inputs on channels (NAS-Bench-101 also concatenates, but splits channels so the sum is fixed and
adds the input projection; here every vertex keeps the cell's channel count and the next cell's
input projection brings the width back).

Network: stem conv3x3 -> batchnorm -> relu (``stem`` filters, 16 by default where NAS-Bench-101
uses 128, so a CPU forward pass is fast); three stacks of three cells, each cell preceded by an
input projection conv1x1 -> batchnorm -> relu to the stack's channels (stem, 2x, 4x); a 2x2
max-pool between stacks (clamped on 1x1 maps); global average pool; linear(classes). As in
NAS-Bench-101, one cell spec is used at all nine positions, so it is decided once.

>>> space = make_space(input_shape=(1, 8, 8))
>>> space.size()
33534501
"""

from __future__ import annotations

from workbench.dsl import (
    DSLSpace,
    batchnorm,
    conv2d,
    dag_cell,
    global_pool,
    linear,
    maxpool,
    nb101_wiring,
    one_of,
    relu,
    seq,
)

OPS = ("conv1x1", "conv3x3", "maxpool3x3")


def _vertex(v: int):
    return one_of({
        "conv1x1": seq(conv2d(None, 1), batchnorm(), relu()),
        "conv3x3": seq(conv2d(None, 3), batchnorm(), relu()),
        "maxpool3x3": maxpool(3, 1, "same"),
    }, name="op")


def make_cell(vertices: int = 5, max_edges: int | None = 9):
    """The cell alone (7 vertices by default), e.g. for enumeration in tests."""
    return dag_cell(vertices, _vertex, wiring=nb101_wiring(max_edges), merge="concat",
                    name="cell")


def make_space(input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10,
               stem: int = 16, stacks: int = 3, cells: int = 3, vertices: int = 5,
               max_edges: int | None = 9) -> DSLSpace:
    """The space bound to ``input_shape``; ``stem`` sets the width (channels double per stack)."""
    cell = make_cell(vertices, max_edges)
    body = [conv2d(stem, 3, 1), batchnorm(), relu()]
    for s in range(stacks):
        if s:
            body.append(maxpool(2))
        width = stem * 2 ** s
        for _ in range(cells):
            body += [conv2d(width, 1, 1), batchnorm(), relu(), cell]
    body += [global_pool(), linear(num_classes, name="logits")]
    return DSLSpace(seq(*body), input_shape, num_classes, name="nasbench_cell",
                    description="NAS-Bench-101-style cell (7 vertices, <= 9 edges), "
                                "3 stacks x 3 cells")

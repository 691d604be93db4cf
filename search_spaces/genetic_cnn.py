"""``genetic_cnn``: the Genetic CNN space (Xie & Yuille, 2017).

Three stages of 3, 4 and 5 nodes with 64, 128 and 256 filters. Each stage starts with its default
input node (conv 3x3 -> batchnorm -> relu to the stage's filters), then a DAG of nodes (each conv
3x3 -> batchnorm -> relu), one on/off bit per node pair ``i < j`` (``stage<s>/edge[i,j]``,
nodes numbered from 1), wired by :func:`workbench.dsl.genetic_wiring`: nodes with neither inputs
nor outputs are dropped, nodes without inputs read the stage input, nodes without outputs are
summed into the stage output (when every node is dropped the stage output is its input node).
Each stage ends with a 2x2 max-pool (clamped on 1x1 maps, see :mod:`workbench.dsl.layers`), then
``flatten -> linear(1024) -> relu -> dropout(keep 0.5) -> linear(classes)``.

>>> make_space().size() == 2 ** (3 + 6 + 10)
True
"""

from __future__ import annotations

from functools import partial

from workbench.dsl import (
    DSLSpace,
    Module,
    batchnorm,
    conv2d,
    dag_cell,
    dropout,
    flatten,
    genetic_wiring,
    linear,
    maxpool,
    relu,
    seq,
)

NODES = (3, 4, 5)
FILTERS = (64, 128, 256)


def _conv_bn_relu(filters: int) -> Module:
    return seq(conv2d(filters, 3, 1), batchnorm(), relu())


def _vertex(filters: int, v: int) -> Module:
    """DAG node ``v`` of a stage: a fresh conv block, so every node has its own parameters."""
    return _conv_bn_relu(filters)


def make_space(input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10,
               nodes: tuple[int, ...] = NODES, filters: tuple[int, ...] = FILTERS,
               dense: int = 1024) -> DSLSpace:
    """The space bound to ``input_shape``; ``filters``/``dense`` shrink the network."""
    if len(nodes) != len(filters):
        from workbench.errors import ConfigError

        raise ConfigError(f"genetic_cnn: expected one filter count per stage ({len(nodes)}), "
                          f"found {len(filters)}")
    stages = []
    for s, (k, f) in enumerate(zip(nodes, filters), start=1):
        stages += [_conv_bn_relu(f),
                   dag_cell(k, partial(_vertex, f), wiring=genetic_wiring(),
                            merge="add", name=f"stage{s}"),
                   maxpool(2)]
    root = seq(*stages, flatten(), linear(dense), relu(), dropout(0.5),
               linear(num_classes, name="logits"))
    return DSLSpace(root, input_shape, num_classes, name="genetic_cnn",
                    description="Genetic CNN: 3 stages of 3/4/5 conv nodes wired by one bit "
                                "per node pair")

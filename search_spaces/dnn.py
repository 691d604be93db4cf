"""``dnn``: DeepArchitect's fully connected space (runs on any input: it flattens first).

``flatten -> repeat(cell, n in {1, 2}, untied) -> linear(classes)`` with
``cell = linear(units) -> nonlinearity -> permutation([optional(dropout), optional(batchnorm)])``:

* ``cell[i]/units`` in {64, 128, 256, 512, 1024}, per cell;
* ``nonlinearity`` in {relu, relu6, crelu, elu, softplus}, shared by every cell;
* ``dropout`` and ``batchnorm``: the two on/off switches, each shared by every cell;
  ``cell[i]/dropout/keep`` in {0.25, 0.5, 0.75}, per cell, asked only where dropout is on;
* ``order``: the order of the dropout and batch-norm slots ("0,1" = dropout first), shared.
  It is asked even when both switches are off (the permutation is part of the graph), as in
  DeepArchitect.

>>> space = make_space(input_shape=(1, 8, 8), num_classes=10)
>>> space.size()
5400
>>> space.parse('cell/n=1; cell[0]/units=64; nonlinearity="crelu"; order="1,0"; '
...             'batchnorm=true; dropout=false').tree.out_shape
(10,)
"""

from __future__ import annotations

from workbench.dsl import (
    DSLSpace,
    batchnorm,
    boolean,
    choice,
    crelu,
    dropout,
    elu,
    flatten,
    linear,
    one_of,
    optional,
    orders,
    permutation,
    relu,
    relu6,
    repeat,
    seq,
    softplus,
)

UNITS = (64, 128, 256, 512, 1024)
NONLINEARITIES = ("relu", "relu6", "crelu", "elu", "softplus")
KEEP = (0.25, 0.5, 0.75)


def make_space(input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10,
               units: tuple[int, ...] = UNITS, max_cells: int = 2) -> DSLSpace:
    """The space bound to ``input_shape``; ``units``/``max_cells`` widen or narrow it."""
    nonlinearity = choice(NONLINEARITIES, name="nonlinearity")
    use_dropout = boolean(name="dropout")
    use_batchnorm = boolean(name="batchnorm")
    order = orders(2, name="order")
    acts = {"relu": relu(), "relu6": relu6(), "crelu": crelu(), "elu": elu(),
            "softplus": softplus()}

    def cell(i: int):
        return seq(
            linear(choice(units)),
            one_of(acts, choice=nonlinearity, name="act"),
            permutation([optional(dropout(choice(KEEP)), switch=use_dropout, name="dropout"),
                         optional(batchnorm(), switch=use_batchnorm, name="batchnorm")],
                        order=order),
        )

    root = seq(flatten(), repeat(cell, choice(range(1, max_cells + 1)), name="cell"),
               linear(num_classes, name="logits"))
    return DSLSpace(root, input_shape, num_classes, name="dnn",
                    description="DeepArchitect MLP: 1-2 dense cells, shared nonlinearity, "
                                "optional dropout/batchnorm in a chosen order")

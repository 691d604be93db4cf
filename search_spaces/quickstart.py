"""``quickstart``: a small conv space (936 architectures) that trains in seconds on digits (1x8x8).

``repeat(block, n in {1, 2}, untied) -> optional(maxpool 2x2) -> global_pool -> linear(classes)``
with ``block = conv(filters in {8, 16, 32}, kernel in {3, 5}) -> optional(batchnorm) -> act``,
where the activation (relu, elu or tanh) is one decision shared by every block.

Paths: ``block/n``, ``block[i]/filters``, ``block[i]/kernel``, ``block[i]/batchnorm``,
``activation``, ``pool``.

>>> space = make_space()
>>> space.size()
936
>>> arch = space.seed("small")
>>> arch.tree.out_shape
(10,)
"""

from __future__ import annotations

from workbench.dsl import (
    DSLSpace,
    batchnorm,
    choice,
    conv2d,
    elu,
    global_pool,
    linear,
    maxpool,
    one_of,
    optional,
    relu,
    repeat,
    seq,
    tanh,
)

SEEDS = {
    "small": 'block/n=1; block[0]/filters=16; block[0]/kernel=3; block[0]/batchnorm=true; '
             'activation="relu"; pool=false',
}


def make_space(input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10) -> DSLSpace:
    """The space bound to ``input_shape`` (any (C, H, W); made for digits)."""
    activation = choice(["relu", "elu", "tanh"], name="activation")
    acts = {"relu": relu(), "elu": elu(), "tanh": tanh()}

    def block(i: int):
        return seq(conv2d(choice([8, 16, 32]), choice([3, 5])),
                   optional(batchnorm(), name="batchnorm"),
                   one_of(acts, choice=activation, name="act"))

    root = seq(repeat(block, choice([1, 2]), name="block"),
               optional(maxpool(2), name="pool"),
               global_pool(), linear(num_classes, name="logits"))
    return DSLSpace(root, input_shape, num_classes, name="quickstart", seeds=SEEDS,
                    description="small conv space for quick starts (1-2 conv blocks, "
                                "trains in seconds on digits)")

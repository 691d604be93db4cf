"""``deepconv``: the convolutional space of DeepArchitect's searcher comparison.

``conv(f in F, k in {3,5,7}, stride 2) -> M(F) -> conv(f in F, k in {3,5,7}, stride 2) -> M(2F)
-> global_pool -> linear(classes)`` with ``F = {48, 64, 80, 96, 112, 128}`` and ``2F`` each doubled.
``M(Fm)`` is a *tied* repeat (one set of choices copied to every repeat) of ``n in {1, 2, 4, 8,
16, 32}`` blocks ``conv(f in Fm, k in {3, 5}, stride 1) -> (relu, batchnorm) in a chosen order ->
optional(dropout(keep in {0.5, 0.9}))``.

Before the classifier the space takes a global average pool rather than flattening: the
classifier then has the same size on every input, and two stride-2 convolutions on an 8x8 digit
leave a 2x2 map either way. Strided convolutions use "same" padding, so no side drops below 1.

Paths: ``conv1/filters``, ``conv1/kernel``, ``m1/n``, ``m1/filters``, ``m1/kernel``, ``m1/order``,
``m1/dropout``, ``m1/dropout/keep``, then the same for ``conv2`` and ``m2``.

>>> make_space(input_shape=(3, 32, 32)).size()
60466176
"""

from __future__ import annotations

from workbench.dsl import (
    DSLSpace,
    batchnorm,
    choice,
    conv2d,
    dropout,
    global_pool,
    linear,
    optional,
    permutation,
    relu,
    repeat,
    seq,
)

FILTERS = (48, 64, 80, 96, 112, 128)
REPEATS = (1, 2, 4, 8, 16, 32)


def _module(filters: tuple[int, ...], repeats: tuple[int, ...], name: str):
    block = seq(conv2d(choice(filters), choice([3, 5]), 1),
                permutation([relu(), batchnorm()]),
                optional(dropout(choice([0.5, 0.9])), name="dropout"))
    return repeat(block, choice(repeats), tied=True, name=name)


def make_space(input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10,
               filters: tuple[int, ...] = FILTERS,
               repeats: tuple[int, ...] = REPEATS) -> DSLSpace:
    """The space bound to ``input_shape``; ``filters``/``repeats`` shrink it for quick runs."""
    doubled = tuple(2 * f for f in filters)
    root = seq(
        conv2d(choice(filters), choice([3, 5, 7]), 2, name="conv1"),
        _module(filters, repeats, "m1"),
        conv2d(choice(filters), choice([3, 5, 7]), 2, name="conv2"),
        _module(doubled, repeats, "m2"),
        global_pool(),
        linear(num_classes, name="logits"),
    )
    return DSLSpace(root, input_shape, num_classes, name="deepconv",
                    description="DeepArchitect conv space: 2 strided convs, each followed by a "
                                "tied repeat of conv/relu/bn/dropout blocks")

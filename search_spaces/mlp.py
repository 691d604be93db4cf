"""A small grammar written on the generic engine: multilayer perceptrons over flattened inputs.

It is also the worked example of docs/grammars.md: productions, probabilities and operations
with their shape rules in a few lines, compiled by the builders the compiler already has
(``flatten``, ``linear``, ``relu``, ``identity``, ``norm``).

>>> import random
>>> from workbench.spaces import get_space
>>> space = get_space("mlp", (1, 8, 8), 10)
>>> arch = space.sample(random.Random(3))
>>> arch.text
'mlp[flatten, last[block[linear(128), relu, identity]]]'
>>> space.parse(arch.text) == arch
True
"""

from __future__ import annotations

import math

from workbench.grammar import Form, Grammar, Invalid, Limits, Op
from workbench.spaces import GrammarSpace

WIDTHS = (32, 64, 128, 256)


def dense(n: int) -> Op:
    # linear acts on the last dim and has a bias: n * (d + 1) parameters
    return Op("linear", (n,), rule=lambda s: (n,), params=lambda s: (s[-1] + 1) * n)


def _flatten(shape: tuple[int, ...]):
    return (math.prod(shape),)


def _norm(shape: tuple[int, ...]):
    return shape if len(shape) == 1 else Invalid("expected a flat vector")


def build_grammar(depth_bias: float = 0.5) -> Grammar:
    """``net -> stack[block, net] | last[block]``: each extra block is half as likely."""
    return Grammar("mlp", start="start", limits=Limits(max_depth=8, max_nodes=80), rules={
        "start": [Form("mlp", [("in", "flatten"), ("body", "net")])],
        "flatten": [Op("flatten", rule=_flatten)],
        "net": [Form("stack", [("block", "block"), ("rest", "net")],
                     weight=lambda d: depth_bias ** (1 + d / 2)),
                Form("last", [("block", "block")], grows=False, weight=1.0)],
        "block": [Form("block", [("width", "width"), ("act", "act"), ("norm", "norm")],
                       grows=False)],
        "width": [dense(n) for n in WIDTHS],
        "act": [Op("relu"), Op("identity")],
        "norm": [Op("identity"), Op("norm", rule=_norm, params=lambda s: 2 * s[-1])],
    })


def make_space(input_shape=(1, 8, 8), num_classes: int = 10, *,
               depth_bias: float = 0.5) -> GrammarSpace:
    return GrammarSpace(build_grammar(depth_bias), input_shape, num_classes, name="mlp",
                        description="MLP blocks over the flattened input (example grammar)")

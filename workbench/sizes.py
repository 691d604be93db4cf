"""Sizes predicted from the derivation tree alone, checked before any module is built.

Every shape in a derivation tree is inferred in closed form, so the parameters (head included),
the activation values of one forward pass and an estimate of the FLOPs are known without
allocating a single weight. :func:`check_sizes` runs first in every build (the compiler calls it),
so no number a user typed -- a billion classes, a huge input -- can make a worker, the driver or
the UI server allocate without bound.

>>> from workbench.spaces import get_space
>>> arch = get_space("einspace", (3, 8, 8), 10).parse(
...     "sequential[computation[linear(16)], computation[relu]]")
>>> s = predict_sizes(arch)
>>> s.params_backbone, s.params_head, s.activations
(144, 40, 768)
>>> check_sizes(arch, Limits(max_params=100))
Traceback (most recent call last):
...
workbench.errors.ConfigError: architecture too large: predicted 184 parameters (head included), expected at most 100
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.architecture import Architecture, Node
from workbench.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """What one candidate may need. ``max_activations`` counts the values one example's forward
    pass produces (x4 bytes in fp32; training keeps about as many again for the backward pass)."""

    max_params: int = 250_000_000
    max_activations: int = 500_000_000
    max_flops: int = 10**13


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class Sizes:
    params_backbone: int | None  # None where the tree does not say (a builder sizes it lazily)
    params_head: int
    activations: int  # values produced by one example's forward pass (leaves, replicas counted)
    flops: int | None  # estimate: 2 per multiply-add of every linear/conv leaf

    @property
    def params_total(self) -> int | None:
        return None if self.params_backbone is None else self.params_backbone + self.params_head


def head_params(out_shape: tuple[int, ...], num_classes: int) -> int:
    """Parameters of the classification head (mean-pool then linear; see ``ops.Head``)."""
    rank = len(out_shape)
    features = out_shape[0] if rank == 3 else out_shape[-1] if rank == 2 else math.prod(out_shape)
    if rank == 1 and features == num_classes:
        return 0  # the space ends in its own classifier
    return features * num_classes + num_classes


def _replicas(node: Node) -> int:
    return int(node.attr("k", 1)) if node.symbol == "branching" and len(node.children) == 3 else 1


def _walk(node: Node, times: int, acc: list[int]) -> None:
    """acc = [activations, flops, flops_known] over the leaves, replicated branches k times."""
    if not node.children:
        out = math.prod(node.out_shape) if node.out_shape else 0
        acc[0] += times * out
        if node.symbol == "linear" and node.in_shape and node.out_shape:
            positions = math.prod(node.out_shape[:-1]) if len(node.out_shape) > 1 else 1
            acc[1] += times * 2 * node.in_shape[-1] * node.out_shape[-1] * positions
        elif node.symbol in ("conv", "conv2d"):
            acc[2] = 0  # sized by its builder: not estimated here
        return
    k = _replicas(node)
    for i, child in enumerate(node.children):
        _walk(child, times * (k if k > 1 and i == 1 else 1), acc)


def predict_sizes(arch: Architecture) -> Sizes:
    from workbench.diagrams import params

    acc = [0, 0, 1]
    _walk(arch.tree, 1, acc)
    return Sizes(params(arch.tree), head_params(tuple(arch.tree.out_shape), arch.num_classes),
                 acc[0], acc[1] if acc[2] else None)


def check_sizes(arch: Architecture, limits: Limits = DEFAULT_LIMITS) -> Sizes:
    """The predicted sizes, or a ConfigError saying which limit the candidate exceeds."""
    s = predict_sizes(arch)
    total = s.params_total if s.params_total is not None else s.params_head
    if total > limits.max_params:
        raise ConfigError(f"architecture too large: predicted {total:,} parameters (head "
                          f"included), expected at most {limits.max_params:,}")
    if s.activations > limits.max_activations:
        raise ConfigError(f"architecture too large: predicted {s.activations:,} activation values "
                          f"per example, expected at most {limits.max_activations:,}")
    if s.flops is not None and s.flops > limits.max_flops:
        raise ConfigError(f"architecture too large: predicted {s.flops:,} FLOPs per example, "
                          f"expected at most {limits.max_flops:,}")
    return s

"""Static metrics of a compiled model: parameters, FLOPs, output shape."""

from __future__ import annotations

import torch
from torch import nn


def count_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on a single input, as counted by ``torch.utils.flop_counter``
    (matrix products and convolutions, 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def output_shape(module: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape (without batch) of ``module``'s output on a batch of 2 zero inputs."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return tuple(module(torch.zeros(2, *input_shape)).shape[1:])
    finally:
        module.train(was_training)


def static_metrics(arch) -> dict:
    """Parameters (backbone/total), FLOPs and shapes of an architecture, checked against the model.

    >>> from workbench.spaces import get_space
    >>> m = static_metrics(get_space("einspace", (3, 8, 8), 10).parse(
    ...     "sequential[computation[linear(16)], computation[relu]]"))
    >>> m["params_backbone"], m["output_shape"]
    (144, [3, 8, 16])
    """
    from workbench.compiler import compile_model

    model = compile_model(arch)
    backbone_shape = output_shape(model.backbone, arch.input_shape)
    return {
        "space": arch.space,
        "hash": arch.hash,
        "text": arch.text,
        "input_shape": list(arch.input_shape),
        "num_classes": arch.num_classes,
        "params_backbone": count_params(model.backbone),
        "params_total": count_params(model),
        "flops": count_flops(model, arch.input_shape),
        "output_shape": list(backbone_shape),
        "predicted_output_shape": list(arch.tree.out_shape),
        "logits_shape": list(output_shape(model, arch.input_shape)),
        "nodes": arch.nodes,
        "depth": arch.tree.depth,
        "decisions": len(arch.decisions),
    }

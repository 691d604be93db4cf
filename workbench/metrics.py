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


def measure_latency(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str,
                    *, dtype: torch.dtype = torch.float32, warmup: int = 3,
                    repeats: int = 10) -> float:
    """Median wall time in milliseconds of one forward pass at batch 1 on ``device``.

    The model runs in eval mode under ``torch.inference_mode`` (autocast to ``dtype`` when it is
    not float32) after ``warmup`` untimed passes; on CUDA every pass is synchronised, so the
    time is the kernels' time and not just the launch.

    >>> ms = measure_latency(nn.Linear(8, 2), (8,), "cpu", repeats=3)
    >>> 0 < ms < 1000
    True
    """
    import statistics
    import time

    device = torch.device(device)
    cuda = device.type == "cuda"
    was_training = model.training
    model.eval()
    x = torch.zeros(1, *input_shape, device=device)
    times = []
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype,
                                                     enabled=dtype != torch.float32):
            for i in range(warmup + repeats):
                if cuda:
                    torch.cuda.synchronize(device)
                start = time.perf_counter()
                model(x)
                if cuda:
                    torch.cuda.synchronize(device)
                if i >= warmup:
                    times.append(time.perf_counter() - start)
    finally:
        model.train(was_training)
    return statistics.median(times) * 1000.0


def estimate_training_memory_mb(model: nn.Module, batch: torch.Tensor, *,
                                optimizer_states: int = 2) -> float:
    """Estimated peak memory of one training step in MiB, without allocator statistics (for CPU,
    where no allocator tracks peaks: RSS is noisy and tracemalloc does not see torch's memory).

    Counts parameters, their gradients and ``optimizer_states`` buffers per parameter (2 for
    Adam(W), 1 for SGD with momentum), the input batch, and every tensor autograd saves for the
    backward pass of one forward on ``batch`` (each storage once; parameters excluded). It is
    deterministic, so it can be compared across runs.

    >>> mb = estimate_training_memory_mb(nn.Sequential(nn.Linear(256, 256), nn.ReLU()),
    ...                                  torch.zeros(1024, 256))
    >>> round(mb, 2)  # 4 x 257 KiB of weights + 1 MiB of inputs + 1 MiB saved by ReLU
    3.0
    """
    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in param_storages:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    was_training = model.training
    model.train()
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), torch.enable_grad():
            model(batch)
    finally:
        model.train(was_training)
    batch_storage = batch.untyped_storage()
    saved.pop(batch_storage.data_ptr(), None)  # counted once below
    total = param_bytes * (2 + optimizer_states) + batch_storage.nbytes() + sum(saved.values())
    return total / 2**20

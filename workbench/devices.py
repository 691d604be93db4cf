"""Device and precision selection for training: where a trial runs and at which precision.

>>> select_device("cpu")
device(type='cpu')
>>> select_precision("auto", torch.device("cpu"))
torch.float32
>>> select_device("tpu")
Traceback (most recent call last):
...
workbench.errors.ConfigError: expected a device 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', found 'tpu'
"""

from __future__ import annotations

import os

import torch

from workbench.errors import ConfigError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def select_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    A CUDA device comes back with its index, so its name (``cuda:0``) is stable in results.
    """
    name = str(device).strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"expected a device 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', "
                          f"found {str(device)!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"expected an available CUDA device for {str(device)!r}, found none "
                              f"(torch {torch.__version__} sees no GPU)")
        count = torch.cuda.device_count()
        index = torch.cuda.current_device() if dev.index is None else dev.index
        if index >= count:
            raise ConfigError(f"expected a CUDA index below {count}, found {str(device)!r}")
        return torch.device("cuda", index)
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"expected an available MPS device for {str(device)!r}, found none")
    return dev


def select_precision(amp: str, device: torch.device) -> torch.dtype:
    """The autocast dtype for ``amp``: ``"auto"`` (CUDA: bf16 where supported, else fp16 with a
    gradient scaler; elsewhere fp32), ``"off"``/``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA only)."""
    key = str(amp).strip().lower()
    if key == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if key == "off":
        key = "fp32"
    if key not in PRECISIONS:
        raise ConfigError(f"expected amp 'auto', 'off', 'fp32', 'bf16' or 'fp16', found {amp!r}")
    if key == "fp16" and device.type != "cuda":
        raise ConfigError(f"expected a CUDA device for amp='fp16', found {device}")
    return PRECISIONS[key]


def precision_name(dtype: torch.dtype) -> str:
    """Short name of an autocast dtype.

    >>> precision_name(torch.bfloat16)
    'bf16'
    """
    return next(k for k, v in PRECISIONS.items() if v == dtype)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA only), e.g. before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def configure_cuda() -> None:
    """Speed settings for a process that trains on CUDA (idempotent, process-wide).

    TF32 matrix products speed up the fp32 parts (``amp="off"``, optimizer maths) at about
    bf16-level precision of the mantissa product, which search does not notice. cuDNN autotuning
    (``cudnn.benchmark``) is off unless ``WORKBENCH_CUDNN_BENCHMARK=1``: it times every algorithm
    for every new convolution shape, and in a search nearly every candidate brings new shapes,
    so short trials pay the tuning without living long enough to earn it back.
    """
    torch.backends.cudnn.benchmark = os.environ.get("WORKBENCH_CUDNN_BENCHMARK", "0") == "1"
    torch.set_float32_matmul_precision("high")


def device_name(device: torch.device) -> str:
    """``cuda:0`` / ``cpu``: the name used in results and messages."""
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)

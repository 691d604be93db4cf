"""What a GPU can hold and how busy it is: free memory (NVML), a trial's memory estimate, how
many trials fit on a device, out-of-memory errors recognised, utilisation sampling.

The process pool plans its slots from these (:func:`workbench.executors.process.plan_slots`:
``trials_per_gpu`` slots per device, ``"auto"`` from :func:`auto_trials_per_gpu`).

>>> auto_trials_per_gpu("cuda:0", free_mb=4096)  # (0.85 x 4096) // (1024 + 512) MiB
2
>>> is_oom_error("CUDA out of memory. Tried to allocate 2.00 GiB")
True
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

MAX_AUTO_TRIALS = 8  # beyond this, time-slicing one GPU between processes stops paying
DEFAULT_TRIAL_MB = 1024.0  # assumed peak of one small candidate when nothing better is known
CONTEXT_MB = 512.0  # a CUDA context (+ cuBLAS/cuDNN workspaces) per worker process
FREE_FRACTION = 0.85  # of the free memory planned for: allocator fragmentation needs slack
OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory", "memoryerror")

__all__ = ["auto_trials_per_gpu", "free_memory_mb", "estimate_trial_memory_mb", "is_oom_error",
           "GpuSampler"]


def __getattr__(name: str) -> Any:
    # plan_slots moved to the process pool that uses it; ``from workbench.gpu import plan_slots``
    # keeps working (imported on use: the pool itself imports this module)
    if name == "plan_slots":
        from workbench.executors.process import plan_slots

        return plan_slots
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def auto_trials_per_gpu(device: str, trial_mb: float | None = None, *,
                        free_mb: float | None = None) -> int:
    """How many trials fit on ``device`` at once: ``FREE_FRACTION`` of its free memory divided by
    one slot's need (``trial_mb`` + a CUDA context), clamped to 1..``MAX_AUTO_TRIALS``.

    >>> auto_trials_per_gpu("cuda:0", 2048, free_mb=20_000)
    6
    >>> auto_trials_per_gpu("cuda:0", 100_000, free_mb=20_000)
    1
    """
    free = free_memory_mb(device) if free_mb is None else free_mb
    if free is None:
        log.warning("free memory of %s unknown: planning 1 trial on it", device)
        return 1
    need = (trial_mb or DEFAULT_TRIAL_MB) + CONTEXT_MB
    return max(1, min(MAX_AUTO_TRIALS, int(free * FREE_FRACTION // need)))


def free_memory_mb(device: str) -> float | None:
    """Free memory of a CUDA device in MiB: through NVML when it is there (creates no CUDA context
    in the calling process), else ``torch.cuda.mem_get_info``; None off CUDA."""
    if not str(device).startswith("cuda"):
        return None
    index = int(str(device).partition(":")[2] or 0)
    nvml = _Nvml.get()
    if nvml is not None:
        try:
            return nvml.free_mb(index)
        except Exception as exc:  # a driver hiccup: fall back to torch
            log.debug("NVML free memory failed: %s", exc)
    import torch

    if not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(index)
    return free / 2**20


def estimate_trial_memory_mb(arch, batch_size: int, *, optimizer: str = "adamw",
                             amp: bool = True) -> float:
    """Estimated peak training memory of one candidate at ``batch_size``, from one CPU forward
    (:func:`workbench.metrics.estimate_training_memory_mb`, fp32). Mixed precision stores most
    activations in 16 bits, so with ``amp`` the activation part is halved; the allocator's
    rounding and cuDNN workspaces are not counted, so plan with slack (see ``FREE_FRACTION``).
    """
    import torch

    from workbench.compiler import compile_model
    from workbench.metrics import estimate_training_memory_mb

    model = compile_model(arch, seed=0)
    params_mb = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    states = 2 if optimizer == "adamw" else 1
    total = estimate_training_memory_mb(model, torch.zeros(batch_size, *arch.input_shape),
                                        optimizer_states=states)
    weights_mb = params_mb * (2 + states)
    return weights_mb + (total - weights_mb) * (0.5 if amp else 1.0)


def is_oom_error(error: str | None) -> bool:
    """Whether a trial's one-line error says it ran out of memory (device or host allocator).

    >>> is_oom_error("out of memory on cuda:0 (batch 128)")
    True
    >>> is_oom_error("RuntimeError: DefaultCPUAllocator: can't allocate memory: you tried ...")
    True
    >>> is_oom_error("loss became nan at epoch 1 step 3")
    False
    """
    text = (error or "").lower()
    return any(m in text for m in OOM_MARKERS)


# -- NVML: GPU utilisation without a CUDA context --------------------------------------------------
class _Nvml:
    """NVML through ``pynvml`` (package ``nvidia-ml-py``) when installed, else ``ctypes`` on
    ``libnvidia-ml.so.1`` (ships with the driver). ``get()`` is None where neither works."""

    _instance: _Nvml | None = None
    _tried = False

    def __init__(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
            self._py, self._lib = pynvml, None
        except Exception:  # not installed, or no driver: try the driver's library directly
            self._py = None
            self._lib = ctypes.CDLL("libnvidia-ml.so.1")
            if self._lib.nvmlInit_v2() != 0:
                raise OSError("nvmlInit_v2 failed") from None

    @classmethod
    def get(cls) -> _Nvml | None:
        if not cls._tried:
            cls._tried = True
            try:
                cls._instance = cls()
            except Exception as exc:
                log.debug("NVML unavailable: %s", exc)
        return cls._instance

    def _cdll(self) -> ctypes.CDLL:
        assert self._lib is not None, "NVML loaded through neither pynvml nor libnvidia-ml"
        return self._lib

    def _handle(self, index: int):
        if self._py is not None:
            return self._py.nvmlDeviceGetHandleByIndex(index)
        handle = ctypes.c_void_p()
        if self._cdll().nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)) != 0:
            raise OSError(f"NVML: no device {index}")
        return handle

    def utilization(self, index: int) -> float:
        """Percent of the last sample period in which a kernel ran (NVML's ``gpu`` rate)."""
        handle = self._handle(index)
        if self._py is not None:
            return float(self._py.nvmlDeviceGetUtilizationRates(handle).gpu)

        class Rates(ctypes.Structure):
            _fields_ = [("gpu", ctypes.c_uint), ("memory", ctypes.c_uint)]

        rates = Rates()
        if self._cdll().nvmlDeviceGetUtilizationRates(handle, ctypes.byref(rates)) != 0:
            raise OSError("NVML: utilisation query failed")
        return float(rates.gpu)

    def free_mb(self, index: int) -> float:
        handle = self._handle(index)
        if self._py is not None:
            return self._py.nvmlDeviceGetMemoryInfo(handle).free / 2**20

        class Memory(ctypes.Structure):
            _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong),
                        ("used", ctypes.c_ulonglong)]

        mem = Memory()
        if self._cdll().nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem)) != 0:
            raise OSError("NVML: memory query failed")
        return mem.free / 2**20


class GpuSampler:
    """Samples GPU utilisation (NVML) in a background thread while a block runs.

    ``busy_fraction`` is the mean of NVML's utilisation over the samples, in [0, 1], per device
    index; None when NVML is unavailable (CPU-only machines), so callers print "n/a".

    >>> with GpuSampler([], interval=0.01) as s:
    ...     pass
    >>> s.busy_fraction() is None
    True
    """

    def __init__(self, indices: list[int], interval: float = 0.2):
        self.indices, self.interval = list(indices), interval
        self.samples: dict[int, list[float]] = {i: [] for i in self.indices}
        self._nvml = _Nvml.get() if self.indices else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def available(self) -> bool:
        return self._nvml is not None

    def __enter__(self) -> GpuSampler:
        if self._nvml is not None:
            self._thread = threading.Thread(target=self._run, name="gpu-sampler", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        nvml = self._nvml
        if nvml is None:  # only started with NVML available
            return
        while not self._stop.is_set():
            for i in self.indices:
                try:
                    self.samples[i].append(nvml.utilization(i) / 100.0)
                except Exception as exc:  # keep sampling the others
                    log.debug("NVML sample of GPU %d failed: %s", i, exc)
            time.sleep(self.interval)

    def busy_fraction(self, index: int | None = None) -> float | None:
        """Mean utilisation of one device, or of all sampled devices together."""
        values = (self.samples.get(index, []) if index is not None
                  else [v for vs in self.samples.values() for v in vs])
        if self._nvml is None or not values:
            return None
        return sum(values) / len(values)

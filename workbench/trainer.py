"""Evaluate an architecture on a task: train within a budget, return metrics and a learning curve.

``evaluate`` never raises for a bad candidate: shape errors, NaN/Inf losses and out-of-memory
become ``EvalResult(state=TrialState.FAILED, error=<one line>)``. Configuration mistakes of the caller (an
unknown device or precision, a bad budget) still raise :class:`~workbench.errors.ConfigError`.

>>> from workbench.spaces import get_space
>>> from workbench.tasks import get_task
>>> task = get_task("synthetic", n=128)
>>> arch = get_space("einspace", task.input_shape, task.num_classes).parse(
...     "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]")
>>> result = evaluate(arch, task, Budget(epochs=2, batch_size=32))
>>> result.state.value, len(result.curve), result.metrics["steps"], result.metrics["params"]
('complete', 2, 100, 516)

90 training samples make 2 batches of 32, but an epoch is at least ``min_epoch_steps`` (50)
steps: 2 epochs are 100 steps, about 36 passes over the data (see :mod:`workbench.budget`).

>>> result.metrics["passes"], evaluate(arch, task, Budget(steps=7, batch_size=32)).metrics["steps"]
(35.556, 7)
"""

from __future__ import annotations

import logging
import math
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from storage.records import TrialState
from workbench.budget import DEFAULT_LR, DEFAULT_WEIGHT_DECAY, Budget, lr_factor
from workbench.devices import (
    configure_cuda,
    device_name,
    precision_name,
    select_device,
    select_precision,
    synchronize,
)
from workbench.errors import ConfigError, TrialError

log = logging.getLogger(__name__)

COMPLETE, FAILED = TrialState.COMPLETE, TrialState.FAILED
NAN_CHECK_EVERY = 50  # steps between host syncs that look for a non-finite loss
COMPILE_CACHE_SIZE = 4  # compiled candidates kept per worker (below dynamo's recompile limit, 8)

__all__ = ["DEFAULT_LR", "DEFAULT_WEIGHT_DECAY", "Budget", "EvalResult", "evaluate",
           "select_device"]


@dataclass(frozen=True)
class EvalResult:
    """Outcome of one evaluation. ``metrics["val_accuracy"]`` is the search signal;
    ``test_accuracy`` is reported only. ``state_dict`` (CPU tensors) only with keep_weights."""

    state: TrialState
    metrics: dict
    curve: tuple[dict, ...] = ()
    error: str | None = None
    state_dict: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.state == COMPLETE

    def to_dict(self) -> dict:
        """JSON-ready (weights left out)."""
        return {"state": self.state.value, "metrics": dict(self.metrics),
                "curve": [dict(p) for p in self.curve], "error": self.error}


class _Progress:
    """Mutable record of a run so far, read by the failure handler to say where it broke."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.epoch = 0
        self.step = 0
        self.epochs_done = 0
        self.batch_size = 0
        self.curve: list[dict] = []
        self.metrics: dict = {}
        self.compile_key: tuple | None = None


def evaluate(arch, task, budget: Budget = Budget(), *, device: str | torch.device = "auto",
             seed: int = 0, amp: str = "auto", keep_weights: bool = False,
             compile: bool | str | None = None) -> EvalResult:
    """Compile ``arch`` (weights from ``seed``), train it on ``task`` within ``budget``, evaluate.

    Batches are drawn by a ``torch.Generator`` seeded with ``seed``, so on CPU the same seed gives
    the same curve and metrics (timings aside). Metrics: ``val_accuracy`` (final epoch),
    ``best_val_accuracy``, ``val_loss``, ``test_accuracy``, ``train_loss``, ``params``,
    ``params_backbone``, ``flops``, ``latency_ms`` (median batch-1 forward), ``peak_memory_mb``
    (CUDA: ``max_memory_allocated``; elsewhere the deterministic estimate of
    :func:`workbench.metrics.estimate_training_memory_mb`), ``wall_time_s``, ``epochs`` (completed),
    ``steps``, ``planned_steps``, ``warmup_steps``, ``passes`` (over the training split),
    ``batch_size``, ``device``, ``precision``. Training batches of a task with ``augment`` are
    augmented (:mod:`workbench.tasks.augment`) with draws from the same seeded generator.

    The task's tensors are copied to the device once per process and kept (see
    :func:`_on_device`); on CUDA, convolution inputs and weights are channels-last and the
    optimizer is the fused one (no per-step host sync, also under fp16's gradient scaler).

    ``compile`` (default ``budget.compile``): train through ``torch.compile`` (``True``: inductor;
    a string: that backend). Only the training step is compiled; evaluation and latency run the
    same weights eagerly (an eval-mode graph would double the compile time for a few batches).
    Compiled modules are cached per process by architecture hash, device, precision and backend,
    so another trial of the same architecture (a new seed or fidelity) loads its initial weights
    into the cached module and compiles nothing. When compilation fails the trial goes on eagerly.
    Metrics ``compiled`` (bool), ``compile_backend``, ``compile_cached`` and ``compile_s`` (the
    first compiled step, compilation included) or ``compile_error`` (one line) say what happened.
    """
    dev = select_device(device)
    dtype = select_precision(amp, dev)
    backend = _backend(budget.compile if compile is None else compile)
    if dev.type == "cuda":
        configure_cuda()
    progress = _Progress()
    progress.metrics.update(device=device_name(dev), precision=precision_name(dtype))
    t0 = time.perf_counter()
    failed, model = False, None
    try:
        model = _build(arch, task, seed, progress)
        state_dict = _train(model, task, budget, dev, dtype, seed, progress, keep_weights,
                            backend, arch.hash)
        return EvalResult(COMPLETE, _finish(progress, t0), tuple(progress.curve),
                          state_dict=state_dict)
    except Exception as exc:  # a failed candidate is a result, never a crash
        failed = True
        error = _describe(exc, progress, dev)
        log.info("trial failed (%s): %s", arch.hash, error)
        # a failed trial's compiled module may hold broken state; after an OOM drop them all,
        # their memory is what the next trial needs
        _forget_compiled(progress.compile_key, everything=_is_oom(exc))
        return EvalResult(FAILED, _finish(progress, t0), tuple(progress.curve), error=error)
    finally:
        if failed and dev.type == "cuda":
            model = None  # drop the last reference first, so its blocks can be released
            torch.cuda.empty_cache()  # give an OOM'd trial's memory back before the next trial


# -- per-process caches: the task on the device, compiled candidates ------------------------------
_DEVICE_TASK: list = []  # [(weakref to the source task, device, task on device)], at most one
_COMPILED: OrderedDict[tuple, tuple[nn.Module, nn.Module]] = OrderedDict()  # key -> (eager, compiled)
_COMPILE_FAILED: dict[tuple, str] = {}  # key -> error: do not pay a failing compilation twice


def _on_device(task, dev: torch.device):
    """``task`` with its tensors on ``dev``, copied once per process and kept for the next trials
    (a worker keeps one task, see ``workbench.jobs``): the copy is the same object as long as the
    source task is. One copy at a time keeps device memory flat."""
    if task.x_train.device == dev:
        return task
    if _DEVICE_TASK:
        source, where, moved = _DEVICE_TASK[0]
        if source() is task and where == dev:
            return moved
    _DEVICE_TASK.clear()  # release the old copy before making the new one
    moved = task.to(dev)
    _DEVICE_TASK.append((weakref.ref(task), dev, moved))
    return moved


def _backend(value: bool | str) -> str | None:
    """The torch.compile backend for a ``compile`` option (None: eager); unknown -> ConfigError."""
    if value is False or value is None:
        return None
    backend = "inductor" if value is True else str(value)
    from torch import _dynamo

    if backend not in _dynamo.list_backends(exclude_tags=()):
        common = ", ".join(sorted(_dynamo.list_backends()))
        raise ConfigError(f"expected compile true, false or a torch.compile backend "
                          f"(e.g. {common}), found {value!r}")
    return backend


def _compiled_pair(model: nn.Module, key: tuple, progress: _Progress, to_device):
    """(eager module, module to train through) for ``model``, from the cache when possible.

    ``to_device`` moves a fresh model to the training device. On a cache hit the fresh model's
    initial weights (this trial's seed) are copied into the cached module, whose compiled graphs
    stay valid: same parameter objects, shapes and dtypes."""
    progress.metrics.update(compile_backend=key[-1])
    if key in _COMPILE_FAILED:
        progress.metrics.update(compiled=False, compile_cached=True,
                                compile_error=_COMPILE_FAILED[key])
        model = to_device(model)
        return model, model
    hit = _COMPILED.get(key)
    if hit is not None:
        eager, compiled = hit
        eager.load_state_dict(model.state_dict())
        _COMPILED.move_to_end(key)
        progress.compile_key = key
        progress.metrics.update(compiled=True, compile_cached=True)
        return eager, compiled
    if len(_COMPILED) >= COMPILE_CACHE_SIZE:
        # every cached candidate holds guard entries on code objects all candidates share (the
        # compiler's module classes); past dynamo's recompile limit they would silently run
        # eagerly, so start over rather than evict one
        from torch import _dynamo

        _COMPILED.clear()
        _dynamo.reset()
    model = to_device(model)
    # torch.compile of a module returns an OptimizedModule (an nn.Module); its stub says Callable
    compiled = cast(nn.Module, torch.compile(model, backend=key[-1]))
    _COMPILED[key] = (model, compiled)
    progress.compile_key = key
    progress.metrics.update(compiled=True, compile_cached=False)
    return model, compiled


def _compile_failed(progress: _Progress, why: str) -> None:
    """Record a compilation that failed (the trial goes on eagerly) and remember it."""
    key = progress.compile_key
    message = " ".join(why.split()).split(" Set TORCHDYNAMO_VERBOSE")[0][:300]
    log.warning("torch.compile failed, training eagerly: %s", message)
    progress.metrics.update(compiled=False, compile_error=message)
    _forget_compiled(key)
    if len(_COMPILE_FAILED) > 256:
        _COMPILE_FAILED.clear()
    if key is not None:
        _COMPILE_FAILED[key] = message


def _forget_compiled(key: tuple | None, *, everything: bool = False) -> None:
    if everything:
        _COMPILED.clear()
    elif key is not None:
        _COMPILED.pop(key, None)


def _graph_count() -> int:
    """Graphs dynamo has compiled in this process: unchanged after a first compiled call means
    dynamo ran the model eagerly (e.g. past its recompile limit) without raising."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def _build(arch, task, seed: int, progress: _Progress) -> nn.Module:
    from workbench.compiler import compile_model  # lazy: importing the trainer stays light
    from workbench.metrics import count_flops, count_params

    if tuple(arch.input_shape) != tuple(task.input_shape):
        raise TrialError(f"input shape mismatch: architecture expects {tuple(arch.input_shape)}, "
                         f"task {task.name!r} gives {tuple(task.input_shape)}")
    if arch.num_classes != task.num_classes:
        raise TrialError(f"class count mismatch: architecture has {arch.num_classes} outputs, "
                         f"task {task.name!r} has {task.num_classes} classes")
    progress.phase = "compile"
    model = compile_model(arch, seed=seed)
    progress.metrics.update(params=count_params(model), params_backbone=count_params(model.backbone))
    progress.phase = "flop count"
    progress.metrics["flops"] = count_flops(model, tuple(arch.input_shape))
    return model


def _optimizer(model: nn.Module, budget: Budget, total_steps: int, fused: bool = False):
    """Optimizer and per-step LR schedule (warm-up, then ``budget.schedule``). Weight decay skips biases and norm parameters (1-D
    tensors): decaying them only hurts. ``fused`` (CUDA): one kernel for all parameters, and
    fp16's gradient scaler hands it the inf check as a tensor instead of syncing every step."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": budget.decay},
              {"params": no_decay, "weight_decay": 0.0}]
    opt: torch.optim.Optimizer
    if budget.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=budget.learning_rate, momentum=budget.momentum,
                              nesterov=budget.momentum > 0, fused=fused or None)
    else:
        opt = torch.optim.AdamW(groups, lr=budget.learning_rate, fused=fused or None)

    def factor(step: int) -> float:
        return lr_factor(budget, step, total_steps)

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _forward_backward(model: nn.Module, xb: torch.Tensor, yb: torch.Tensor, autocast: dict,
                      optimizer, scaler, label_smoothing: float,
                      progress: _Progress) -> torch.Tensor:
    """Loss of one batch (not synced to the host), gradients accumulated into fresh buffers."""
    progress.phase = "forward"
    with torch.autocast(**autocast):
        logits = model(xb)  # [B, classes]
    loss = F.cross_entropy(logits.float(), yb, label_smoothing=label_smoothing)
    progress.phase = "backward"
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    return loss


def _train(model: nn.Module, task, budget: Budget, dev: torch.device, dtype: torch.dtype,
           seed: int, progress: _Progress, keep_weights: bool, backend: str | None = None,
           arch_hash: str = "") -> dict | None:
    from workbench.metrics import estimate_training_memory_mb, measure_latency

    progress.phase = "setup"
    task = _on_device(task, dev)  # once per process: every batch below is gathered on the device
    # channels-last makes cuDNN's convolutions use tensor cores without transposes; off CUDA it
    # only costs copies
    channels_last = dev.type == "cuda" and len(task.input_shape) == 3
    memory_format = torch.channels_last if channels_last else torch.preserve_format

    def to_device(m: nn.Module) -> nn.Module:
        # Module.to takes memory_format (documented in its docstring); the stub overloads omit it
        return m.to(dev, memory_format=memory_format)  # type: ignore[call-overload]

    if backend:
        progress.phase = "torch.compile"
        key = (arch_hash, device_name(dev), str(memory_format), precision_name(dtype), backend)
        model, step_model = _compiled_pair(model, key, progress, to_device)
    else:
        model = step_model = to_device(model)
    verify_compile = step_model is not model and not progress.metrics.get("compile_cached")
    n = len(task.y_train)
    bs = min(budget.batch_size, n)
    # the last partial batch of a pass is dropped: a batch of one breaks BatchNorm, and equal
    # batches keep the loss scale even across steps; an epoch may span several passes
    # (min_epoch_steps), so tiny datasets still give every candidate enough steps
    steps_per_epoch = budget.steps_per_epoch(n)
    planned = budget.planned_steps(n)
    progress.batch_size = bs
    progress.metrics.update(planned_steps=planned, warmup_steps=budget.warmup_steps(planned))
    optimizer, schedule = _optimizer(model, budget, planned, fused=dev.type == "cuda")
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    autocast = dict(device_type=dev.type, dtype=dtype, enabled=dtype != torch.float32)
    gen = torch.Generator().manual_seed(seed)  # CPU generator: same batches on every device
    batches = _batches(n, bs, gen, dev)
    augment = getattr(task, "augment", ())
    if augment:
        from workbench.tasks.augment import augment_batch
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    train_start = time.perf_counter()
    stop = False
    for epoch in range(1, budget.epochs_needed(n) + 1):
        progress.epoch = epoch
        epoch_start = time.perf_counter()
        model.train()
        loss_sum = torch.zeros((), device=dev)  # summed on device: no sync per step
        first_bad = torch.full((), -1, dtype=torch.long, device=dev)  # first non-finite step
        bad_loss = torch.zeros((), device=dev)
        done = 0
        for _ in range(min(steps_per_epoch, planned - progress.step)):
            idx = next(batches)
            xb, yb = task.x_train[idx], task.y_train[idx]  # [B, C, H, W], [B]
            if augment:
                xb = augment_batch(xb, augment, task.crop_padding, gen)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            args = (xb, yb, autocast, optimizer, scaler, budget.label_smoothing, progress)
            if step_model is model:
                loss = _forward_backward(model, *args)
            else:
                try:
                    graphs, t_step = _graph_count(), time.perf_counter()
                    loss = _forward_backward(step_model, *args)
                    if verify_compile:  # the first compiled step: compilation happened here
                        verify_compile = False
                        synchronize(dev)
                        progress.metrics["compile_s"] = time.perf_counter() - t_step
                        if _graph_count() == graphs:
                            _compile_failed(progress, "torch.compile produced no graph")
                            step_model = model
                except Exception as exc:
                    if _is_oom(exc):
                        raise  # the candidate does not fit: compiled or not, it fails
                    # compilation (forward, or the lazily compiled backward) broke: redo the step
                    # eagerly; nothing was applied yet (the optimizer steps below)
                    _compile_failed(progress, f"{type(exc).__name__}: {exc}")
                    step_model = model
                    loss = _forward_backward(model, *args)
            progress.phase = "optimizer step"
            if budget.grad_clip:
                scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
                nn.utils.clip_grad_norm_(model.parameters(), budget.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            done += 1
            progress.step += 1
            loss = loss.detach()
            loss_sum += loss
            new_bad = (first_bad < 0) & ~torch.isfinite(loss)
            first_bad = torch.where(new_bad, progress.step, first_bad)
            bad_loss = torch.where(new_bad, loss, bad_loss)
            if progress.step % NAN_CHECK_EVERY == 0:
                _check_finite(first_bad, bad_loss, epoch)
            if progress.step >= planned:
                stop = True
            elif budget.max_seconds and time.perf_counter() - train_start >= budget.max_seconds:
                stop = True  # graceful: this step is finished, the model is still evaluated
            if stop:
                break
        _check_finite(first_bad, bad_loss, epoch)
        progress.epochs_done += done == steps_per_epoch
        progress.phase = "evaluation"
        val_loss, val_acc = _score(model, task.x_val, task.y_val, bs, autocast, channels_last)
        synchronize(dev)
        progress.curve.append({
            "epoch": epoch, "step": progress.step,
            "train_loss": (loss_sum / max(done, 1)).item(),  # one sync per epoch
            "val_loss": val_loss, "val_accuracy": val_acc,
            "seconds": time.perf_counter() - epoch_start,
        })
        log.debug("epoch %d: %s", epoch, progress.curve[-1])
        if stop:
            break

    progress.metrics["passes"] = round(progress.step * bs / n, 3)  # epochs may span several
    progress.phase = "evaluation"
    _, test_acc = _score(model, task.x_test, task.y_test, bs, autocast, channels_last)
    last = progress.curve[-1]
    vals = [p["val_accuracy"] for p in progress.curve if p["val_accuracy"] is not None]
    progress.metrics.update(
        val_accuracy=last["val_accuracy"], best_val_accuracy=max(vals) if vals else None,
        val_loss=last["val_loss"], test_accuracy=test_acc, train_loss=last["train_loss"])
    progress.phase = "latency measurement"
    progress.metrics["latency_ms"] = measure_latency(model, task.input_shape, dev, dtype=dtype)
    if dev.type == "cuda":
        progress.metrics["peak_memory_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
    else:  # no allocator statistics off CUDA: estimate from one forward on a training batch
        states = 2 if budget.optimizer == "adamw" else int(budget.momentum > 0)
        progress.metrics["peak_memory_mb"] = estimate_training_memory_mb(
            model, task.x_train[:bs], optimizer_states=states)
    if not keep_weights:
        return None
    # contiguous CPU copies: loadable anywhere and storable as safetensors
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def _batches(n: int, bs: int, gen: torch.Generator, dev: torch.device):
    """Index batches ``[bs]`` on ``dev`` from successive seeded permutations of ``range(n)``."""
    while True:
        order = torch.randperm(n, generator=gen).to(dev, non_blocking=True)
        for i in range(n // bs):
            yield order[i * bs:(i + 1) * bs]


def _check_finite(first_bad: torch.Tensor, bad_loss: torch.Tensor, epoch: int) -> None:
    step = int(first_bad.item())  # the one host sync, every NAN_CHECK_EVERY steps
    if step >= 0:
        kind = "nan" if math.isnan(bad_loss.item()) else "inf"
        raise TrialError(f"loss became {kind} at epoch {epoch} step {step}")


@torch.inference_mode()
def _score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, autocast: dict,
           channels_last: bool) -> tuple[float | None, float | None]:
    """Mean cross-entropy and accuracy on a split (None, None for an empty split)."""
    if len(y) == 0:
        return None, None
    model.eval()
    total = torch.zeros(2, device=x.device)  # [loss sum, correct]
    for start in range(0, len(y), 2 * batch_size):  # no gradients: twice the batch fits
        xb, yb = x[start:start + 2 * batch_size], y[start:start + 2 * batch_size]
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(**autocast):
            logits = model(xb).float()  # [B, classes]
        total[0] += F.cross_entropy(logits, yb, reduction="sum")
        total[1] += (logits.argmax(dim=-1) == yb).sum()
    loss_sum, correct = total.tolist()
    return loss_sum / len(y), correct / len(y)


def _is_oom(exc: BaseException) -> bool:
    """CUDA's OutOfMemoryError, Python's MemoryError, or an allocator's message (CPU:
    ``DefaultCPUAllocator: can't allocate memory``)."""
    from workbench.gpu import is_oom_error

    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    return isinstance(exc, (oom, MemoryError)) or is_oom_error(str(exc))


def _describe(exc: BaseException, progress: _Progress, dev: torch.device) -> str:
    """One line saying what went wrong and where."""
    if _is_oom(exc):
        return f"out of memory on {device_name(dev)} (batch {progress.batch_size})"
    message = " ".join(str(exc).split()) or "(no message)"
    if len(message) > 300:
        message = message[:297] + "..."
    if isinstance(exc, TrialError):
        return message
    what = "" if type(exc) is RuntimeError else f"{type(exc).__name__}: "
    in_step = progress.phase in ("forward", "backward", "optimizer step")
    step = progress.step + 1 if in_step else progress.step  # the step that broke, not the last done
    where = f" (epoch {progress.epoch} step {step})" if progress.epoch else ""
    return f"runtime error in {progress.phase}{where}: {what}{message}"


def _finish(progress: _Progress, t0: float) -> dict:
    metrics = dict(progress.metrics)
    metrics.update(wall_time_s=time.perf_counter() - t0, epochs=progress.epochs_done,
                   steps=progress.step, batch_size=progress.batch_size or None)

    return metrics

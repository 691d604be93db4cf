"""One trial as a self-contained job: what a worker needs to evaluate a candidate, and what it
sends back. Jobs are plain data (picklable, JSON-friendly) so the same function runs inline, in a
local worker process or on a Ray node; the driver alone writes the database.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from storage.records import TrialState
from workbench.errors import ConfigError

_TASK_CACHE: dict[tuple, Any] = {}


@dataclass(frozen=True)
class Job:
    """Everything needed to evaluate one trial, anywhere."""

    study: str
    number: int
    space: str
    space_options: dict
    input_shape: tuple[int, ...]
    num_classes: int
    decisions: list  # [[path, choice], ...]
    task: str
    task_options: dict
    budget: dict  # trainer.Budget fields
    seed: int
    device: str = "auto"
    amp: str = "auto"
    evaluator: str | None = None  # "module:function" replaces training
    keep_weights: bool = False
    fidelity: float | None = None
    task_seed: int = 0  # the data split: one per study, not per trial
    repeats: int = 1  # training seeds of the same architecture in this trial (workbench.repeats)
    proxies: tuple[str, ...] = ()  # zero-cost proxies recorded as metrics, before training
    required_proxies: tuple[str, ...] = ()  # those that are objectives: not finite -> failed


@dataclass(frozen=True)
class Outcome:
    """What a worker returns: state, metrics, learning curve, error, optional weights."""

    state: TrialState  # complete or failed
    metrics: dict = field(default_factory=dict)
    curve: list = field(default_factory=list)
    error: str | None = None
    weights: bytes | None = None  # safetensors bytes
    worker: str = ""
    duration_s: float = 0.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def load_evaluator(spec: str):
    """Import ``module:function`` (a custom evaluator; the working directory is searched too)."""
    from workbench.plugins import import_object

    return import_object(spec, "--evaluator")


def _arch(job: Job):
    from workbench.spaces import get_space

    space = get_space(job.space, job.input_shape, job.num_classes, **job.space_options)
    return space.replay(job.decisions)


def _budget(job: Job):
    from workbench.trainer import Budget

    fields = dict(job.budget)
    if job.fidelity is not None:
        fields["epochs"] = max(1, int(round(job.fidelity)))
    return Budget(**fields)


def _task(job: Job):
    return cached_task(job.task, job.task_seed, job.task_options)


def cached_task(name: str, seed: int, options: dict):
    """The task, loaded once per process (an inline driver and its trials share it)."""
    from workbench.tasks import get_task

    key = (name, seed, tuple(sorted(options.items())))
    if key not in _TASK_CACHE:
        _TASK_CACHE.clear()  # one task per worker at a time: keep memory flat
        _TASK_CACHE[key] = get_task(name, seed=seed, **options)
    return _TASK_CACHE[key]


def run_job(job: Job) -> Outcome:
    """Evaluate one job. Never raises for a candidate's failure: it becomes a failed Outcome."""
    t0 = time.perf_counter()
    who = worker_name()
    try:
        arch = _arch(job)
        budget = _budget(job)
        scores, problem = _proxies(job, arch)
        if problem:  # an objective that cannot be computed: nothing to train for
            return Outcome(TrialState.FAILED, scores, [], problem, None, who,
                           time.perf_counter() - t0)
        if job.evaluator:
            return _with(scores, _repeated(job, lambda j: _custom(j, arch, budget, who, t0)))
        from workbench.trainer import evaluate

        task = _task(job)

        def once(j: Job) -> Outcome:
            res = evaluate(arch, task, budget, device=j.device, seed=j.seed, amp=j.amp,
                           keep_weights=j.keep_weights)
            weights = _to_bytes(res.state_dict) if res.state_dict is not None else None
            return Outcome(res.state, dict(res.metrics), [dict(p) for p in res.curve], res.error,
                           weights, who, time.perf_counter() - t0)

        return _with(scores, _repeated(job, once))
    except (SystemExit, KeyboardInterrupt) as exc:
        # an evaluator that calls sys.exit() or raises KeyboardInterrupt fails its trial; a
        # Ctrl-C the user pressed (seen by the driver's SIGINT handler) still stops the study
        if isinstance(exc, KeyboardInterrupt) and _SIGINT.is_set():
            raise
        return Outcome(TrialState.FAILED, {}, [], f"the evaluation raised {type(exc).__name__}"
                       + (f": {exc}" if str(exc) else ""), None, who, time.perf_counter() - t0)
    except Exception as exc:  # setup failures (bad task path ...) are failed trials too
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Outcome(TrialState.FAILED, {}, [], f"{type(exc).__name__}: {msg}", None, who,
                       time.perf_counter() - t0)


def _proxies(job: Job, arch) -> tuple[dict, str | None]:
    """The job's zero-cost proxies of ``arch`` at initialisation (the weights its training starts
    from: ``job.seed``) on one minibatch of its task drawn with a seed derived from ``job.seed``
    (with a custom evaluator, which brings its own data, a seeded synthetic batch of the study's
    input shape). A value that is not finite is ``None``; the reason a required one (an
    objective) is not finite, or ``None``."""
    if not job.proxies:
        return {}, None
    from workbench.proxies import BATCH_SIZE, WHY_NOT_FINITE, measure, synthetic_batch, task_batch
    from workbench.seeds import derive_seed

    seed = derive_seed(job.seed, "proxies")
    batch = (synthetic_batch(job.input_shape, job.num_classes, BATCH_SIZE, seed=seed)
             if job.evaluator else task_batch(_task(job), BATCH_SIZE, seed=seed))
    scores = measure(arch, batch, job.seed, job.proxies)
    missing = [p for p in job.required_proxies if scores.get(p) is None]
    if missing:
        return scores, (f"objective {missing[0]}: expected a finite zero-cost proxy, found none "
                        f"for this architecture ({WHY_NOT_FINITE})")
    return scores, None


def _with(scores: dict, outcome: Outcome) -> Outcome:
    """``outcome`` with the proxy ``scores`` among its metrics (the evaluator's own win)."""
    return replace(outcome, metrics={**scores, **outcome.metrics}) if scores else outcome


_SIGINT = threading.Event()  # set when this process received a real SIGINT (Ctrl-C)


@contextlib.contextmanager
def sigint_watch() -> Iterator[None]:
    """While a driver runs: tell a user's Ctrl-C apart from an evaluator raising
    KeyboardInterrupt (only the main thread can install signal handlers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        _SIGINT.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _SIGINT.clear()


def _repeated(job: Job, once) -> Outcome:
    """``once(job)`` for each of the job's ``repeats`` training seeds, combined by
    :func:`workbench.repeats.combine` (objective = mean); stops at the first failed repeat.
    Weights, if kept, are the first repeat's (the trial's own seed)."""
    if job.repeats <= 1:
        return once(job)
    from storage.records import TrialState
    from workbench.repeats import combine, repeat_seed

    t0, runs = time.perf_counter(), []
    for r in range(job.repeats):
        runs.append(once(replace(job, seed=repeat_seed(job.seed, r), keep_weights=job.keep_weights
                                 and r == 0)))
        if runs[-1].state != TrialState.COMPLETE:
            break
    res = combine(runs)
    return Outcome(res.state, dict(res.metrics), [dict(p) for p in res.curve], res.error,
                   runs[0].weights, runs[0].worker, time.perf_counter() - t0)


def _custom(job: Job, arch, budget, who: str, t0: float) -> Outcome:
    fn = load_evaluator(job.evaluator or "")
    kwargs: dict[str, Any] = {}
    params = inspect.signature(fn).parameters
    for name, value in (("seed", job.seed), ("fidelity", job.fidelity),
                        ("task", job.task), ("device", job.device)):
        if name in params:
            kwargs[name] = value
    out = fn(arch, budget, **kwargs)
    if hasattr(out, "metrics") and hasattr(out, "state"):  # an EvalResult
        return Outcome(out.state, dict(out.metrics), [dict(p) for p in out.curve],
                       out.error, None, who, time.perf_counter() - t0)
    if not isinstance(out, dict):
        raise ConfigError(f"evaluator {job.evaluator}: expected a dict of metrics, "
                          f"found {type(out).__name__}")
    metrics = dict(out)
    curve = list(metrics.pop("curve", []) or [])
    return Outcome(TrialState.COMPLETE, metrics, curve, None, None, who, time.perf_counter() - t0)


def _to_bytes(state_dict: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.detach().cpu().contiguous() for k, v in state_dict.items()})


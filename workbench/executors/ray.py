"""Trials as Ray tasks on a cluster (or on a local Ray instance started for the study).

The executor has the same interface as the local ones (:class:`~workbench.executors.base.Executor`). Each trial is one Ray task running :func:`workbench.jobs.run_job`; the
task sends back an :class:`~workbench.jobs.Outcome` and the driver alone writes the database, so a
SQLite file works as long as the driver runs on one machine.

Each task is a streaming generator that first yields a "started" marker and then the outcome.
The marker tells the driver when the trial left Ray's queue, so the per-trial time-out counts
running time only, not time spent waiting for a free CPU or GPU.

Failures:

* the candidate fails (shape error, NaN ...): ``run_job`` already returns a failed Outcome;
* the worker process or its node dies: the trial is resubmitted up to ``max_retries`` times,
  then recorded as failed with ``"worker died N times: ..."`` (we resubmit ourselves rather than
  use Ray's ``max_retries`` so the reason and the count end up in the trial's error);
* the time-out passes: the task is cancelled with ``force=True`` (its worker process is killed)
  and the trial fails with ``"timed out after Ns"``.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from storage.records import TrialState
from workbench.errors import ConfigError, ExecutorError
from workbench.jobs import Job, Outcome, run_job, worker_name

log = logging.getLogger(__name__)

INSTALL_HINT = "the ray executor needs the ray package: pip install 'nas-workbench[ray]'"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ExecutorError(INSTALL_HINT) from None
    return ray


def _trial_task(job: Job):
    """Body of one Ray task: announce the start, then evaluate (never raises for the candidate)."""
    # A fresh worker process pays these imports before the trial's clock starts, as the process
    # pool's workers do; otherwise a short --timeout would count seconds of importing torch.
    import workbench.tasks  # noqa: F401
    import workbench.trainer  # noqa: F401

    yield ("started", worker_name())
    yield run_job(job)


@dataclass
class _Trial:
    """Book-keeping for one trial in flight (across its retries)."""

    job: Job
    gen: Any = None  # the ray.ObjectRefGenerator of the current attempt
    submitted: float = 0.0  # first submission (duration of a failed trial counts from here)
    started: float | None = None  # current attempt left Ray's queue
    worker: str = ""
    deaths: list[str] = field(default_factory=list)


class RayExecutor:
    """Run trials as Ray tasks.

    ``workers``: trials in flight at once. ``timeout``: running seconds per trial (None: none).
    ``address``: None starts a local Ray instance (stopped again by :meth:`shutdown`); ``"auto"``
    or ``"HOST:PORT"`` connects to a running cluster. When Ray is already initialised in this
    process (a notebook, a test fixture) that connection is used and left open.
    ``gpus_per_trial`` / ``cpus_per_trial``: the resources each task asks Ray for.
    ``max_retries``: how often a trial whose worker died is run again before it counts as failed.
    ``runtime_env``: passed to ``ray.init`` when this executor initialises Ray.
    """

    name = "ray"

    def __init__(self, workers: int = 1, *, timeout: float | None = None,
                 address: str | None = None, gpus_per_trial: float = 0,
                 cpus_per_trial: float = 1, max_retries: int = 2,
                 runtime_env: dict | None = None):
        if workers < 1:
            raise ConfigError(f"--workers: expected >= 1, found {workers}")
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"--timeout: expected seconds > 0, found {timeout}")
        if cpus_per_trial < 0 or gpus_per_trial < 0:
            raise ConfigError(f"--cpus-per-trial/--gpus-per-trial: expected >= 0, found "
                              f"{cpus_per_trial}/{gpus_per_trial}")
        if max_retries < 0:
            raise ConfigError(f"max_retries: expected >= 0, found {max_retries}")
        self.slots = workers
        self.timeout = timeout
        self.max_retries = max_retries
        self._ray = _import_ray()
        self._owned = False  # did we call ray.init (and so must call ray.shutdown)?
        self._local = False  # did that ray.init start a new local instance?
        self._connect(address, workers, cpus_per_trial, runtime_env)
        self._check_resources(cpus_per_trial, gpus_per_trial)
        # Ray-level retries stay off: we resubmit ourselves to count deaths and keep the reason.
        self._remote = self._ray.remote(_trial_task).options(
            num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0,
            num_returns="streaming")
        self._trials: list[_Trial] = []

    # -- connecting ----------------------------------------------------------------------------
    def _connect(self, address: str | None, workers: int, cpus_per_trial: float,
                 runtime_env: dict | None) -> None:
        ray = self._ray
        if ray.is_initialized():
            log.info("ray executor: using the Ray connection already open in this process")
            return
        # No telemetry from a library call; a user who wants it sets the variable themselves.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        if runtime_env:
            kwargs["runtime_env"] = runtime_env
        if address is None:
            # Like the process pool, `workers` means that many trials at once even on a small
            # machine: give the local instance at least that many logical CPUs.
            cpus = max(os.cpu_count() or 1, math.ceil(workers * cpus_per_trial))
            try:
                ray.init(num_cpus=cpus, **kwargs)
            except Exception as exc:
                raise ExecutorError(f"cannot start a local Ray instance: {_first_line(exc)}") \
                    from None
            self._owned = self._local = True
            log.info("ray executor: started a local Ray instance with %d CPUs", cpus)
            return
        if address != "auto" and not address.startswith("ray://"):
            _probe(address)  # fail in a second, not after Ray's long connection retries
        try:
            ray.init(address=address, **kwargs)
        except Exception as exc:
            raise ExecutorError(f"cannot connect to Ray at {address}: {_first_line(exc)}") \
                from None
        self._owned = True
        log.info("ray executor: connected to the Ray cluster at %s", address)

    def _check_resources(self, cpus: float, gpus: float) -> None:
        """Refuse (local instance) or warn (cluster) when no node can ever run one trial."""
        nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
        if any(r.get("CPU", 0) >= cpus and r.get("GPU", 0) >= gpus for r in nodes):
            return
        msg = (f"no Ray node has {cpus:g} CPUs and {gpus:g} GPUs for one trial "
               f"(nodes: {[{k: r.get(k, 0) for k in ('CPU', 'GPU')} for r in nodes]})")
        if self._local:
            self._shutdown_ray()
            raise ExecutorError(f"--cpus-per-trial/--gpus-per-trial: {msg}")
        log.warning("ray executor: %s; trials wait until the cluster grows", msg)

    # -- the executor interface ----------------------------------------------------------------
    def start(self) -> None:
        """Nothing to start: Ray is connected in ``__init__`` and starts its workers itself."""

    def free_slots(self) -> int:
        return self.slots - len(self._trials)

    def running(self) -> list[Job]:
        return [t.job for t in self._trials]

    def submit(self, job: Job) -> None:
        if self.free_slots() <= 0:
            raise RuntimeError("submit() without a free slot")
        trial = _Trial(job, submitted=time.monotonic())
        self._start(trial)
        self._trials.append(trial)

    def _start(self, trial: _Trial) -> None:
        trial.started, trial.worker = None, ""
        trial.gen = self._remote.remote(trial.job)

    def wait(self, timeout: float | None = None) -> list[tuple[Job, Outcome]]:
        """Outcomes of the trials that finished, waiting up to ``timeout`` seconds for one."""
        ray = self._ray
        deadline = None if timeout is None else time.monotonic() + timeout
        done: list[tuple[Job, Outcome]] = []
        while self._trials and not done:
            now = time.monotonic()
            done += self._expire(now)
            if done:
                break
            budget = self._time_left(now, deadline)
            if budget is not None and budget <= 0:
                break
            gens = [t.gen for t in self._trials]
            ready, _ = ray.wait(gens, num_returns=1, timeout=budget)
            if ready:  # collect everything else that is ready too, without blocking
                ready, _ = ray.wait(gens, num_returns=len(gens), timeout=0)
            ready_ids = {id(g) for g in ready}
            for trial in [t for t in self._trials if id(t.gen) in ready_ids]:
                outcome = self._advance(trial)
                if outcome is not None:
                    self._trials.remove(trial)
                    done.append((trial.job, outcome))
        return done

    def _time_left(self, now: float, deadline: float | None) -> float | None:
        """Seconds to block: until the caller's deadline or the next trial time-out."""
        left = None if deadline is None else deadline - now
        if self.timeout is not None:
            ends = [t.started + self.timeout - now for t in self._trials if t.started is not None]
            if ends:
                left = min(ends) if left is None else min(left, min(ends))
        return None if left is None else max(0.0, left)

    def _expire(self, now: float) -> list[tuple[Job, Outcome]]:
        """Cancel (and kill) the trials that ran past the time-out."""
        if self.timeout is None:
            return []
        out = []
        for trial in list(self._trials):
            started = trial.started
            if started is None or now - started < self.timeout:
                continue
            self._cancel(trial)
            self._trials.remove(trial)
            log.info("trial %d timed out after %gs on %s", trial.job.number, self.timeout,
                     trial.worker)
            out.append((trial.job, Outcome(TrialState.FAILED,
                                           error=f"timed out after {self.timeout:g}s "
                                                 f"(Ray task cancelled)",
                                           worker=trial.worker, duration_s=now - started)))
        return out

    def _advance(self, trial: _Trial) -> Outcome | None:
        """Take the next item of a ready trial: the start marker, the outcome or an error."""
        ray = self._ray
        try:
            item = ray.get(next(trial.gen))
        except StopIteration:
            return self._failed(trial, "the Ray task ended without an outcome")
        except ray.exceptions.TaskCancelledError:
            return self._failed(trial, "the Ray task was cancelled outside the workbench")
        except ray.exceptions.OutOfMemoryError as exc:
            # Ray's memory monitor killed the worker; the candidate is the likely cause, so a
            # retry would only repeat it.
            return self._failed(trial, f"out of memory (killed by Ray): {_first_line(exc)}")
        except ray.exceptions.RayTaskError as exc:
            # run_job never raises for a candidate, so this is the environment (for example a
            # worker that cannot import the workbench); every retry would fail alike.
            return self._failed(trial, f"Ray task error: {_cause(exc)}")
        except _retryable(ray) as exc:
            return self._died(trial, _first_line(exc) or type(exc).__name__)
        except ray.exceptions.RayError as exc:
            return self._failed(trial, f"{type(exc).__name__}: {_first_line(exc)}")
        if isinstance(item, tuple) and item and item[0] == "started":
            trial.started, trial.worker = time.monotonic(), item[1]
            return None
        if not isinstance(item, Outcome):
            return self._failed(trial, f"the Ray task returned a {type(item).__name__}, "
                                       f"expected an Outcome")
        return item

    def _died(self, trial: _Trial, reason: str) -> Outcome | None:
        """The worker (or its node) died: resubmit, or give up after ``max_retries`` retries."""
        trial.deaths.append(reason)
        n = len(trial.deaths)
        where = f" on {trial.worker}" if trial.worker else ""
        if n <= self.max_retries:
            log.warning("trial %d: worker died%s (%s); retry %d of %d", trial.job.number, where,
                        reason, n, self.max_retries)
            self._start(trial)
            return None
        return self._failed(trial, f"worker died {n} time{'s' if n > 1 else ''}: {reason}")

    def _failed(self, trial: _Trial, error: str) -> Outcome:
        return Outcome(TrialState.FAILED, error=error, worker=trial.worker,
                       duration_s=time.monotonic() - trial.submitted)

    def _cancel(self, trial: _Trial) -> None:
        try:
            self._ray.cancel(trial.gen, force=True)
        except Exception as exc:  # already finished or its worker already gone
            log.debug("cancel of trial %d: %s", trial.job.number, exc)

    def shutdown(self) -> None:
        """Cancel trials in flight (the study re-queues them) and release Ray if we opened it."""
        for trial in self._trials:
            self._cancel(trial)
        self._trials = []
        if self._owned:
            self._shutdown_ray()

    def _shutdown_ray(self) -> None:
        self._owned = self._local = False
        try:
            self._ray.shutdown()
        except Exception as exc:  # shutting down must not hide the study's own outcome
            log.warning("ray executor: shutdown failed: %s", exc)


def _retryable(ray) -> tuple[type[BaseException], ...]:
    """Errors that mean the process or machine running the trial went away."""
    e = ray.exceptions
    names = ("WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError",
             "RaySystemError")
    return tuple(getattr(e, n) for n in names if hasattr(e, n))


def _probe(address: str) -> None:
    """Check that HOST:PORT accepts TCP connections; raise the one-line error otherwise."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"--ray-address: expected auto or HOST:PORT, found {address!r}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ExecutorError(f"cannot connect to Ray at {address}: {reason}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _cause(exc: BaseException) -> str:
    """The remote exception of a RayTaskError, as 'Type: first line'."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return f"{type(cause).__name__}: {_first_line(cause)}"
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1].strip() if lines else type(exc).__name__


def make(*, workers: int = 1, timeout: float | None = None,
         trials_per_gpu: int | str | None = None, **ray_options) -> RayExecutor:
    """The registry's factory: ``trials_per_gpu=K`` asks Ray for ``1/K`` GPU per trial unless
    ``gpus_per_trial`` is given; device lists and memory caps are the local pool's options."""
    from workbench.executors.process import parse_trials_per_gpu

    for local in ("devices", "trial_mb", "memory_limit_mb"):
        ray_options.pop(local, None)
    if trials_per_gpu is not None:
        k = parse_trials_per_gpu(trials_per_gpu)
        if not isinstance(k, int):  # "auto"
            raise ConfigError("--trials-per-gpu: expected an integer with the ray executor "
                              "(Ray places trials by gpus_per_trial), found 'auto'")
        ray_options.setdefault("gpus_per_trial", 1 / k)
    return RayExecutor(workers=workers, timeout=timeout, **ray_options)

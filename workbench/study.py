"""Studies: ask -> evaluate -> tell -> store, resumable from the database alone.

>>> import tempfile, os
>>> from storage import Storage
>>> db = Storage("sqlite:///" + os.path.join(tempfile.mkdtemp(), "w.db"))
>>> cfg = StudyConfig(space="mlp", task="synthetic", trials=3, executor="inline",
...                   budget={"epochs": 1, "batch_size": 64})
>>> _ = create_study(db, "demo", cfg)
>>> summary = run_study(db, "demo")
>>> summary.complete
3

The searcher's state is never pickled: :func:`run_study` replays the stored tells into a fresh
searcher (``recover``), in the order they happened and with the proposals that repeated an
evaluated architecture (the repeats log), sets the next ask number after the last ask made,
re-queues trials that were running when the last driver died, and goes on: a resumed search
proposes what the uninterrupted one would have. The same architecture at the same fidelity is
never trained twice in a study.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from storage.protocol import StudyStorage
from storage.records import StudyStatus, TrialRecord, TrialState
from workbench.architecture import Architecture
from workbench.config import (  # the config's public names, re-exported where users look
    StudyConfig,
    check_devices,
    parse_memory,
    parse_objectives,
    resolve_shapes,
    top_k,
)
from workbench.errors import ConfigError, InvalidArchitecture, WorkbenchError
from workbench.jobs import Job, Outcome
from workbench.proposing import Proposer
from workbench.searchers import Result, get_searcher
from workbench.seeds import derive_seed

__all__ = ["StudyConfig", "StudyRunner", "Summary", "create_study", "enqueue", "load_config",
           "parse_memory", "parse_objectives", "request_stop", "resolve_shapes", "result_of",
           "run_study", "stored_result", "study_space", "trial_architecture"]

log = logging.getLogger(__name__)
STOP_POLL_S = 0.5  # how often a running driver reads the study's stop flag

@dataclass(frozen=True)
class Summary:
    study: str
    status: StudyStatus
    complete: int
    failed: int
    best: dict | None  # {"number", "values", "text"} of the best trial (first objective)
    elapsed_s: float
    pruned: int = 0  # screened out by the pre-filter (not counted in the trial budget)


def create_study(storage: StudyStorage, name: str, cfg: StudyConfig):
    """Validate the config (space, searcher, task, evaluator) and store a new study."""
    from workbench.jobs import load_evaluator
    from workbench.trainer import Budget

    if not name or any(c in name for c in "/\\\n"):
        raise ConfigError(f"study name: expected a non-empty name without slashes, found {name!r}")
    check_devices(cfg)
    cfg = resolve_shapes(cfg)
    space = study_space(cfg)
    get_searcher(cfg.searcher, space, cfg.objectives, seed=cfg.seed, **cfg.searcher_options)
    try:
        Budget(**cfg.budget)
    except TypeError as exc:
        raise ConfigError(f"budget: {exc}") from None
    if cfg.evaluator:
        load_evaluator(cfg.evaluator)
    return storage.create_study(name, space=cfg.space, task=cfg.task, searcher=cfg.searcher,
                                objectives=[asdict(o) for o in cfg.objectives],
                                config=cfg.to_dict(), seed=cfg.seed)


def load_config(storage: StudyStorage, name: str) -> StudyConfig:
    return StudyConfig.from_dict(storage.get_study(name).config)


def study_space(cfg: StudyConfig):
    """The study's space, bound to its input shape and classes."""
    from workbench.spaces import get_space

    input_shape, num_classes = cfg.shape
    return get_space(cfg.space, input_shape, num_classes, **cfg.space_options)


def trial_architecture(space, trial: TrialRecord) -> Architecture:
    """A stored trial's architecture, rebuilt by replaying its decisions in ``space`` (the one
    conversion from a stored trial to an :class:`Architecture`). A stored text that disagrees with
    the replay, or decisions that no longer replay (the space changed), are an error that names
    the trial."""
    where = f"study {trial.study!r} trial {trial.number}"
    try:
        arch = space.replay(trial.arch_decisions) if trial.arch_decisions else space.parse(
            trial.arch_text)
    except WorkbenchError as exc:
        raise InvalidArchitecture(f"{where}: expected a stored architecture that replays in "
                                  f"space {space.name!r}, found: {exc}") from None
    if trial.arch_text and trial.arch_text != arch.text:
        raise InvalidArchitecture(f"{where}: expected the stored text to match its decisions, "
                                  f"found {trial.arch_text[:60]!r}...")
    return arch


def result_of(state: TrialState, metrics: dict, fidelity: float | None,
              objectives) -> Result:
    """The searcher's view of a finished trial (stored or just returned by a worker)."""
    from workbench.validate import finite_number

    values = None
    if state is TrialState.COMPLETE:
        if all(finite_number((metrics or {}).get(o.name)) for o in objectives):
            values = tuple(float(metrics[o.name]) for o in objectives)
        else:  # stored before results were validated: never told as a success
            state = TrialState.FAILED
    return Result(state, values, dict(metrics or {}), fidelity)


def stored_result(trial: TrialRecord, objectives) -> Result:
    return result_of(trial.state, trial.metrics, trial.fidelity, objectives)


class StudyRunner:
    """One driver for one study: owns the searcher, the executor and the writes."""

    def __init__(self, storage: StudyStorage, name: str, *, executor=None,
                 on_event: Callable[[str, dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        from workbench.reconnect import Reconnecting

        # the driver rides out a database restart or a dropped connection (retried with
        # back-off for workbench.reconnect.RECONNECT_S) instead of dying mid-search
        self.storage, self.name = Reconnecting(storage), name
        self.cfg = load_config(storage, name)
        c = self.cfg
        self.space = study_space(c)
        self.searcher = get_searcher(c.searcher, self.space, c.objectives, seed=c.seed,
                                     **c.searcher_options)
        self._executor = executor  # built in run(), once this driver holds the study's lease
        self.on_event = on_event or (lambda kind, data: None)
        self.should_stop = should_stop or (lambda: False)
        self.inflight: dict[int, tuple[Architecture, float | None, dict]] = {}
        self.proposer = Proposer(self)
        self.by_hash: dict[str, int] = {}
        self.finished = self.complete = self.failed = self.pruned = 0
        self.best: dict | None = None
        self.kept: set[int] = set()
        self._polled = -math.inf  # when the stop flag was last read from the database
        self._requested: StudyStatus | None = None  # a stop seen in the database

    # -- recovery ------------------------------------------------------------------------------
    def recover(self) -> None:
        requeued = self.storage.requeue_running(self.name)
        if requeued:
            log.info("study %s: re-queued %d trials that were running", self.name, len(requeued))
        # Replay the searcher's tells in the order they happened (tell_index; trials finish
        # out of number order when several run at once), including proposals that repeated a
        # complete trial and were told its result again; then continue asking after the last
        # ask made, so a resumed search proposes what the uninterrupted one would have.
        # Trials stored before the log existed have no tell_index: they come first, by finish
        # time.
        trials = self.storage.trials(self.name, order_by="finished_at")
        repeats = self.storage.repeats(self.name)
        told: list[tuple[int, Architecture, Result]] = []
        replayed: dict[int, tuple[Architecture, Result]] = {}
        for t in trials:
            if not t.state.finished:
                continue
            arch = trial_architecture(self.space, t)
            result = stored_result(t, self.cfg.objectives)
            replayed[t.number] = (arch, result)
            told.append((-1 if t.tell_index is None else t.tell_index, arch, result))
            self.by_hash[arch.hash] = t.number
            self._count(t.number, arch, result)
        told += [(tell, *replayed[number]) for number, _, tell in repeats
                 if tell is not None and number in replayed]
        told.sort(key=lambda entry: entry[0])  # stable: untracked tells keep their order
        self.searcher.recover([(arch, result) for _, arch, result in told])
        asks = [t.ask_index for t in trials if t.ask_index is not None]
        asks += [ask for _, ask, _ in repeats]
        if asks or any(t.tell_index is not None for t in trials):
            self.searcher.n_asked = max(asks, default=-1) + 1
        k = top_k(self.cfg.keep_weights)
        if k:
            obj = self.cfg.objectives[0]
            top = self.storage.trials(self.name, states=[TrialState.COMPLETE], limit=3 * k,
                                      order_by=f"metric:{obj.name}",
                                      descending=obj.direction == "maximize")
            self.kept = {t.number for t in top
                         if "weights.safetensors" in self.storage.list_artifacts(self.name, t.number)}

    def _count(self, number: int, arch: Architecture, result: Result) -> None:
        if result.state is TrialState.PRUNED:  # screened out, never trained: not in --trials
            self.pruned += 1
            return
        self.finished += 1
        if result.ok and result.values is not None:
            self.complete += 1
            obj = self.cfg.objectives[0]
            if self.best is None or obj.better(result.values[0], self.best["values"][0]):
                self.best = {"number": number, "values": list(result.values), "text": arch.text}
        else:
            self.failed += 1

    # -- the loop ------------------------------------------------------------------------------
    def _make_executor(self):
        from workbench.executors import make_executor

        c = self.cfg
        extra: dict[str, Any] = dict(c.ray)
        if c.memory_limit_mb is not None:
            extra["memory_limit_mb"] = c.memory_limit_mb
        if c.trials_per_gpu:
            extra["trials_per_gpu"] = c.trials_per_gpu
        return make_executor(c.executor, workers=c.workers, timeout=c.timeout,
                             devices=list(c.devices) or None, **extra)

    def run(self) -> Summary:
        """Take the study's lease (a second live driver is refused), recover, run the loop."""
        from workbench.jobs import sigint_watch
        from workbench.lease import DriverLease

        with DriverLease(self.storage, self.name) as lease, sigint_watch():
            self.lease = lease
            return self._run()

    def _run(self) -> Summary:
        t0 = time.monotonic()
        self.recover()
        # running, unless a stop was asked while this driver started (one conditional write: a
        # request that lands now is never overwritten)
        if not self.storage.mark_running(self.name):
            self.storage.set_study_status(self.name, StudyStatus.STOPPED)
            return Summary(self.name, StudyStatus.STOPPED, self.complete, self.failed, self.best,
                           time.monotonic() - t0, self.pruned)
        self.executor = self._executor or self._make_executor()
        status, duplicates = StudyStatus.FINISHED, 0
        try:
            while True:
                request = self._stop_request()
                if request is StudyStatus.CANCELLING:  # stop now: in flight -> re-queued
                    status = StudyStatus.STOPPED
                    break
                if request is StudyStatus.STOPPING:  # after running trials: drain, record
                    status = StudyStatus.STOPPED
                    if not self.inflight:
                        break
                if self.lease.lost:  # another driver runs the study now: write nothing more
                    self.inflight.clear()
                    break
                if self.cfg.max_seconds is not None and time.monotonic() - t0 > self.cfg.max_seconds:
                    break
                while (request is None and self.executor.free_slots()
                       and self._want_more()):
                    if not self._submit_next():
                        duplicates += 1
                        if duplicates > 200:
                            log.warning("study %s: the searcher keeps proposing evaluated "
                                        "architectures; stopping (space exhausted?)", self.name)
                            break
                    else:
                        duplicates = 0
                if not self.inflight:
                    break
                for job, outcome in self.executor.wait(timeout=1.0):
                    self._record(job, outcome)
        except KeyboardInterrupt:
            status = StudyStatus.STOPPED
            raise
        except Exception:
            status = StudyStatus.FAILED  # the driver broke (executor, database): not a finished study
            raise
        finally:
            self.executor.shutdown()
            if not self.lease.lost:
                if self.inflight:  # interrupted: trials in flight run again on resume
                    self.storage.requeue_running(self.name)
                self.storage.set_study_status(self.name, status)
        return Summary(self.name, status, self.complete, self.failed, self.best,
                       time.monotonic() - t0, self.pruned)

    def _stop_request(self) -> StudyStatus | None:
        """A pending stop: ``STOPPING`` (after the trials in flight: nothing new starts, what
        runs is recorded) or ``CANCELLING`` (now: the trials in flight are re-queued); the
        caller's ``should_stop`` flag counts as now. The status is read at most every
        STOP_POLL_S (a database read per trial would dominate the loop's overhead when trials
        are short; a stop lands within that much of being asked); once seen it stays."""
        if self.should_stop():
            return StudyStatus.CANCELLING
        now = time.monotonic()
        if now - self._polled >= STOP_POLL_S:
            self._polled = now
            status = self.storage.get_study(self.name).status
            if status in (StudyStatus.STOPPING, StudyStatus.CANCELLING):
                if self._requested is not StudyStatus.CANCELLING:
                    self._requested = status
        return self._requested

    def _want_more(self) -> bool:
        return self.cfg.trials is None or self.finished + len(self.inflight) < self.cfg.trials

    def _submit_next(self) -> bool:
        """Submit one trial: a queued one first, else new proposals (:mod:`workbench.proposing`:
        repeats, constraints, the pre-filter). False: every proposal repeated a trial."""
        queued = self.storage.next_queued(self.name)
        if queued is not None:
            self._launch(queued.number, trial_architecture(self.space, queued), queued.fidelity,
                         queued.metrics)
            return True
        return self.proposer.propose()

    def _launch(self, number: int, arch: Architecture, fidelity: float | None,
                known: dict | None = None) -> None:
        """Submit a trial; ``known``: metrics the driver has already (proxies it scored, which
        the worker does not compute again)."""
        c, known = self.cfg, dict(known or {})
        proxies = tuple(p for p in c.proxies if p not in known)
        input_shape, num_classes = c.shape
        job = Job(study=self.name, number=number, space=c.space, space_options=c.space_options,
                  input_shape=input_shape, num_classes=num_classes,
                  decisions=[[d.path, d.choice] for d in arch.decisions], task=c.task,
                  task_options=c.task_options, budget=c.budget,
                  seed=derive_seed(c.seed, "trial", number), device=c.device, evaluator=c.evaluator,
                  keep_weights=c.keep_weights != "none", fidelity=fidelity, task_seed=c.seed,
                  repeats=c.repeats, proxies=proxies,
                  required_proxies=tuple(o.name for o in c.objectives if o.name in proxies))
        self.inflight[number] = (arch, fidelity, known)
        self.executor.submit(job)
        self.on_event("trial_started", {"number": number, "text": arch.text})

    def _record(self, job: Job, outcome: Outcome) -> None:
        from workbench.validate import MAX_ARTIFACT_BYTES, check_result, check_storable

        arch, fidelity, known = self.inflight.pop(job.number)
        state, error = TrialState(outcome.state), outcome.error
        metrics, curve = {**known, **outcome.metrics}, outcome.curve
        # validated before anything is stored: what cannot be stored, or an objective that is
        # missing, not a number or not finite, fails the trial with the reason
        problem = (check_result(metrics, curve, self.cfg.objectives)
                   if state is TrialState.COMPLETE else check_storable(metrics, curve))
        if problem:
            if check_storable(metrics, curve):
                metrics, curve = {}, []
            state, error = TrialState.FAILED, problem if state is TrialState.COMPLETE else (
                f"{error}; {problem}" if error else problem)
        metrics = dict(metrics)
        weights = outcome.weights
        if weights is not None and len(weights) > MAX_ARTIFACT_BYTES:
            log.warning("study %s trial %d: weights of %d bytes exceed the %d-byte artifact cap; "
                        "not kept", self.name, job.number, len(weights), MAX_ARTIFACT_BYTES)
            weights = None
        self.storage.finish_trial(self.name, job.number, state=state, metrics=metrics,
                                  error=error, duration_s=outcome.duration_s,
                                  curve=[dict(p, fidelity=fidelity) for p in curve],
                                  worker=outcome.worker or None,
                                  tell_index=len(self.searcher.history))
        result = result_of(state, metrics, fidelity, self.cfg.objectives)
        if weights is not None and result.ok:
            self._keep(job.number, weights)
        self.searcher.tell(arch, result)
        self._count(job.number, arch, result)
        self.on_event("trial_finished", self._event(job.number, state, error, metrics))

    def _keep(self, number: int, weights: bytes) -> None:
        k = top_k(self.cfg.keep_weights)
        if k is None:
            self.storage.put_artifact(self.name, number, "weights.safetensors", weights)
            return
        obj = self.cfg.objectives[0]
        top = {t.number for t in self.storage.trials(
            self.name, states=[TrialState.COMPLETE], limit=k, order_by=f"metric:{obj.name}",
            descending=obj.direction == "maximize")}
        if number in top:
            self.storage.put_artifact(self.name, number, "weights.safetensors", weights)
            self.kept.add(number)
        for old in self.kept - top:
            self.storage.delete_artifact(self.name, old, "weights.safetensors")
        self.kept &= top

    def _event(self, number: int, state: TrialState, error: str | None = None,
               metrics: dict | None = None) -> dict:
        return {"number": number, "state": state, "error": error, "metrics": metrics or {},
                "finished": self.finished, "complete": self.complete, "failed": self.failed,
                "pruned": self.pruned,
                "total": self.cfg.trials, "best": self.best}


def run_study(storage: StudyStorage, name: str, **kwargs: Any) -> Summary:
    """Run (or resume) a study until its budget is spent or it is stopped."""
    return StudyRunner(storage, name, **kwargs).run()


def request_stop(storage: StudyStorage, name: str, *, now: bool = False) -> None:
    """Ask the study's driver (in whatever process) to stop: after the trials in flight, which
    are recorded (default), or ``now``, cancelling them (they are re-queued for a resume)."""
    from workbench.stopping import request_stop as ask

    ask(storage, name, now=now)


def enqueue(storage: StudyStorage, name: str, arch: Architecture, *, fidelity: float | None = None) -> int:
    """Queue a specific architecture in a study; its driver evaluates queued trials first.
    Returns the trial number (an existing one when it is already queued, running or done)."""
    cfg = load_config(storage, name)
    if arch.space != cfg.space or tuple(arch.input_shape) != tuple(cfg.input_shape or ()):
        raise ConfigError(f"study {name}: expected a {cfg.space} architecture for input "
                          f"{cfg.input_shape}, found {arch.space} for {arch.input_shape}")
    existing = storage.find_trial(name, arch.hash, fidelity)
    if existing is not None:
        return existing.number
    trial = storage.create_trial(name, arch_hash=arch.hash, arch_text=arch.text,
                                 arch_decisions=[[d.path, d.choice] for d in arch.decisions],
                                 space=arch.space, fidelity=fidelity, state=TrialState.QUEUED)
    return trial.number

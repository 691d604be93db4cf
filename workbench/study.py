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
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.architecture import Architecture, Decision
from workbench.errors import ConfigError
from workbench.jobs import Job, Outcome
from workbench.searchers import Objective, Result, get_searcher

log = logging.getLogger(__name__)
STOP_POLL_S = 0.5  # how often a running driver reads the study's stop flag

ALIASES = {
    "acc": ("val_accuracy", "maximize"), "accuracy": ("val_accuracy", "maximize"),
    "val_accuracy": ("val_accuracy", "maximize"), "params": ("params", "minimize"),
    "flops": ("flops", "minimize"), "latency": ("latency_ms", "minimize"),
    "latency_ms": ("latency_ms", "minimize"), "memory": ("peak_memory_mb", "minimize"),
}


def parse_objectives(text: str) -> tuple[Objective, ...]:
    """``"acc,params"`` or ``"val_accuracy:max,latency_ms:min"``.

    >>> [o.name for o in parse_objectives("acc,params")]
    ['val_accuracy', 'params']
    """
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, direction = part.partition(":")
        if direction:
            d = {"max": "maximize", "min": "minimize"}.get(direction, direction)
            out.append(Objective(ALIASES.get(name, (name,))[0], d))
        elif name in ALIASES:
            out.append(Objective(*ALIASES[name]))
        else:
            raise ConfigError(f"--objectives: expected names like {', '.join(ALIASES)} or "
                              f"metric:max|min, found {part!r}")
    if not out:
        raise ConfigError("--objectives: expected at least one objective, found none")
    if "test_accuracy" in {o.name for o in out}:
        raise ConfigError("--objectives: test_accuracy is reported only, never used for "
                          "selection; use val_accuracy")
    return tuple(out)


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study; stored as JSON with the study."""

    space: str = "einspace"
    space_options: dict = field(default_factory=dict)
    task: str = "digits"
    task_options: dict = field(default_factory=dict)
    searcher: str = "random"
    searcher_options: dict = field(default_factory=dict)
    objectives: tuple[Objective, ...] = (Objective("val_accuracy", "maximize"),)
    constraints: dict = field(default_factory=dict)  # max_params, max_flops
    trials: int | None = 20
    max_seconds: float | None = None  # wall-clock budget of one run of the driver
    budget: dict = field(default_factory=dict)  # trainer.Budget fields (epochs, batch_size ...)
    repeats: int = 1  # training seeds per trial; objective = their mean (workbench.repeats)
    seed: int = 0
    workers: int = 1
    executor: str = "process"
    timeout: float | None = None  # per trial
    device: str = "auto"
    devices: tuple[str, ...] = ()
    trials_per_gpu: int | str | None = None  # N or "auto" (from a memory estimate)
    evaluator: str | None = None
    keep_weights: str = "none"  # none | all | top:K
    input_shape: tuple[int, ...] | None = None
    num_classes: int | None = None
    ray: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trials is not None and self.trials < 1:
            raise ConfigError(f"--trials: expected >= 1, found {self.trials}")
        if self.trials is None and self.max_seconds is None:
            raise ConfigError("expected a trial budget (--trials) or a time budget "
                              "(--max-seconds), found neither")
        if self.keep_weights not in ("none", "all") and not _top_k(self.keep_weights):
            raise ConfigError(f"--keep-weights: expected none, all or top:K, "
                              f"found {self.keep_weights!r}")
        unknown = set(self.constraints) - {"max_params", "max_flops"}
        if unknown:
            raise ConfigError(f"constraints: expected max_params or max_flops, found {unknown}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["objectives"] = [asdict(o) for o in self.objectives]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StudyConfig:
        d = dict(d)
        d["objectives"] = tuple(Objective(**o) for o in d.get("objectives", ()))
        for key in ("input_shape", "devices"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def _top_k(spec: str) -> int | None:
    if spec.startswith("top:") and spec[4:].isdigit() and int(spec[4:]) > 0:
        return int(spec[4:])
    return None


@dataclass(frozen=True)
class Summary:
    study: str
    status: str
    complete: int
    failed: int
    best: dict | None  # {"number", "values", "text"} of the best trial (first objective)
    elapsed_s: float


def resolve_shapes(cfg: StudyConfig) -> StudyConfig:
    """Fill input_shape/num_classes from the task (loading it once) unless given."""
    if cfg.input_shape is not None and cfg.num_classes is not None:
        return cfg
    from dataclasses import replace

    from workbench.tasks import get_task

    task = get_task(cfg.task, seed=cfg.seed, **cfg.task_options)
    return replace(cfg, input_shape=tuple(task.input_shape), num_classes=task.num_classes)


def create_study(storage, name: str, cfg: StudyConfig):
    """Validate the config (space, searcher, task, evaluator) and store a new study."""
    from workbench.jobs import load_evaluator
    from workbench.spaces import get_space
    from workbench.trainer import Budget

    if not name or any(c in name for c in "/\\\n"):
        raise ConfigError(f"study name: expected a non-empty name without slashes, found {name!r}")
    cfg = resolve_shapes(cfg)
    space = get_space(cfg.space, cfg.input_shape, cfg.num_classes, **cfg.space_options)
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


def load_config(storage, name: str) -> StudyConfig:
    return StudyConfig.from_dict(storage.get_study(name).config)


def result_of(trial, objectives) -> Result:
    """The searcher's view of a stored trial."""
    state = trial.state.value if hasattr(trial.state, "value") else str(trial.state)
    values = None
    if state == "complete":
        try:
            values = tuple(float(trial.metrics[o.name]) for o in objectives)
        except (KeyError, TypeError, ValueError):
            state = "failed"
    return Result(state, values, dict(trial.metrics or {}), trial.fidelity)


class StudyRunner:
    """One driver for one study: owns the searcher, the executor and the writes."""

    def __init__(self, storage, name: str, *, executor=None,
                 on_event: Callable[[str, dict], None] | None = None,
                 should_stop: Callable[[], bool] | None = None):
        from workbench.executors import make_executor
        from workbench.spaces import get_space

        self.storage, self.name = storage, name
        self.cfg = load_config(storage, name)
        c = self.cfg
        self.space = get_space(c.space, c.input_shape, c.num_classes, **c.space_options)
        self.searcher = get_searcher(c.searcher, self.space, c.objectives, seed=c.seed,
                                     **c.searcher_options)
        self.executor = executor or make_executor(
            c.executor, workers=c.workers, timeout=c.timeout, devices=list(c.devices) or None,
            **({"trials_per_gpu": c.trials_per_gpu} if c.trials_per_gpu else {}), **c.ray)
        self.on_event = on_event or (lambda kind, data: None)
        self.should_stop = should_stop or (lambda: False)
        self.inflight: dict[int, tuple[Architecture, float | None]] = {}
        self.by_hash: dict[str, int] = {}
        self.finished = self.complete = self.failed = 0
        self.best: dict | None = None
        self.kept: set[int] = set()
        self._polled = -math.inf  # when the stop flag was last read from the database

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
            arch = self._arch(t.arch_decisions)
            result = result_of(t, self.cfg.objectives)
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
        k = _top_k(self.cfg.keep_weights)
        if k:
            obj = self.cfg.objectives[0]
            top = self.storage.trials(self.name, states=["complete"], limit=3 * k,
                                      order_by=f"metric:{obj.name}",
                                      descending=obj.direction == "maximize")
            self.kept = {t.number for t in top
                         if "weights.safetensors" in self.storage.list_artifacts(self.name, t.number)}

    def _arch(self, decisions: list) -> Architecture:
        return self.space.replay(Decision(p, c) for p, c in decisions)

    def _count(self, number: int, arch: Architecture, result: Result) -> None:
        self.finished += 1
        if result.ok:
            self.complete += 1
            obj = self.cfg.objectives[0]
            if self.best is None or obj.better(result.values[0], self.best["values"][0]):
                self.best = {"number": number, "values": list(result.values), "text": arch.text}
        else:
            self.failed += 1

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> Summary:
        t0 = time.monotonic()
        self.recover()
        if self.storage.get_study(self.name).status == "stopping":  # stopped while starting
            self.storage.set_study_status(self.name, "stopped")
            self.executor.shutdown()
            return Summary(self.name, "stopped", self.complete, self.failed, self.best,
                           time.monotonic() - t0)
        self.storage.set_study_status(self.name, "running")
        status, duplicates = "finished", 0
        try:
            while True:
                if self._stop_requested():
                    status = "stopped"
                    break
                if self.cfg.max_seconds is not None and time.monotonic() - t0 > self.cfg.max_seconds:
                    break
                while self.executor.free_slots() and self._want_more():
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
            status = "stopped"
            raise
        except Exception:
            status = "failed"  # the driver broke (executor, database): not a finished study
            raise
        finally:
            self.executor.shutdown()
            if self.inflight:  # interrupted: trials in flight run again on resume
                self.storage.requeue_running(self.name)
            self.storage.set_study_status(self.name, status)
        return Summary(self.name, status, self.complete, self.failed, self.best,
                       time.monotonic() - t0)

    def _stop_requested(self) -> bool:
        """Whether to stop: the caller's flag, or the study's ``stopping`` status, which is
        read at most every STOP_POLL_S (a database read per trial would dominate the loop's
        overhead when trials are short; a stop lands within that much of being asked)."""
        if self.should_stop():
            return True
        now = time.monotonic()
        if now - self._polled < STOP_POLL_S:
            return False
        self._polled = now
        return self.storage.get_study(self.name).status == "stopping"

    def _want_more(self) -> bool:
        return self.cfg.trials is None or self.finished + len(self.inflight) < self.cfg.trials

    def _submit_next(self) -> bool:
        """Submit one trial (queued first, else a new proposal). False: nothing submitted."""
        queued = self.storage.next_queued(self.name)
        if queued is not None:
            self._launch(queued.number, self._arch(queued.arch_decisions), queued.fidelity)
            return True
        ask_index = self.searcher.n_asked
        proposal = self.searcher.ask()
        arch, fidelity = proposal.arch, proposal.info.get("fidelity")
        existing = self.storage.find_trial(self.name, arch.hash, fidelity)
        if existing is not None:  # never train the same architecture twice
            tell_index = None
            if getattr(existing.state, "value", existing.state) == "complete":  # told again
                tell_index = len(self.searcher.history)
            self.storage.add_repeat(self.name, existing.number, ask_index=ask_index,
                                    tell_index=tell_index)
            if tell_index is not None:
                self.searcher.tell(arch, result_of(existing, self.cfg.objectives))
            return False
        parents = tuple(self.by_hash[h] for h in proposal.parents if h in self.by_hash)
        violation = self._violation(arch)
        trial = self.storage.create_trial(
            self.name, arch_hash=arch.hash, arch_text=arch.text,
            arch_decisions=[[d.path, d.choice] for d in arch.decisions], space=arch.space,
            fidelity=fidelity, state="running",
            parent_numbers=parents, ask_index=ask_index)
        self.by_hash[arch.hash] = trial.number
        if violation:
            self.storage.finish_trial(self.name, trial.number, state="failed", error=violation,
                                      metrics={}, tell_index=len(self.searcher.history))
            result = Result("failed", None, {}, fidelity)
            self.searcher.tell(arch, result)
            self._count(trial.number, arch, result)
            self.on_event("trial_finished", self._event(trial.number, "failed", violation))
            return True
        self._launch(trial.number, arch, fidelity)
        return True

    def _violation(self, arch: Architecture) -> str | None:
        limits = self.cfg.constraints
        if not limits:
            return None
        from workbench.metrics import static_metrics

        m = static_metrics(arch)
        for key, metric in (("max_params", "params_total"), ("max_flops", "flops")):
            if key in limits and m[metric] > limits[key]:
                return (f"constraint {key}={limits[key]:,} violated: found "
                        f"{metric.split('_')[0]} {m[metric]:,}")
        return None

    def _launch(self, number: int, arch: Architecture, fidelity: float | None) -> None:
        c = self.cfg
        job = Job(study=self.name, number=number, space=c.space, space_options=c.space_options,
                  input_shape=tuple(c.input_shape), num_classes=c.num_classes,
                  decisions=[[d.path, d.choice] for d in arch.decisions], task=c.task,
                  task_options=c.task_options, budget=c.budget,
                  seed=c.seed * 1_000_003 + number, device=c.device, evaluator=c.evaluator,
                  keep_weights=c.keep_weights != "none", fidelity=fidelity, task_seed=c.seed,
                  repeats=c.repeats)
        self.inflight[number] = (arch, fidelity)
        self.executor.submit(job)
        self.on_event("trial_started", {"number": number, "text": arch.text})

    def _record(self, job: Job, outcome: Outcome) -> None:
        arch, fidelity = self.inflight.pop(job.number)
        state, error, metrics = outcome.state, outcome.error, dict(outcome.metrics)
        if state == "complete":
            missing = [o.name for o in self.cfg.objectives if o.name not in metrics]
            if missing:
                state, error = "failed", f"evaluation returned no {', '.join(missing)}"
        self.storage.finish_trial(self.name, job.number, state=state, metrics=metrics,
                                  error=error, duration_s=outcome.duration_s,
                                  curve=[dict(p, fidelity=fidelity) for p in outcome.curve],
                                  worker=outcome.worker or None,
                                  tell_index=len(self.searcher.history))
        result = result_of(_Stored(state, metrics, fidelity), self.cfg.objectives)
        if outcome.weights is not None and result.ok:
            self._keep(job.number, outcome.weights)
        self.searcher.tell(arch, result)
        self._count(job.number, arch, result)
        self.on_event("trial_finished", self._event(job.number, state, error, metrics))

    def _keep(self, number: int, weights: bytes) -> None:
        k = _top_k(self.cfg.keep_weights)
        if k is None:
            self.storage.put_artifact(self.name, number, "weights.safetensors", weights)
            return
        obj = self.cfg.objectives[0]
        top = {t.number for t in self.storage.trials(
            self.name, states=["complete"], limit=k, order_by=f"metric:{obj.name}",
            descending=obj.direction == "maximize")}
        if number in top:
            self.storage.put_artifact(self.name, number, "weights.safetensors", weights)
            self.kept.add(number)
        for old in self.kept - top:
            self.storage.delete_artifact(self.name, old, "weights.safetensors")
        self.kept &= top

    def _event(self, number: int, state: str, error: str | None = None,
               metrics: dict | None = None) -> dict:
        return {"number": number, "state": state, "error": error, "metrics": metrics or {},
                "finished": self.finished, "complete": self.complete, "failed": self.failed,
                "total": self.cfg.trials, "best": self.best}


@dataclass(frozen=True)
class _Stored:
    """Adapter so a fresh outcome reads like a stored trial for :func:`result_of`."""

    state: str
    metrics: dict
    fidelity: float | None


def run_study(storage, name: str, **kwargs: Any) -> Summary:
    """Run (or resume) a study until its budget is spent or it is stopped."""
    return StudyRunner(storage, name, **kwargs).run()


def request_stop(storage, name: str) -> None:
    """Ask the study's driver (in whatever process) to stop after the trials in flight."""
    storage.get_study(name)
    storage.set_study_status(name, "stopping")


def enqueue(storage, name: str, arch: Architecture, *, fidelity: float | None = None) -> int:
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
                                 space=arch.space, fidelity=fidelity, state="queued")
    return trial.number

"""A study's configuration: :class:`StudyConfig` (everything that defines a study, stored as
JSON with it) and the parsing and checks of what a user types (objectives, memory sizes, ranges,
devices). Every check answers with one line naming the option, what was expected and what was
found.

>>> cfg = StudyConfig(space="mlp", task="digits", objectives=parse_objectives("acc,params"))
>>> [o.direction for o in cfg.objectives], parse_memory("4GB")
(['maximize', 'minimize'], 4096.0)
>>> StudyConfig(workers=0)
Traceback (most recent call last):
...
workbench.errors.ConfigError: --workers: expected an integer in 1..1024, found 0
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.errors import ConfigError
from workbench.proposing import check_proposing
from workbench.searchers import Objective

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
    task: str = "mnist1d"
    task_options: dict = field(default_factory=dict)
    searcher: str = "random"
    searcher_options: dict = field(default_factory=dict)
    objectives: tuple[Objective, ...] = (Objective("val_accuracy", "maximize"),)
    constraints: dict = field(default_factory=dict)  # max_params, max_flops (see proposing)
    proxies: tuple[str, ...] = ()  # zero-cost proxies recorded as metrics (workbench.proxies)
    prefilter: str | None = None  # "naswot:top0.25": train the best quarter by a proxy
    trials: int | None = 20
    max_seconds: float | None = None  # wall-clock budget of one run of the driver
    budget: dict = field(default_factory=dict)  # trainer.Budget fields (epochs, batch_size ...)
    memory_limit_mb: float | None = None  # per trial (process executor): see parse_memory
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
        _in_range("--trials", self.trials, 1, MAX_TRIALS, optional=True)
        _in_range("--workers", self.workers, 1, MAX_WORKERS)
        _in_range("--seed", self.seed, 0, 2**63 - 1)
        _in_range("--classes", self.num_classes, 1, MAX_CLASSES, optional=True)
        if self.input_shape is not None:
            if not 1 <= len(self.input_shape) <= 3:
                raise ConfigError(f"--input: expected 1 to 3 dimensions (C,H,W), found "
                                  f"{len(self.input_shape)}")
            for d in self.input_shape:
                _in_range("--input", d, 1, MAX_INPUT_DIM)
            if math.prod(self.input_shape) > MAX_INPUT_ELEMENTS:
                raise ConfigError(f"--input: expected at most {MAX_INPUT_ELEMENTS:,} values per "
                                  f"example, found {math.prod(self.input_shape):,}")
        if (self.input_shape is None) != (self.num_classes is None):
            raise ConfigError("--input and --classes: expected both (a custom evaluator's shapes) "
                              "or neither (taken from the task), found only "
                              + ("--input" if self.input_shape is not None else "--classes"))
        if isinstance(self.trials_per_gpu, str) and self.trials_per_gpu != "auto":
            raise ConfigError(f"--trials-per-gpu: expected an integer in 1..64 or auto, found "
                              f"{self.trials_per_gpu!r}")
        if self.trials_per_gpu is not None and not isinstance(self.trials_per_gpu, str):
            _in_range("--trials-per-gpu", self.trials_per_gpu, 1, 64)
        if self.timeout is not None:
            _in_range("--timeout", self.timeout, 1e-3, 1e7)
            if self.executor == "inline":
                raise ConfigError("--timeout: the inline executor runs trials in the driver's "
                                  "own process and cannot stop one; use --executor process")
        if self.max_seconds is not None:
            _in_range("--max-seconds", self.max_seconds, 1e-3, 1e9)
        for key, flag, high in (("epochs", "--epochs", 100_000), ("batch_size", "--batch-size",
                                                                 65_536),
                                ("steps", "--steps", 10**9), ("max_steps", "--max-steps", 10**9)):
            if self.budget.get(key) is not None:
                _in_range(flag, self.budget[key], 1, high)
        if self.budget.get("steps") is not None and self.searcher in ("sha", "hyperband"):
            raise ConfigError(f"--steps: the {self.searcher} searcher sets each trial's epochs "
                              f"(its rungs); give --epochs instead of --steps")
        _in_range("--repeats", self.repeats, 1, 100)
        if self.memory_limit_mb is not None:
            _in_range("--memory-limit", self.memory_limit_mb, 16.0, 16.0 * 1024**2)
            if self.executor != "process":
                raise ConfigError("--memory-limit: expected the process executor (it caps each "
                                  f"worker's memory), found --executor {self.executor}")
        if self.trials is None and self.max_seconds is None:
            raise ConfigError("expected a trial budget (--trials) or a time budget "
                              "(--max-seconds), found neither")
        if self.keep_weights not in ("none", "all") and not top_k(self.keep_weights):
            raise ConfigError(f"--keep-weights: expected none, all or top:K, "
                              f"found {self.keep_weights!r}")
        check_proposing(self)

    @property
    def shape(self) -> tuple[tuple[int, ...], int]:
        """(input shape, classes); set by :func:`resolve_shapes` before a study is stored."""
        if self.input_shape is None or self.num_classes is None:
            raise ConfigError("study config: expected input_shape and num_classes (from the "
                              "task, or --input and --classes), found none")
        return tuple(self.input_shape), int(self.num_classes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["objectives"] = [asdict(o) for o in self.objectives]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StudyConfig:
        d = dict(d)
        d["objectives"] = tuple(Objective(**o) for o in d.get("objectives", ()))
        for key in ("input_shape", "devices", "proxies"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


MAX_TRIALS = 10_000_000
MAX_WORKERS = 1024
MAX_CLASSES = 100_000
MAX_INPUT_DIM = 4096
MAX_INPUT_ELEMENTS = 2**24  # values in one example (e.g. 3 x 2048 x 2048)


def _in_range(flag: str, value: Any, low: float, high: float, *, optional: bool = False) -> None:
    """One line for a value of the wrong type or out of range (``--classes: expected
    1..100000, found 1000000000``)."""
    if value is None and optional:
        return
    integral = isinstance(low, int) and isinstance(high, int)
    ok_type = (isinstance(value, int) if integral else isinstance(value, (int, float))) \
        and not isinstance(value, bool)
    if not ok_type or not (low <= value <= high) or (isinstance(value, float)
                                                      and not math.isfinite(value)):
        def show(x: float) -> str:
            return str(int(x)) if float(x).is_integer() else f"{x:g}"

        want = f"an integer in {low}..{high}" if integral else f"a number in {show(low)}..{show(high)}"
        raise ConfigError(f"{flag}: expected {want}, found {value!r}")


def parse_memory(text: str) -> float:
    """``"4GB"``, ``"512MB"``, ``"1.5G"`` or a number of megabytes -> megabytes.

    >>> parse_memory("4GB"), parse_memory("512m"), parse_memory("2048")
    (4096.0, 512.0, 2048.0)
    """
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)i?b?\s*", str(text).lower())
    if not m:
        raise ConfigError(f"--memory-limit: expected a size like 4GB or 512MB, found {text!r}")
    scale = {"k": 1 / 1024, "": 1, "m": 1, "g": 1024, "t": 1024**2}[m.group(2)]
    return float(m.group(1)) * scale


def top_k(spec: str) -> int | None:
    if spec.startswith("top:") and spec[4:].isdigit() and int(spec[4:]) > 0:
        return int(spec[4:])
    return None


def resolve_shapes(cfg: StudyConfig) -> StudyConfig:
    """Fill input_shape/num_classes from the task (loading it once) unless given."""
    if cfg.input_shape is not None and cfg.num_classes is not None and cfg.evaluator:
        return cfg  # a custom evaluator brings its own data: the shapes are the user's
    from dataclasses import replace

    from workbench.tasks import get_task

    task = get_task(cfg.task, seed=cfg.seed, **cfg.task_options)
    shapes = (tuple(task.input_shape), task.num_classes)
    if cfg.input_shape is not None and (tuple(cfg.input_shape), cfg.num_classes) != shapes:
        raise ConfigError(f"--input/--classes: expected the task's {','.join(map(str, shapes[0]))} "
                          f"and {shapes[1]} classes (they are taken from the task; give them only "
                          f"with --evaluator), found {','.join(map(str, cfg.input_shape))} and "
                          f"{cfg.num_classes}")
    return replace(cfg, input_shape=shapes[0], num_classes=shapes[1])


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_devices(cfg: StudyConfig) -> None:
    """Devices are checked before a study is stored: the syntax always, and for the local
    executors that the device exists (Ray workers may have GPUs the driver lacks)."""
    for flag, value in [("--device", cfg.device), *(("--devices", d) for d in cfg.devices)]:
        if not isinstance(value, str) or not _DEVICE.match(value.strip().lower()):
            raise ConfigError(f"{flag}: expected auto, cpu, cuda, cuda:N or mps, found {value!r}")
        if cfg.executor != "ray" and value.strip().lower() != "auto":
            from workbench.devices import select_device

            select_device(value)

"""The notebook-facing API, re-exported lazily by ``import workbench as wb``.

Each function is a thin, keyword-friendly door onto the library the CLI and the UI use (spaces,
searchers, :mod:`workbench.study`, the trainer, the exporters, the diagrams, the Pareto front):

>>> import tempfile, os
>>> import workbench as wb
>>> db = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "nb.db")
>>> study = wb.create_study("demo", storage=db, space="mlp", task="synthetic", trials=3,
...                         executor="inline", budget={"epochs": 1, "batch_size": 64})
>>> wb.run_study(study).complete
3
>>> study = wb.load_study("demo", storage=db)
>>> len(study.trials()), study.best().number in range(3)
(3, True)
>>> front = wb.pareto(study)
>>> len(front.front) >= 1
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storage.protocol import StudyStorage
from storage.records import StudyRecord, TrialRecord, TrialState
from workbench.architecture import Architecture
from workbench.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from workbench.pareto import StudyFront
    from workbench.study import StudyConfig, Summary
    from workbench.trainer import Budget, EvalResult


def open_storage(storage: str | os.PathLike | StudyStorage | None = None) -> StudyStorage:
    """A database: a :class:`~storage.protocol.StudyStorage`, a SQLAlchemy URL, a path to a
    SQLite file, or ``None`` for the default (``$WORKBENCH_STORAGE`` or ``./workbench.db``)."""
    if isinstance(storage, StudyStorage):
        return storage
    from storage import Storage

    if storage is None:
        return Storage()
    text = os.fspath(storage)
    return Storage(text if "://" in text else f"sqlite:///{Path(text).expanduser()}")


class Study:
    """A handle on one stored study: its config, trials, best trial, front and architectures.

    It holds no state of its own: every call reads the database, so a handle on a study that
    another process is running shows its progress.
    """

    def __init__(self, storage: StudyStorage, name: str):
        self.storage, self.name = storage, name
        self.record  # noqa: B018  (fails now, with one line, for a study that does not exist)

    def __repr__(self) -> str:
        r = self.record
        return f"Study({self.name!r}, space={r.space!r}, searcher={r.searcher!r}, status={r.status})"

    @property
    def record(self) -> StudyRecord:
        return self.storage.get_study(self.name)

    @property
    def config(self) -> StudyConfig:
        from workbench.study import load_config

        return load_config(self.storage, self.name)

    def trials(self, *, complete_only: bool = False) -> list[TrialRecord]:
        """Every trial (or only the complete ones), by number."""
        states = [TrialState.COMPLETE] if complete_only else None
        return self.storage.trials(self.name, states=states)

    def best(self) -> TrialRecord:
        """The best complete trial by the first objective."""
        obj = self.record.objectives[0]
        top = self.storage.trials(self.name, states=[TrialState.COMPLETE], limit=1,
                                  order_by=f"metric:{obj['name']}",
                                  descending=obj.get("direction", "maximize") == "maximize")
        if not top:
            raise NotFound(f"study {self.name!r}: expected a complete trial, found none")
        return top[0]

    def front(self) -> StudyFront:
        from workbench.pareto import study_front

        return study_front(self.storage, self.name)

    def architecture(self, number: int) -> Architecture:
        """Trial ``number``'s architecture, rebuilt by replaying its stored decisions."""
        from workbench.study import study_space, trial_architecture

        trial = self.storage.get_trial(self.name, int(number), with_curve=False)
        return trial_architecture(study_space(self.config), trial)

    def weights(self, number: int) -> dict | None:
        """Trial ``number``'s trained weights (kept with ``keep_weights``), or ``None``."""
        blob = self.storage.get_artifact(self.name, int(number), "weights.safetensors")
        if blob is None:
            return None
        from safetensors.torch import load

        return load(blob)

    def run(self, **kwargs: Any) -> Summary:
        return run_study(self, **kwargs)


def create_study(name: str, config: StudyConfig | None = None, *,
                 storage: str | os.PathLike | StudyStorage | None = None,
                 **fields: Any) -> Study:
    """Store a new study: a :class:`~workbench.study.StudyConfig`, or its fields as keywords
    (``space=``, ``task=``, ``searcher=``, ``trials=``, ``objectives="acc,params"`` ...)."""
    from workbench import study as engine

    if config is not None and fields:
        raise ConfigError(f"create_study: expected a StudyConfig or keyword fields, found both "
                          f"({', '.join(sorted(fields))})")
    if config is None:
        if isinstance(fields.get("objectives"), str):
            fields["objectives"] = engine.parse_objectives(fields["objectives"])
        known = set(engine.StudyConfig.__dataclass_fields__)
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ConfigError(f"create_study: unknown fields {unknown}; expected some of "
                              f"{', '.join(sorted(known))}")
        config = engine.StudyConfig(**fields)
    db = open_storage(storage)
    engine.create_study(db, name, config)
    return Study(db, name)


def load_study(name: str, *, storage: str | os.PathLike | StudyStorage | None = None) -> Study:
    """A handle on a stored study."""
    return Study(open_storage(storage), name)


def run_study(study: Study | str, *, storage: str | os.PathLike | StudyStorage | None = None,
              **kwargs: Any) -> Summary:
    """Run (or resume) a study until its budget is spent or it is stopped; keyword arguments
    as :func:`workbench.study.run_study` (``on_event``, ``should_stop``, ``executor``)."""
    from workbench import study as engine

    if isinstance(study, Study):
        return engine.run_study(study.storage, study.name, **kwargs)
    return engine.run_study(open_storage(storage), study, **kwargs)


def evaluate(arch: Architecture, task: Any = "digits", budget: Budget | Mapping[str, Any] | None
             = None, **kwargs: Any) -> EvalResult:
    """Train ``arch`` on a task (a name such as ``"digits"`` or a :class:`~workbench.tasks.Task`)
    within a budget (a :class:`~workbench.trainer.Budget` or its fields as a dict); keyword
    arguments as :func:`workbench.trainer.evaluate` (``device``, ``seed``, ``keep_weights``)."""
    from workbench import trainer
    from workbench.tasks import get_task

    if isinstance(task, str):
        task = get_task(task, seed=int(kwargs.get("seed", 0)))
    if budget is None:
        budget = trainer.Budget()
    elif isinstance(budget, Mapping):
        budget = trainer.Budget(**budget)
    return trainer.evaluate(arch, task, budget, **kwargs)


def diagram(arch: Architecture, fmt: str = "svg", **kwargs: Any) -> str | bytes:
    """The circuit diagram: an SVG string (``fmt="svg"``), PNG bytes, or the graphviz source
    (``fmt="dot"``); keyword arguments as :func:`workbench.diagrams.to_dot` (``depth``, ``view``)."""
    from workbench import diagrams

    if fmt == "dot":
        return diagrams.to_dot(arch, **kwargs)
    data = diagrams.render(arch, fmt, **kwargs)
    return data.decode() if fmt == "svg" else data


def pareto(study: Study | str, *, storage: str | os.PathLike | StudyStorage | None = None
           ) -> StudyFront:
    """A study's non-dominated complete trials and their normalised hypervolume."""
    from workbench.pareto import study_front

    if isinstance(study, Study):
        return study.front()
    return study_front(open_storage(storage), study)


def export(arch: Architecture, fmt: str, out: str | os.PathLike, **kwargs: Any) -> Path:
    """Write ``arch`` as json, py, torchscript, pt2, onnx, weights or svg; keyword arguments as
    :func:`workbench.export.export` (``seed``, ``state_dict``, ``metrics``)."""
    from workbench.export import export as write

    return write(arch, fmt, out, **kwargs)

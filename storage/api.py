"""The :class:`Storage` facade: studies here, trials/curves/artifacts in ``_trials``."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import case, delete, exc, func, select, update

from storage._base import clean_json, study_record
from storage._leases import LeasesMixin
from storage._notes import NotesMixin
from storage._trials import TrialsMixin
from storage.engine import (
    WRITE,
    default_url,
    describe,
    make_engine,
    parse_url,
    require_existing,
    upgrade,
)
from storage.errors import ConflictError, StorageError
from storage.models import Study, Trial, utcnow
from storage.records import STUDY_STATUSES, StudyRecord, StudyStatus, TrialState

log = logging.getLogger(__name__)

_DIRECTIONS = ("maximize", "minimize")


class Storage(NotesMixin, TrialsMixin, LeasesMixin):
    """Studies, architectures, trials, learning curves and artifacts in one database.

    ``url`` is any SQLAlchemy URL (default: :func:`storage.default_url`). Opening creates the
    database (and its directory) if needed and upgrades the schema to the newest revision.

    >>> st = Storage("sqlite://")  # in memory
    >>> _ = st.create_study("demo", space="toy", task="digits", searcher="random",
    ...                     objectives=[{"name": "acc", "direction": "maximize"}], config={}, seed=0)
    >>> t = st.create_trial("demo", arch_hash="h1", arch_text="relu", arch_decisions=[["op", "relu"]],
    ...                     space="toy")
    >>> t.number, t.state.value
    (0, 'running')
    >>> st.finish_trial("demo", 0, state=TrialState.COMPLETE, metrics={"acc": 0.9}).metrics
    {'acc': 0.9}
    >>> st.study_summaries()[0]["best"]
    0.9
    >>> st.close()
    """

    def __init__(self, url: str | None = None, *, create: bool = True):
        self.url = url if url is not None else default_url()
        self._parsed = parse_url(self.url)
        if not create:
            require_existing(self._parsed)
        self._engine = make_engine(self._parsed)
        self._write_engine = self._engine.execution_options(**WRITE)
        # PostgreSQL reads (and the single-statement writes of storage._statements pg_*) run in autocommit:
        # no BEGIN/COMMIT round trips around one statement
        self._pg = self._parsed.get_backend_name() == "postgresql"
        self._read_engine = (self._engine.execution_options(isolation_level="AUTOCOMMIT")
                             if self._pg else self._engine)
        try:
            self.revision = upgrade(self._engine)
        except StorageError:
            self._engine.dispose()
            raise
        except (exc.SQLAlchemyError, OSError) as err:
            self._engine.dispose()
            raise describe(err, self.url) from None
        log.debug("opened %s at schema revision %s", self._shown, self.revision)

    def close(self) -> None:
        """Release every pooled connection. The object must not be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Storage({self._shown!r})"

    # -- studies ------------------------------------------------------------------------------
    def create_study(self, name: str, *, space: str, task: str, searcher: str,
                     objectives: list[dict[str, Any]], config: dict[str, Any],
                     seed: int) -> StudyRecord:
        """Create a study; ConflictError if the name is taken."""
        if not isinstance(name, str) or not name.strip():
            raise StorageError(f"invalid study name {name!r}: expected a non-empty string")
        objectives = _check_objectives(objectives, name)
        now = utcnow()
        row = Study(name=name, space=space, task=task, searcher=searcher, objectives=objectives,
                    config=clean_json(dict(config), "config"), seed=int(seed), status=StudyStatus.CREATED.value,
                    created_at=now, updated_at=now)
        try:
            with self._write() as s:
                if s.scalar(select(Study.id).where(Study.name == name)) is not None:
                    raise self._taken(name)
                s.add(row)
        except exc.IntegrityError:  # created concurrently by another process
            raise self._taken(name) from None
        return study_record(row)

    def _taken(self, name: str) -> ConflictError:
        return ConflictError(f"a study named {name!r} already exists in {self._shown}; "
                             "choose another name or delete it first")

    def get_study(self, name: str) -> StudyRecord:
        """The study called ``name``; NotFoundError listing the existing studies otherwise."""
        with self._read() as s:
            row = s.scalar(select(Study).where(Study.name == name))
            if row is None:
                raise self._no_study(s, name)
            return study_record(row)

    def list_studies(self) -> list[StudyRecord]:
        """Every study, oldest first."""
        with self._read() as s:
            return [study_record(r) for r in s.scalars(select(Study).order_by(Study.id))]

    def study_summaries(self) -> list[dict[str, Any]]:
        """One dict per study (oldest first) with trial counts per state and the best value.

        Keys: name, status, space, task, searcher, n_complete, n_failed, n_running, n_queued,
        n_pruned, best, created_at, updated_at. ``best`` is the best value of the first objective
        among complete trials (``None`` if there is none). Counted and aggregated in SQL.
        """
        counts = [func.coalesce(func.sum(case((Trial.state == st.value, 1), else_=0)), 0)
                  .label(f"n_{st.value}") for st in TrialState]
        query = (select(Study, *counts).outerjoin(Trial, Trial.study_id == Study.id)
                 .group_by(Study.id).order_by(Study.id))
        with self._read() as s:
            rows = s.execute(query).all()
            best = self._best_values(s, [r[0] for r in rows])
        out = []
        for row in rows:
            study = row[0]
            out.append({
                "name": study.name, "status": StudyStatus(study.status), "space": study.space,
                "task": study.task, "searcher": study.searcher,
                **{f"n_{st.value}": int(row._mapping[f"n_{st.value}"]) for st in TrialState},
                "best": best.get(study.id), "created_at": study.created_at,
                "updated_at": study.updated_at,
            })
        return out

    @staticmethod
    def _best_values(s: Any, studies: list[Study]) -> dict[int, float | None]:
        # Studies sharing a first objective are aggregated in one GROUP BY query; usually all
        # studies in a database share one or two objective names.
        by_metric: dict[str, list[Study]] = {}
        for study in studies:
            if study.objectives:
                by_metric.setdefault(study.objectives[0]["name"], []).append(study)
        best: dict[int, float | None] = {}
        for metric, group in by_metric.items():
            value = Trial.metrics[metric].as_float()
            ids = [st.id for st in group]
            found = {sid: (hi, lo) for sid, hi, lo in s.execute(
                select(Trial.study_id, func.max(value), func.min(value))
                .where(Trial.study_id.in_(ids), Trial.state == TrialState.COMPLETE.value)
                .group_by(Trial.study_id))}
            for st in group:
                hi, lo = found.get(st.id, (None, None))
                maximize = st.objectives[0].get("direction", "maximize") == "maximize"
                best[st.id] = hi if maximize else lo
        return best

    def set_study_status(self, name: str, status: StudyStatus | str) -> None:
        """Set the status (a :class:`StudyStatus` or its value)."""
        if status not in STUDY_STATUSES:
            raise ConflictError(f"invalid status {status!r} for study {name!r}: expected one of "
                                f"{', '.join(STUDY_STATUSES)}")
        self._update_study(name, status=StudyStatus(status).value)

    def mark_running(self, name: str) -> bool:
        """Set the status to running unless a stop was asked (``stopping``/``cancelling``), in
        one statement: a stop request written while a driver starts is never overwritten.
        False when a stop was pending (the status is left as it is)."""
        pending = (StudyStatus.STOPPING.value, StudyStatus.CANCELLING.value)
        with self._write() as s:
            done = s.execute(update(Study).where(  # type: ignore[attr-defined]
                Study.name == name, Study.status.not_in(pending)).values(
                    updated_at=utcnow(), status=StudyStatus.RUNNING.value)).rowcount
            if not done:
                self._study_id(s, name)  # a missing study raises
            return bool(done)

    def update_study_config(self, name: str, config: dict[str, Any]) -> None:
        """Replace the study's config dict (e.g. a raised budget when resuming)."""
        self._update_study(name, config=clean_json(dict(config), "config"))

    def _update_study(self, name: str, **values: Any) -> None:
        with self._write() as s:
            found = s.execute(update(Study).where(  # type: ignore[attr-defined]
                Study.name == name).values(updated_at=utcnow(), **values)).rowcount
            if not found:
                raise self._no_study(s, name)

    def delete_study(self, name: str) -> None:
        """Delete a study with its trials, curves, artifacts and repeat log (architectures stay
        shared)."""
        with self._write() as s:
            study_id = self._study_id(s, name)
            # Foreign keys cascade on both backends; deleting explicitly keeps it working on a
            # SQLite connection opened elsewhere without PRAGMA foreign_keys.
            trial_ids = select(Trial.id).where(Trial.study_id == study_id).scalar_subquery()
            from storage.models import Artifact, CurvePoint, Lease, Repeat

            s.execute(delete(Lease).where(Lease.study_id == study_id))
            s.execute(delete(Repeat).where(Repeat.study_id == study_id))
            self._delete_notes(s, study_id)
            s.execute(delete(CurvePoint).where(CurvePoint.trial_id.in_(trial_ids)))
            s.execute(delete(Artifact).where(Artifact.trial_id.in_(trial_ids)))
            s.execute(delete(Trial).where(Trial.study_id == study_id))
            s.execute(delete(Study).where(Study.id == study_id))
        self._forget_study(name)


def _check_objectives(objectives: Any, study: str) -> list[dict[str, Any]]:
    if not isinstance(objectives, (list, tuple)) or not objectives:
        raise StorageError(f"invalid objectives for study {study!r}: expected a non-empty list "
                           f"like [{{'name': 'val_accuracy', 'direction': 'maximize'}}], "
                           f"found {objectives!r}")
    out = []
    for i, obj in enumerate(objectives):
        if (not isinstance(obj, dict) or not isinstance(obj.get("name"), str)
                or obj.get("direction", "maximize") not in _DIRECTIONS):
            raise StorageError(f"invalid objective {i} of study {study!r}: expected a dict with "
                               f"'name' and 'direction' (maximize or minimize), found {obj!r}")
        out.append({**clean_json(obj, f"objectives[{i}]"),
                    "direction": obj.get("direction", "maximize")})
    return out

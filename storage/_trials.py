"""Trial, learning-curve and artifact methods of :class:`storage.Storage`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from storage._base import StorageBase, chunks, clean_json, to_state, trial_record
from storage.errors import ConflictError, NotFoundError, StorageError
from storage.models import Architecture, Artifact, CurvePoint, Study, Trial, utcnow
from storage.records import TrialRecord, TrialState

log = logging.getLogger(__name__)

_RETRIES = 20  # unique-constraint races on trial numbers are rare; each retry re-reads the max
_SORT_COLUMNS = {
    "number": Trial.number, "created_at": Trial.created_at, "started_at": Trial.started_at,
    "finished_at": Trial.finished_at, "duration_s": Trial.duration_s, "fidelity": Trial.fidelity,
    "state": Trial.state,
}
_LIVE = (TrialState.COMPLETE.value, TrialState.RUNNING.value, TrialState.QUEUED.value)


class TrialsMixin(StorageBase):
    # -- creating and moving trials -------------------------------------------------------------
    def create_trial(self, study: str, *, arch_hash: str, arch_text: str,
                     arch_decisions: Sequence[Any], space: str, fidelity: float | None = None,
                     state: TrialState | str = TrialState.RUNNING, worker: str | None = None,
                     parent_numbers: Iterable[int] = (),
                     metrics: dict[str, Any] | None = None) -> TrialRecord:
        """Add a trial with the next free number; the architecture is stored once per hash.

        Safe with several writers on one database: the (study, number) pair is unique, and a
        writer that loses a race re-reads the highest number and tries again.
        """
        state = to_state(state)
        decisions = clean_json(list(arch_decisions), "arch_decisions")
        metrics = clean_json(dict(metrics or {}), "metrics")
        parents = [int(n) for n in parent_numbers]
        fidelity = None if fidelity is None else float(fidelity)
        for attempt in range(_RETRIES):
            try:
                with self._write() as s:
                    now = utcnow()
                    # Touching the study row first also serialises concurrent numbering on
                    # PostgreSQL (row lock), so the retry below is a safety net, not the plan.
                    study_id = s.scalar(update(Study).where(Study.name == study)
                                        .values(updated_at=now).returning(Study.id))
                    if study_id is None:
                        raise self._no_study(s, study)
                    arch = self._architecture(s, arch_hash, arch_text, decisions, space)
                    last = s.scalar(select(func.max(Trial.number))
                                    .where(Trial.study_id == study_id))
                    trial = Trial(
                        study_id=study_id, number=(-1 if last is None else last) + 1,
                        state=state.value, architecture_id=arch.id, fidelity=fidelity,
                        metrics=metrics, error=None, worker=worker, parent_numbers=parents,
                        created_at=now,
                        started_at=now if state is not TrialState.QUEUED else None,
                        finished_at=now if state.finished else None, duration_s=None)
                    s.add(trial)
                    s.flush()
                    return trial_record(trial, arch, study)
            except sa_exc.IntegrityError:
                log.debug("trial number race in study %r (attempt %d); retrying", study, attempt)
        raise ConflictError(f"could not number a new trial in study {study!r} after {_RETRIES} "
                            f"attempts (too many concurrent writers on {self._shown})")

    def _architecture(self, s: Session, arch_hash: str, text: str, decisions: list[Any],
                      space: str) -> Architecture:
        # PostgreSQL: INSERT ... ON CONFLICT DO NOTHING, then read — fewer network round trips
        # than a savepoint, and a concurrent writer inserting the same hash first is no error.
        # (SQLite runs in-process: its savepoint path below is as cheap.)
        if s.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as upsert

            s.execute(upsert(Architecture).values(
                hash=arch_hash, space=space, text=text, decisions=decisions,
                created_at=utcnow()).on_conflict_do_nothing(index_elements=["hash"]))
            return s.scalars(select(Architecture).where(Architecture.hash == arch_hash)).one()
        arch = s.scalar(select(Architecture).where(Architecture.hash == arch_hash))
        if arch is not None:
            return arch
        try:
            with s.begin_nested():  # a concurrent writer may insert the same hash first
                arch = Architecture(hash=arch_hash, space=space, text=text, decisions=decisions,
                                    created_at=utcnow())
                s.add(arch)
            return arch
        except sa_exc.IntegrityError:
            return s.scalars(select(Architecture).where(Architecture.hash == arch_hash)).one()

    def start_trial(self, study: str, number: int, worker: str | None = None) -> TrialRecord:
        """Move a queued trial to running (sets ``started_at``); ConflictError otherwise."""
        with self._write() as s:
            trial, arch = self._load(s, study, number)
            if trial.state != TrialState.QUEUED.value:
                raise ConflictError(f"cannot start trial {number} of study {study!r}: expected "
                                    f"state 'queued', found {trial.state!r}")
            trial.state, trial.started_at, trial.worker = (
                TrialState.RUNNING.value, utcnow(), worker)
            return trial_record(trial, arch, study)

    def finish_trial(self, study: str, number: int, *, state: TrialState | str,
                     metrics: dict[str, Any] | None = None, error: str | None = None,
                     duration_s: float | None = None,
                     curve: Sequence[dict[str, Any]] | None = None,
                     worker: str | None = None) -> TrialRecord:
        """Record the outcome of a queued or running trial: complete, failed or pruned.

        ``metrics`` are merged into those already stored; ``curve`` (per-epoch dicts) replaces
        any stored curve.
        """
        state = to_state(state)
        if not state.finished:
            raise ConflictError(f"cannot finish trial {number} of study {study!r} as "
                                f"{state.value!r}: expected complete, failed or pruned")
        new_metrics = clean_json(dict(metrics or {}), "metrics")
        points = None if curve is None else clean_json(list(curve), "curve")
        with self._write() as s:
            trial, arch = self._load(s, study, number)
            if TrialState(trial.state).finished:
                raise ConflictError(f"cannot finish trial {number} of study {study!r}: it is "
                                    f"already {trial.state}")
            now = utcnow()
            trial.state, trial.finished_at, trial.error = state.value, now, error
            trial.metrics = {**(trial.metrics or {}), **new_metrics}
            if worker:
                trial.worker = worker
            if duration_s is None and trial.started_at is not None:
                duration_s = (now - trial.started_at).total_seconds()
            trial.duration_s = None if duration_s is None else float(duration_s)
            if points is not None:
                # a trial is finished once, and only finishing writes curves: nothing to delete
                if points:
                    s.execute(CurvePoint.__table__.insert(), [
                        {"trial_id": trial.id, "seq": i, "values": p}
                        for i, p in enumerate(points)])
            s.execute(update(Study).where(Study.id == trial.study_id).values(updated_at=now))
            return trial_record(trial, arch, study, curve=points)

    def requeue_running(self, study: str) -> list[int]:
        """Put every running trial back in the queue (resume after a crash); their numbers."""
        with self._write() as s:
            study_id = self._study_id(s, study)
            numbers = s.scalars(
                update(Trial)
                .where(Trial.study_id == study_id, Trial.state == TrialState.RUNNING.value)
                .values(state=TrialState.QUEUED.value, started_at=None, worker=None)
                .returning(Trial.number)).all()
            return sorted(numbers)

    def next_queued(self, study: str, worker: str | None = None) -> TrialRecord | None:
        """Claim the oldest queued trial (it becomes running); ``None`` if the queue is empty.

        Two workers never get the same trial: SQLite serialises writers (BEGIN IMMEDIATE);
        PostgreSQL skips rows another transaction has locked, and the state-checked UPDATE
        guards every other database.
        """
        with self._write() as s:
            study_id = self._study_id(s, study)
            for _ in range(_RETRIES):
                trial_id = s.scalar(
                    select(Trial.id)
                    .where(Trial.study_id == study_id, Trial.state == TrialState.QUEUED.value)
                    .order_by(Trial.number).limit(1).with_for_update(skip_locked=True))
                if trial_id is None:
                    return None
                claimed = s.execute(
                    update(Trial)
                    .where(Trial.id == trial_id, Trial.state == TrialState.QUEUED.value)
                    .values(state=TrialState.RUNNING.value, started_at=utcnow(), worker=worker)
                    .execution_options(synchronize_session=False)).rowcount
                if claimed == 1:
                    trial, arch = s.execute(
                        select(Trial, Architecture).join(Architecture)
                        .where(Trial.id == trial_id)).one()
                    return trial_record(trial, arch, study)
            raise ConflictError(f"could not claim a queued trial of study {study!r}: every "
                                f"attempt lost a race with another worker on {self._shown}")

    # -- reading ----------------------------------------------------------------------------
    def _load(self, s: Session, study: str, number: int) -> tuple[Trial, Architecture]:
        study_id = self._study_id(s, study)
        row = s.execute(select(Trial, Architecture).join(Architecture)
                        .where(Trial.study_id == study_id, Trial.number == int(number))).first()
        if row is None:
            raise self._no_trial(s, study, study_id, number)
        return row[0], row[1]

    def get_trial(self, study: str, number: int, with_curve: bool = True) -> TrialRecord:
        """One trial by number (with its learning curve unless ``with_curve=False``)."""
        with self._read() as s:
            trial, arch = self._load(s, study, number)
            curve = self._curves(s, [trial.id])[trial.id] if with_curve else None
            return trial_record(trial, arch, study, curve=curve)

    def trials(self, study: str, *, states: Iterable[TrialState | str] | None = None,
               offset: int = 0, limit: int | None = None, order_by: str = "number",
               descending: bool = False, with_curve: bool = False) -> list[TrialRecord]:
        """A page of a study's trials, filtered and ordered in SQL.

        ``order_by`` is a column (``number``, ``created_at``, ``started_at``, ``finished_at``,
        ``duration_s``, ``fidelity``, ``state``) or ``metric:<name>`` to order by a value in the
        metrics JSON; missing values sort last in either direction; ties go by number.
        """
        key = self._sort_key(order_by)
        with self._read() as s:
            study_id = self._study_id(s, study)
            query = select(Trial, Architecture).join(Architecture).where(
                Trial.study_id == study_id)
            if states is not None:
                query = query.where(Trial.state.in_([to_state(x).value for x in states]))
            ordered = key.desc() if descending else key.asc()
            if key is not Trial.number:
                ordered = ordered.nulls_last()
            query = query.order_by(ordered, Trial.number).offset(int(offset))
            if limit is not None:
                query = query.limit(int(limit))
            rows = s.execute(query).all()
            curves = self._curves(s, [t.id for t, _ in rows]) if with_curve else {}
            return [trial_record(t, a, study, curve=curves.get(t.id) if with_curve else None)
                    for t, a in rows]

    @staticmethod
    def _sort_key(order_by: str) -> Any:
        if order_by.startswith("metric:") and len(order_by) > len("metric:"):
            return Trial.metrics[order_by[len("metric:"):]].as_float()
        if order_by in _SORT_COLUMNS:
            return _SORT_COLUMNS[order_by]
        raise StorageError(f"cannot order trials by {order_by!r}: expected one of "
                           f"{', '.join(_SORT_COLUMNS)} or 'metric:<name>'")

    def count_trials(self, study: str) -> dict[str, int]:
        """Number of trials per state value; every state is present."""
        with self._read() as s:
            study_id = self._study_id(s, study)
            counts = dict.fromkeys((st.value for st in TrialState), 0)
            for state, n in s.execute(select(Trial.state, func.count())
                                      .where(Trial.study_id == study_id)
                                      .group_by(Trial.state)):
                counts[state] = n
            return counts

    def find_trial(self, study: str, arch_hash: str,
                   fidelity: float | None) -> TrialRecord | None:
        """A complete (preferred), running or queued trial of this architecture at this fidelity."""
        with self._read() as s:
            study_id = self._study_id(s, study)
            query = (select(Trial, Architecture).join(Architecture)
                     .where(Trial.study_id == study_id, Architecture.hash == arch_hash,
                            Trial.state.in_(_LIVE)))
            query = query.where(Trial.fidelity.is_(None) if fidelity is None
                                else Trial.fidelity == float(fidelity))
            query = query.order_by(
                case((Trial.state == TrialState.COMPLETE.value, 0), else_=1), Trial.number)
            row = s.execute(query.limit(1)).first()
            return None if row is None else trial_record(row[0], row[1], study)

    def curves(self, study: str, numbers: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """Learning curves by trial number (an empty list for a trial without one)."""
        wanted = sorted({int(n) for n in numbers})
        with self._read() as s:
            study_id = self._study_id(s, study)
            ids: dict[int, int] = {}
            for batch in chunks(wanted):
                ids.update((tid, num) for tid, num in s.execute(
                    select(Trial.id, Trial.number).where(Trial.study_id == study_id,
                                                         Trial.number.in_(batch))))
            by_id = self._curves(s, list(ids))
            return {ids[i]: by_id[i] for i in sorted(ids, key=ids.get)}

    @staticmethod
    def _curves(s: Session, trial_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
        out: dict[int, list[dict[str, Any]]] = {i: [] for i in trial_ids}
        for batch in chunks(trial_ids):
            for trial_id, values in s.execute(
                    select(CurvePoint.trial_id, CurvePoint.values)
                    .where(CurvePoint.trial_id.in_(batch))
                    .order_by(CurvePoint.trial_id, CurvePoint.seq)):
                out[trial_id].append(values)
        return out

    # -- artifacts --------------------------------------------------------------------------
    def put_artifact(self, study: str, number: int, name: str, data: bytes) -> None:
        """Store (or replace) a named blob for a trial, e.g. its weights as safetensors bytes."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StorageError(f"cannot store artifact {name!r} of trial {number}: expected "
                               f"bytes, found {type(data).__name__}")
        data = bytes(data)
        with self._write() as s:
            trial, _ = self._load(s, study, number)
            s.execute(delete(Artifact).where(Artifact.trial_id == trial.id,
                                             Artifact.name == name))
            s.add(Artifact(trial_id=trial.id, name=name, data=data, size=len(data),
                           created_at=utcnow()))

    def get_artifact(self, study: str, number: int, name: str) -> bytes | None:
        """The blob stored under ``name`` for a trial, or ``None``."""
        with self._read() as s:
            trial, _ = self._load(s, study, number)
            data = s.scalar(select(Artifact.data).where(Artifact.trial_id == trial.id,
                                                        Artifact.name == name))
            return None if data is None else bytes(data)

    def list_artifacts(self, study: str, number: int) -> list[str]:
        """Names of a trial's artifacts, sorted."""
        with self._read() as s:
            trial, _ = self._load(s, study, number)
            return list(s.scalars(select(Artifact.name).where(Artifact.trial_id == trial.id)
                                  .order_by(Artifact.name)))

    def delete_artifact(self, study: str, number: int, name: str) -> None:
        """Remove a trial's artifact; NotFoundError if there is none of that name."""
        with self._write() as s:
            trial, _ = self._load(s, study, number)
            gone = s.execute(delete(Artifact).where(Artifact.trial_id == trial.id,
                                                    Artifact.name == name)).rowcount
            if not gone:
                raise NotFoundError(f"no artifact {name!r} for trial {number} of study "
                                    f"{study!r} in {self._shown}")

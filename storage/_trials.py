"""Trial, learning-curve and artifact methods of :class:`storage.Storage`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from storage import _statements as sql
from storage._base import StorageBase, chunks, clean_json, row_record, to_state, trial_record
from storage.errors import ConflictError, NotFoundError, StorageError
from storage.models import Architecture, Artifact, CurvePoint, Repeat, Trial, utcnow
from storage.records import TrialRecord, TrialState

log = logging.getLogger(__name__)

_RETRIES = 20  # unique-constraint races on trial numbers are rare; each retry re-reads the max
_SORT_COLUMNS = {
    "number": Trial.number, "created_at": Trial.created_at, "started_at": Trial.started_at,
    "finished_at": Trial.finished_at, "duration_s": Trial.duration_s, "fidelity": Trial.fidelity,
    "state": Trial.state,
}
T, A, C = sql.T, sql.A, sql.C
_LIVE = (TrialState.COMPLETE.value, TrialState.RUNNING.value, TrialState.QUEUED.value)


class TrialsMixin(StorageBase):
    # -- creating and moving trials -------------------------------------------------------------
    def create_trial(self, study: str, *, arch_hash: str, arch_text: str,
                     arch_decisions: Sequence[Any], space: str, fidelity: float | None = None,
                     state: TrialState | str = TrialState.RUNNING, worker: str | None = None,
                     parent_numbers: Iterable[int] = (),
                     metrics: dict[str, Any] | None = None,
                     ask_index: int | None = None,
                     info: dict[str, Any] | None = None, error: str | None = None,
                     tell_index: int | None = None) -> TrialRecord:
        """Add a trial with the next free number; the architecture is stored once per hash.

        ``ask_index``: the searcher's ask that proposed it (``None`` for a trial queued by hand).
        ``info``: what the searcher said about the proposal (JSON data; stored as NULL when
        empty or ``None``). ``error`` and ``tell_index`` are for a trial created finished (one
        never trained, e.g. screened out by the pre-filter: one write, so no crash can leave it
        running).

        Safe with several writers on one database: the (study, number) pair is unique, and a
        writer that loses a race re-reads the highest number and tries again.
        """
        state = to_state(state)
        decisions = clean_json(list(arch_decisions), "arch_decisions")
        now = utcnow()
        values = {"hash": arch_hash, "space": space, "text": arch_text, "decisions": decisions,
                  "state": state.value, "fidelity": None if fidelity is None else float(fidelity),
                  "metrics": clean_json(dict(metrics or {}), "metrics"), "worker": worker,
                  "parent_numbers": [int(n) for n in parent_numbers], "now": now,
                  "started_at": now if state is not TrialState.QUEUED else None,
                  "finished_at": now if state.finished else None,
                  "ask_index": None if ask_index is None else int(ask_index),
                  "info": clean_json(dict(info), "info") if info else None,
                  "error": error, "tell_index": None if tell_index is None else int(tell_index)}
        for attempt in range(_RETRIES):
            try:
                row = self._insert_trial(study, values)
            except sa_exc.IntegrityError:
                row = None
            if row is not None:
                return TrialRecord(
                    id=row.id, study=study, number=row.number, state=state, arch_hash=arch_hash,
                    arch_text=arch_text, arch_decisions=decisions, space=space,
                    fidelity=values["fidelity"], metrics=values["metrics"], error=error,
                    worker=worker, parent_numbers=tuple(values["parent_numbers"]),
                    created_at=now, started_at=values["started_at"],
                    finished_at=values["finished_at"], duration_s=None,
                    ask_index=values["ask_index"], info=dict(values["info"] or {}),
                    tell_index=values["tell_index"])
            # lost a race, or the cached study id is stale (the study was deleted): look again
            self._forget_study(study)
            log.debug("trial number race in study %r (attempt %d); retrying", study, attempt)
        raise ConflictError(f"could not number a new trial in study {study!r} after {_RETRIES} "
                            f"attempts (too many concurrent writers on {self._shown})")

    def _insert_trial(self, study: str, values: dict[str, Any]) -> Any:
        """One attempt at create_trial: the new (id, number), or None to retry."""
        if self._pg:
            p = sql.params(**values, study_id=self._known_study_id(study))
            return self._pg_one(sql.pg_create_trial(), p)
        with self._connect(write=True) as c:  # BEGIN IMMEDIATE on SQLite: numbering is safe
            p = sql.params(**values, study_id=self._study_id(c, study))
            p["p_arch_id"] = (c.scalar(sql.arch_id(), p)
                              or c.scalar(sql.insert_arch(), p))
            row = c.execute(sql.insert_trial(), p).first()
            c.execute(sql.touch_study(), p)
            return row

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
                     worker: str | None = None,
                     tell_index: int | None = None) -> TrialRecord:
        """Record the outcome of a queued or running trial: complete, failed or pruned.

        ``metrics`` are merged into those already stored; ``curve`` (per-epoch dicts) is stored
        with it (a trial is finished once, and only finishing writes curves). ``tell_index``:
        the trial's place among its searcher's tells.
        """
        state = to_state(state)
        if not state.finished:
            raise ConflictError(f"cannot finish trial {number} of study {study!r} as "
                                f"{state.value!r}: expected complete, failed or pruned")
        new_metrics = clean_json(dict(metrics or {}), "metrics")
        points = None if curve is None else clean_json(list(curve), "curve")
        duration = None if duration_s is None else float(duration_s)
        now = utcnow()
        tell_index = None if tell_index is None else int(tell_index)
        if self._pg:
            params = sql.params(
                study_id=self._known_study_id(study), number=int(number), now=now,
                state=state.value, error=error, worker=worker or None, metrics=new_metrics,
                duration_s=duration, curve=points or [], tell_index=tell_index)
            row = self._pg_one(sql.pg_finish_trial(), params)
            if row is None:
                self._unfinishable(study, number)
            return row_record(row, study, curve=points)
        with self._connect(write=True) as c:
            study_id = self._study_id(c, study)
            row = c.execute(sql.trial_by_number(),
                            sql.params(study_id=study_id, number=int(number))).first()
            if row is None or TrialState(row.state).finished:
                self._unfinishable(study, number, c)
            if duration is None and row.started_at is not None:
                duration = (now - row.started_at).total_seconds()
            values = sql.params(id=row.id, study_id=study_id, now=now, state=state.value,
                                error=error, worker=worker or row.worker,
                                metrics={**(row.metrics or {}), **new_metrics},
                                duration_s=duration, tell_index=tell_index)
            c.execute(sql.finish_by_id(), values)
            if points:
                c.execute(insert(C), [{"trial_id": row.id, "seq": i, "values": p}
                                      for i, p in enumerate(points)])
            c.execute(sql.touch_study(), values)
            return replace(row_record(row, study, curve=points), state=state, error=error,
                           metrics=values["p_metrics"], finished_at=now, duration_s=duration,
                           worker=values["p_worker"], tell_index=tell_index)

    def _unfinishable(self, study: str, number: int, c: Any = None) -> None:
        """Raise why trial ``number`` cannot be finished: it is missing or already finished."""
        if c is None:
            with self._connect() as conn:
                return self._unfinishable(study, number, conn)
        study_id = self._study_id(c, study)
        found = c.scalar(select(T.c.state).where(T.c.study_id == study_id,
                                                 T.c.number == int(number)))
        if found is None:
            raise self._no_trial(c, study, study_id, number)
        raise ConflictError(f"cannot finish trial {number} of study {study!r}: it is "
                            f"already {found}")

    # -- the searcher's ask/tell log ----------------------------------------------------------
    def add_repeat(self, study: str, number: int, *, ask_index: int,
                   tell_index: int | None = None) -> None:
        """Log that ask ``ask_index`` proposed trial ``number``'s architecture again (nothing
        trained); ``tell_index``: where the searcher was told that trial's result again (``None``
        when it was not, e.g. the trial was still running)."""
        with self._write() as s:
            trial, _ = self._load(s, study, number)
            s.add(Repeat(study_id=trial.study_id, trial_id=trial.id, ask_index=int(ask_index),
                         tell_index=None if tell_index is None else int(tell_index)))

    def repeats(self, study: str) -> list[tuple[int, int, int | None]]:
        """The study's repeated proposals as ``(trial number, ask_index, tell_index)``, in ask
        order."""
        with self._read() as s:
            study_id = self._study_id(s, study)
            return [(r[0], r[1], r[2]) for r in s.execute(
                select(Trial.number, Repeat.ask_index, Repeat.tell_index)
                .join(Trial, Trial.id == Repeat.trial_id)
                .where(Repeat.study_id == study_id).order_by(Repeat.ask_index, Repeat.id))]

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
        now = utcnow()
        if self._pg:
            params = sql.params(study_id=self._known_study_id(study), now=now, worker=worker)
            row = self._pg_one(sql.pg_claim_queued(), params)
            return None if row is None else row_record(row, study)
        with self._connect(write=True) as c:
            study_id = self._study_id(c, study)
            for _ in range(_RETRIES):
                trial_id = c.scalar(
                    select(T.c.id).where(T.c.study_id == study_id, T.c.state == TrialState.QUEUED.value)
                    .order_by(T.c.number).limit(1).with_for_update(skip_locked=True))
                if trial_id is None:
                    return None
                claimed = c.execute(
                    update(T).where(T.c.id == trial_id, T.c.state == TrialState.QUEUED.value)
                    .values(state=TrialState.RUNNING.value, started_at=now, worker=worker)).rowcount
                if claimed == 1:
                    return row_record(c.execute(
                        select(T, *sql.ARCH_COLUMNS).join(A, A.c.id == T.c.architecture_id)
                        .where(T.c.id == trial_id)).one(), study)
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

    def find_trial(self, study: str, arch_hash: str, fidelity: float | None, *,
                   failed: bool = False) -> TrialRecord | None:
        """A complete (preferred), running or queued trial of this architecture at this
        fidelity; with ``failed``, else a failed one (a study never trains a failed
        architecture again; a hand-queued one may be)."""
        with self._connect() as c:
            p = sql.params(study_id=self._study_id(c, study), hash=arch_hash,
                           fidelity=None if fidelity is None else float(fidelity))
            row = c.execute(sql.find_live(fidelity is not None, failed), p).first()
            return None if row is None else row_record(row, study)

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
            return {ids[i]: by_id[i] for i in sorted(ids, key=lambda i: ids[i])}

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
            gone = s.execute(delete(Artifact).where(  # type: ignore[attr-defined]
                Artifact.trial_id == trial.id, Artifact.name == name)).rowcount
            if not gone:
                raise NotFoundError(f"no artifact {name!r} for trial {number} of study "
                                    f"{study!r} in {self._shown}")

"""Shared machinery of :class:`storage.Storage`: sessions, error translation, look-ups, records."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, exc, select
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session

from storage.engine import describe, mask
from storage.errors import NotFoundError
from storage.jsondata import clean_json  # noqa: F401  (re-exported for the mixins)
from storage.models import Architecture, Study, Trial
from storage.records import StudyRecord, StudyStatus, TrialRecord, TrialState

_NAMES_SHOWN = 10  # studies listed in a "no study named ..." message
# SQLSTATEs after which a single autocommit statement wrote nothing and may simply run again:
# deadlock detected, serialization failure.
_TRANSIENT = frozenset({"40P01", "40001"})
_TRANSIENT_RETRIES = 5


class StorageBase:
    """Sessions and helpers shared by the study, trial and artifact methods."""

    url: str
    _parsed: URL
    _engine: Engine
    _write_engine: Engine
    _read_engine: Engine
    _pg: bool  # PostgreSQL: single statements in autocommit

    @property
    def _shown(self) -> str:
        return mask(self.url)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A session for reading; on SQLite a deferred transaction, which never blocks writers."""
        try:
            with Session(self._read_engine, expire_on_commit=False) as session:
                yield session
        except exc.DBAPIError as err:
            raise describe(err, self.url) from None

    @contextmanager
    def _connect(self, write: bool = False) -> Iterator[Connection]:
        """A Core connection (cheaper than a Session, for the study loop's hot path).

        ``write``: one write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit.
        """
        engine = self._write_engine if write else self._read_engine
        try:
            with engine.connect() as conn:
                if write:
                    with conn.begin():
                        yield conn
                else:
                    yield conn
        except exc.IntegrityError:
            raise  # callers retry or turn it into a ConflictError
        except exc.DBAPIError as err:
            raise describe(err, self.url) from None

    def _pg_one(self, statement: Any, params: dict[str, Any]) -> Any:
        """Run one self-contained PostgreSQL statement in autocommit; its first row or None.

        A deadlock or serialization failure aborts the statement with nothing written, so it
        is retried (a few times, briefly backing off) rather than failing the search.
        """
        for attempt in range(_TRANSIENT_RETRIES):
            try:
                with self._read_engine.connect() as conn:  # autocommit on PostgreSQL
                    return conn.execute(statement, params).first()
            except exc.IntegrityError:
                raise  # callers retry or turn it into a ConflictError
            except exc.DBAPIError as err:
                code = getattr(err.orig, "sqlstate", None)
                if code not in _TRANSIENT or attempt == _TRANSIENT_RETRIES - 1:
                    raise describe(err, self.url) from None
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A session in one write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
        try:
            with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
                yield session
        except exc.IntegrityError:
            raise  # callers retry or turn it into a ConflictError
        except exc.DBAPIError as err:
            raise describe(err, self.url) from None

    # -- look-ups ---------------------------------------------------------------------------
    def _study_id(self, session: Session | Connection, name: str) -> int:
        # Study ids never change while the study exists: cache them, saving a round trip on
        # every trial read/write (delete_study drops the entry).
        ids = self.__dict__.setdefault("_ids", {})
        if name in ids:
            return ids[name]
        study_id = session.scalar(select(Study.id).where(Study.name == name))
        if study_id is None:
            raise self._no_study(session, name)
        ids[name] = study_id
        return study_id

    def _known_study_id(self, name: str) -> int:
        """The study's id from the cache, or looked up (NotFoundError if there is none)."""
        known = self.__dict__.get("_ids", {}).get(name)
        if known is not None:
            return known
        with self._connect() as conn:
            return self._study_id(conn, name)

    def _forget_study(self, name: str) -> None:
        self.__dict__.setdefault("_ids", {}).pop(name, None)

    def _no_study(self, session: Session | Connection, name: str) -> NotFoundError:
        names = list(session.scalars(select(Study.name).order_by(Study.name)
                                     .limit(_NAMES_SHOWN + 1)))
        listed = ", ".join(names[:_NAMES_SHOWN]) or "(none)"
        if len(names) > _NAMES_SHOWN:
            listed += ", ..."
        return NotFoundError(f"no study named {name!r} in {self._shown}; studies: {listed}")

    def _no_trial(self, session: Session | Connection, study: str, study_id: int, number: int) -> NotFoundError:
        from sqlalchemy import func

        count = session.scalar(select(func.count()).where(Trial.study_id == study_id)) or 0
        have = f"trials 0-{count - 1}" if count else "no trials yet"
        return NotFoundError(f"no trial {number} in study {study!r} ({have}) in {self._shown}")


def study_record(row: Study) -> StudyRecord:
    return StudyRecord(
        id=row.id, name=row.name, space=row.space, task=row.task, searcher=row.searcher,
        objectives=list(row.objectives or []), config=dict(row.config or {}), seed=row.seed,
        status=StudyStatus(row.status), created_at=row.created_at, updated_at=row.updated_at)


def trial_record(t: Trial, a: Architecture, study: str,
                 curve: list[dict[str, Any]] | None = None) -> TrialRecord:
    return TrialRecord(
        id=t.id, study=study, number=t.number, state=TrialState(t.state), arch_hash=a.hash,
        arch_text=a.text, arch_decisions=list(a.decisions or []), space=a.space,
        fidelity=t.fidelity, metrics=dict(t.metrics or {}), error=t.error, worker=t.worker,
        parent_numbers=tuple(t.parent_numbers or ()), created_at=t.created_at,
        started_at=t.started_at, finished_at=t.finished_at, duration_s=t.duration_s, curve=curve,
        ask_index=t.ask_index, tell_index=t.tell_index, info=dict(t.info or {}))


def row_record(row: Any, study: str, curve: list[dict[str, Any]] | None = None) -> TrialRecord:
    """A record from a Core row holding a trial's columns and its architecture's, the latter
    labelled ``arch_hash``, ``arch_text``, ``arch_decisions`` and ``arch_space``."""
    m = row._mapping
    return TrialRecord(
        id=m["id"], study=study, number=m["number"], state=TrialState(m["state"]),
        arch_hash=m["arch_hash"], arch_text=m["arch_text"],
        arch_decisions=list(m["arch_decisions"] or []), space=m["arch_space"],
        fidelity=m["fidelity"], metrics=dict(m["metrics"] or {}), error=m["error"],
        worker=m["worker"], parent_numbers=tuple(m["parent_numbers"] or ()),
        created_at=m["created_at"], started_at=m["started_at"], finished_at=m["finished_at"],
        duration_s=m["duration_s"], curve=curve, ask_index=m["ask_index"],
        tell_index=m["tell_index"], info=dict(m["info"] or {}))


def to_state(state: TrialState | str) -> TrialState:
    try:
        return TrialState(state)
    except ValueError:
        from storage.errors import ConflictError

        raise ConflictError(f"invalid trial state {state!r}: expected one of "
                            f"{', '.join(s.value for s in TrialState)}") from None


def chunks(items: Iterable[int], size: int = 500) -> Iterator[list[int]]:
    """Split a long IN (...) list: SQLite caps the number of bound parameters."""
    batch: list[int] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

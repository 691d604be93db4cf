"""The study loop's hot statements, built once and run with parameters.

A search reads and writes a few times per trial: claim a queued trial, look for an existing
trial of the proposed architecture, create a trial, finish it. Building a SQLAlchemy statement
costs more Python time than running it, so these are built once (``functools.cache``); a built
statement hits SQLAlchemy's compiled cache and, on PostgreSQL after a few runs, psycopg's
server-side prepared statements.

Parameters are named ``p_<name>`` (see :func:`params`): a parameter named like a column would be
taken by SQLAlchemy as a value to SET in the DML parts.

PostgreSQL (``pg_*``): over a network every statement is a round trip, and a transaction adds
two more (BEGIN, COMMIT). Each write there is therefore a single statement — data-modifying
CTEs — run in autocommit: one round trip, atomic by itself. Other databases run the same steps
as several statements in one transaction (SQLite is in-process: statements are cheap).

Concurrency: a statement sees one snapshot, so two writers numbering a trial at once can pick
the same number; the unique (study, number) constraint rejects the second, and the caller
retries. A concurrent insert of the same architecture hash makes the statement insert no trial
(no architecture id); the caller retries, and the retry finds the architecture.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    Table,
    Text,
    bindparam,
    case,
    cast,
    extract,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from storage.models import Architecture, CurvePoint, Study, Trial, UTCDateTime
from storage.records import TrialState

# the Core tables behind the ORM classes (typed as Table: statements insert into and update them)
T: Table = Trial.__table__  # type: ignore[assignment]
A: Table = Architecture.__table__  # type: ignore[assignment]
S: Table = Study.__table__  # type: ignore[assignment]
C: Table = CurvePoint.__table__  # type: ignore[assignment]
# the architecture columns returned beside a trial's, labelled as row_record reads them
ARCH_COLUMNS = (A.c.hash.label("arch_hash"), A.c.text.label("arch_text"),
                A.c.decisions.label("arch_decisions"), A.c.space.label("arch_space"))



def params(**values: Any) -> dict[str, Any]:
    """The execution parameters of these statements: ``p_`` + each name."""
    return {f"p_{k}": v for k, v in values.items()}


def _param(name: str, kind: Any) -> Any:
    # A bare parameter in a SELECT list has no type for the server to infer; cast it.
    return cast(bindparam(f"p_{name}", type_=kind), kind)


@cache
def pg_create_trial() -> Any:
    """INSERT a trial numbered max+1, upserting its architecture and touching the study.

    Parameters (see :func:`params`): study_id, now, hash, space, text, decisions, and the
    trial's state, fidelity, metrics, worker, parent_numbers, started_at, finished_at,
    ask_index, info, error, tell_index. Returns the new ``id`` and
    ``number``; no row when the study is gone or a concurrent writer inserted the
    architecture first.
    """
    touched = (update(S).where(S.c.id == bindparam("p_study_id"))
               .values(updated_at=bindparam("p_now")).returning(S.c.id).cte("touched"))
    new_arch = (pg_insert(A).values(hash=bindparam("p_hash"), space=bindparam("p_space"),
                                    text=bindparam("p_text"), decisions=bindparam("p_decisions"),
                                    created_at=bindparam("p_now"))
                .on_conflict_do_nothing(index_elements=[A.c.hash])
                .returning(A.c.id).cte("new_arch"))
    prev = T.alias("prev")
    number = (select(func.coalesce(func.max(prev.c.number), -1) + 1)
              .where(prev.c.study_id == touched.c.id).scalar_subquery())
    arch_id = func.coalesce(select(new_arch.c.id).scalar_subquery(),
                            select(A.c.id).where(A.c.hash == bindparam("p_hash")).scalar_subquery())
    columns = {"state": String(16), "fidelity": Float(), "metrics": JSONB(), "worker": String(200),
               "parent_numbers": JSONB(), "created_at": UTCDateTime(),
               "started_at": UTCDateTime(), "finished_at": UTCDateTime(),
               "ask_index": Integer(), "info": JSONB(none_as_null=True), "error": Text(),
               "tell_index": Integer()}
    row = select(touched.c.id, number, arch_id,
                 *(_param("now" if k == "created_at" else k, kind) for k, kind in columns.items()))
    return (insert(T).from_select(["study_id", "number", "architecture_id", *columns],
                                  row.where(arch_id.is_not(None)))
            .returning(T.c.id, T.c.number))


@cache
def pg_finish_trial() -> Any:
    """Touch the study, then UPDATE a queued or running trial to its outcome, merge its
    metrics and add its curve; returns the finished trial with its architecture (no row when
    the trial does not exist or is already finished).

    Parameters (see :func:`params`): study_id, number, now, state, error, tell_index, worker
    (``None`` keeps the stored one), metrics (merged into the stored ones), duration_s
    (``None``: since ``started_at``) and curve (a list, possibly empty).
    """
    elapsed = extract("epoch", cast(bindparam("p_now", type_=UTCDateTime), UTCDateTime)
                      - T.c.started_at)
    # Lock order: the study row, then the trial row, as in pg_create_trial. Locking the trial
    # first deadlocked against a create whose stale snapshot picked this trial's number: the
    # create (holding the study) waited on this update's index entry, this on the study.
    touched = (update(S).where(S.c.id == bindparam("p_study_id"))
               .values(updated_at=bindparam("p_now")).returning(S.c.id).cte("touched"))
    done = (update(T)
            .where(T.c.study_id == select(touched.c.id).scalar_subquery(),
                   T.c.number == bindparam("p_number"),
                   T.c.state.in_((TrialState.QUEUED.value, TrialState.RUNNING.value)))
            .values(state=bindparam("p_state"), error=bindparam("p_error"),
                    tell_index=bindparam("p_tell_index"),
                    worker=func.coalesce(_param("worker", String(200)), T.c.worker),
                    finished_at=bindparam("p_now"),
                    duration_s=func.coalesce(_param("duration_s", Float()), elapsed),
                    metrics=T.c.metrics.op("||", return_type=JSONB)(_param("metrics", JSONB())))
            .returning(*T.c).cte("done"))
    points = (func.jsonb_array_elements(_param("curve", JSONB()))
              .table_valued("value", with_ordinality="ord").render_derived())
    curve = insert(C).from_select(
        ["trial_id", "seq", "values"],
        select(done.c.id, cast(points.c.ord, Integer) - 1, points.c.value)
        .select_from(done).join(points, true())).cte("curve")
    return (select(done, *ARCH_COLUMNS).join(A, A.c.id == done.c.architecture_id)
            .add_cte(curve))


@cache
def pg_claim_queued() -> Any:
    """Claim the oldest queued trial (it becomes running), skipping rows another transaction
    holds; returns it with its architecture, or no row when the queue is empty.

    Parameters (see :func:`params`): study_id, now, worker.
    """
    queued = T.alias("queued")
    oldest = (select(queued.c.id)
              .where(queued.c.study_id == bindparam("p_study_id"), queued.c.state == TrialState.QUEUED.value)
              .order_by(queued.c.number).limit(1).with_for_update(skip_locked=True)
              .scalar_subquery())
    claimed = (update(T).where(T.c.id == oldest, T.c.state == TrialState.QUEUED.value)
               .values(state=TrialState.RUNNING.value, started_at=bindparam("p_now"),
                       worker=bindparam("p_worker"))
               .returning(*T.c).cte("claimed"))
    return select(claimed, *ARCH_COLUMNS).join(A, A.c.id == claimed.c.architecture_id)


# -- generic forms (several statements in one transaction) ----------------------------------
def _next_number() -> Any:
    prev = T.alias("prev")
    return (select(func.coalesce(func.max(prev.c.number), -1) + 1)
            .where(prev.c.study_id == bindparam("p_study_id")).scalar_subquery())


@cache
def arch_id() -> Any:
    """The id of the architecture with hash p_hash."""
    return select(A.c.id).where(A.c.hash == bindparam("p_hash"))


@cache
def insert_arch() -> Any:
    """Add an architecture (p_hash, p_space, p_text, p_decisions, p_now); returns its id."""
    return (insert(A).values(hash=bindparam("p_hash"), space=bindparam("p_space"),
                             text=bindparam("p_text"), decisions=bindparam("p_decisions"),
                             created_at=bindparam("p_now"))
            .returning(A.c.id))


@cache
def insert_trial() -> Any:
    """Add trial number max+1 of p_study_id for architecture p_arch_id; returns id, number."""
    values: dict[str, Any] = {k: bindparam(f"p_{k}") for k in (
        "state", "fidelity", "metrics", "worker", "parent_numbers", "started_at",
        "finished_at", "ask_index", "info", "error", "tell_index")}
    return (insert(T).values(study_id=bindparam("p_study_id"), number=_next_number(),
                             architecture_id=bindparam("p_arch_id"),
                             created_at=bindparam("p_now"), **values)
            .returning(T.c.id, T.c.number))


@cache
def touch_study() -> Any:
    """Set p_study_id's updated_at to p_now (what the UI watches for changes)."""
    return update(S).where(S.c.id == bindparam("p_study_id")).values(
        updated_at=bindparam("p_now"))


@cache
def trial_by_number() -> Any:
    """Trial p_number of p_study_id with its architecture."""
    return (select(T, *ARCH_COLUMNS).join(A, A.c.id == T.c.architecture_id)
            .where(T.c.study_id == bindparam("p_study_id"),
                   T.c.number == bindparam("p_number")))


@cache
def finish_by_id() -> Any:
    """Write the outcome of trial p_id (state, error, worker, metrics, finished_at,
    duration_s, tell_index)."""
    return update(T).where(T.c.id == bindparam("p_id")).values(
        state=bindparam("p_state"), error=bindparam("p_error"), worker=bindparam("p_worker"),
        metrics=bindparam("p_metrics"), finished_at=bindparam("p_now"),
        duration_s=bindparam("p_duration_s"), tell_index=bindparam("p_tell_index"))


@cache
def find_live(with_fidelity: bool, with_failed: bool = False) -> Any:
    """A complete (preferred), running or queued trial of p_study_id for architecture p_hash
    at fidelity p_fidelity (or none, when ``with_fidelity`` is false); ``with_failed``: a
    failed one too, after those."""
    fidelity = (T.c.fidelity == bindparam("p_fidelity")) if with_fidelity else (
        T.c.fidelity.is_(None))
    states = [TrialState.COMPLETE, TrialState.RUNNING, TrialState.QUEUED]
    states += [TrialState.FAILED] if with_failed else []
    rank = case((T.c.state == TrialState.COMPLETE.value, 0),
                (T.c.state == TrialState.FAILED.value, 2), else_=1)
    return (select(T, *ARCH_COLUMNS).join(A, A.c.id == T.c.architecture_id)
            .where(T.c.study_id == bindparam("p_study_id"), A.c.hash == bindparam("p_hash"),
                   T.c.state.in_([s.value for s in states]), fidelity)
            .order_by(rank, T.c.number).limit(1))

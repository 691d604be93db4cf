"""PostgreSQL forms of the study loop's hot writes, one statement each.

A search writes a few times per trial: claim a queued trial, create a trial, finish it. Over a
network every statement is a round trip, and a transaction adds two more (BEGIN, COMMIT). Each
write here is therefore a single statement — data-modifying CTEs — run in autocommit: one round
trip, atomic by itself. The generic path in :mod:`storage._trials` runs the same steps as several
statements in one transaction (on SQLite, which is in-process, statements are cheap).

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
    bindparam,
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

T, A, S, C = Trial.__table__, Architecture.__table__, Study.__table__, CurvePoint.__table__
# the architecture columns returned beside a trial's, labelled as row_record reads them
ARCH_COLUMNS = (A.c.hash.label("arch_hash"), A.c.text.label("arch_text"),
                A.c.decisions.label("arch_decisions"), A.c.space.label("arch_space"))

# The statements are built once and run with parameters: building a statement with CTEs costs
# more Python time than the round trip it saves, while a built one hits SQLAlchemy's compiled
# cache and, after a few runs, psycopg's server-side prepared statements. Parameters are named
# p_<name> (see params()): a parameter named like a column would be taken by SQLAlchemy as a
# value to SET in the DML parts.


def params(**values: Any) -> dict[str, Any]:
    """The execution parameters of these statements: ``p_`` + each name."""
    return {f"p_{k}": v for k, v in values.items()}


def _param(name: str, kind: Any) -> Any:
    # A bare parameter in a SELECT list has no type for the server to infer; cast it.
    return cast(bindparam(f"p_{name}", type_=kind), kind)


@cache
def create_trial() -> Any:
    """INSERT a trial numbered max+1, upserting its architecture and touching the study.

    Parameters (see :func:`params`): study_id, now, hash, space, text, decisions, and the trial's state, fidelity,
    metrics, worker, parent_numbers, started_at, finished_at. Returns the new ``id`` and
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
               "started_at": UTCDateTime(), "finished_at": UTCDateTime()}
    row = select(touched.c.id, number, arch_id,
                 *(_param("now" if k == "created_at" else k, kind) for k, kind in columns.items()))
    return (insert(T).from_select(["study_id", "number", "architecture_id", *columns],
                                  row.where(arch_id.is_not(None)))
            .returning(T.c.id, T.c.number))


@cache
def finish_trial() -> Any:
    """UPDATE a queued or running trial to its outcome, merge its metrics, add its curve and
    touch the study; returns the finished trial with its architecture (no row when the trial
    does not exist or is already finished).

    Parameters (see :func:`params`): study_id, number, now, state, error, worker (``None`` keeps the stored one),
    metrics (merged into the stored ones), duration_s (``None``: since ``started_at``) and
    curve (a list, possibly empty).
    """
    elapsed = extract("epoch", cast(bindparam("p_now", type_=UTCDateTime), UTCDateTime)
                      - T.c.started_at)
    done = (update(T)
            .where(T.c.study_id == bindparam("p_study_id"), T.c.number == bindparam("p_number"),
                   T.c.state.in_(("queued", "running")))
            .values(state=bindparam("p_state"), error=bindparam("p_error"),
                    worker=func.coalesce(_param("worker", String(200)), T.c.worker),
                    finished_at=bindparam("p_now"),
                    duration_s=func.coalesce(_param("duration_s", Float()), elapsed),
                    metrics=T.c.metrics.op("||", return_type=JSONB)(_param("metrics", JSONB())))
            .returning(*T.c).cte("done"))
    touched = (update(S).where(S.c.id.in_(select(done.c.study_id)))
               .values(updated_at=bindparam("p_now")).cte("touched"))
    points = (func.jsonb_array_elements(_param("curve", JSONB()))
              .table_valued("value", with_ordinality="ord").render_derived())
    curve = insert(C).from_select(
        ["trial_id", "seq", "values"],
        select(done.c.id, cast(points.c.ord, Integer) - 1, points.c.value)
        .select_from(done).join(points, true())).cte("curve")
    return (select(done, *ARCH_COLUMNS).join(A, A.c.id == done.c.architecture_id)
            .add_cte(touched, curve))


@cache
def claim_queued() -> Any:
    """Claim the oldest queued trial (it becomes running), skipping rows another transaction
    holds; returns it with its architecture, or no row when the queue is empty.

    Parameters (see :func:`params`): study_id, now, worker.
    """
    queued = T.alias("queued")
    oldest = (select(queued.c.id)
              .where(queued.c.study_id == bindparam("p_study_id"), queued.c.state == "queued")
              .order_by(queued.c.number).limit(1).with_for_update(skip_locked=True)
              .scalar_subquery())
    claimed = (update(T).where(T.c.id == oldest, T.c.state == "queued")
               .values(state="running", started_at=bindparam("p_now"),
                       worker=bindparam("p_worker"))
               .returning(*T.c).cte("claimed"))
    return select(claimed, *ARCH_COLUMNS).join(A, A.c.id == claimed.c.architecture_id)

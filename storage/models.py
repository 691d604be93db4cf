"""SQLAlchemy ORM models. The schema itself is created by the alembic migrations in
``storage/migrations``; these classes must match the head revision (a test checks this).

Tables: ``studies``; ``architectures`` (deduplicated by content hash); ``trials`` (one evaluation
of an architecture at a fidelity); ``curve_points`` (one row per learning-curve point);
``artifacts`` (named blobs per trial, e.g. weights); ``leases`` (the live driver of a study).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on PostgreSQL (indexable, compact); plain JSON (text) elsewhere.
JSONType = JSON().with_variant(postgresql.JSONB(), "postgresql")
# the same, for a nullable column: Python None is stored as SQL NULL (not the JSON 'null')
NullableJSON = JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True),
                                                    "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timestamps stored in UTC and always returned timezone-aware.

    SQLite has no time zones: it would hand back naive values, so the zone is re-attached here.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    space: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(200))
    searcher: Mapped[str] = mapped_column(String(200))
    objectives: Mapped[Any] = mapped_column(JSONType)
    config: Mapped[Any] = mapped_column(JSONType)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Architecture(Base):
    __tablename__ = "architectures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(128), unique=True)
    space: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    decisions: Mapped[Any] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Trial(Base):
    __tablename__ = "trials"
    __table_args__ = (
        UniqueConstraint("study_id", "number", name="uq_trials_study_number"),
        Index("ix_trials_study_state", "study_id", "state", "number"),  # claim order
        Index("ix_trials_study_arch", "study_id", "architecture_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    architecture_id: Mapped[int] = mapped_column(ForeignKey("architectures.id"))
    fidelity: Mapped[float | None] = mapped_column(Float, nullable=True)
    metrics: Mapped[Any] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    parent_numbers: Mapped[Any] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    # the searcher's ask that proposed it (None: queued by hand) and its place among the
    # searcher's tells (None: not told yet); a resume replays tells in this order
    ask_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    tell_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # what the searcher said about its proposal (Proposal.info, revision 0005); NULL: nothing
    info: Mapped[Any] = mapped_column(NullableJSON, nullable=True)


class Repeat(Base):
    """A proposal that repeated an existing trial (same architecture and fidelity): nothing was
    trained; when that trial was complete the searcher was told its result again."""

    __tablename__ = "repeats"
    __table_args__ = (Index("ix_repeats_study", "study_id", "ask_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    ask_index: Mapped[int] = mapped_column(Integer)
    tell_index: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CurvePoint(Base):
    __tablename__ = "curve_points"
    __table_args__ = (UniqueConstraint("trial_id", "seq", name="uq_curve_points_trial_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # position in the curve, kept as given
    values: Mapped[Any] = mapped_column(JSONType)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("trial_id", "name", name="uq_artifacts_trial_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Lease(Base):
    """The one live driver of a study: taken atomically when a driver starts, renewed by its
    heartbeat, released when it ends; a lease whose heartbeat is older than the stale interval
    may be taken over (its driver died)."""

    __tablename__ = "leases"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"),
                                          primary_key=True)
    driver_id: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Note(Base):
    """Free text on a study (``trial_number`` NULL) or on one of its trials (revision 0003)."""

    __tablename__ = "notes"
    __table_args__ = (Index("ix_notes_study", "study_id", "trial_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    trial_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

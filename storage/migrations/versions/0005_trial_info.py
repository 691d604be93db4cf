"""Searcher info per trial: what the searcher said about its proposal (``Proposal.info``).

A nullable JSON column on trials (NULL for trials written before it, and for trials queued by
hand); e.g. the surrogate searcher's rank quality, a multi-fidelity searcher's rung.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table's columns in place (alembic copies it)
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("info", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("info")

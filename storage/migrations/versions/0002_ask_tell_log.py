"""The searcher's ask/tell log: each trial's ask and tell positions, and repeated proposals.

A resumed study replays its searcher's tells in the order they happened, repeats included,
and continues asking where the interrupted driver stopped.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot ALTER a table's columns in place (alembic copies it)
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("ask_index", sa.Integer, nullable=True))
        batch.add_column(sa.Column("tell_index", sa.Integer, nullable=True))
    op.create_table(
        "repeats",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("studies.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("trial_id", sa.Integer, sa.ForeignKey("trials.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("ask_index", sa.Integer, nullable=False),
        sa.Column("tell_index", sa.Integer, nullable=True),
    )
    op.create_index("ix_repeats_study", "repeats", ["study_id", "ask_index"])


def downgrade() -> None:
    op.drop_table("repeats")
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("tell_index")
        batch.drop_column("ask_index")

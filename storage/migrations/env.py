"""Alembic environment for the storage schema.

:func:`storage.engine.upgrade` passes an open connection (already inside a locked write
transaction) in ``config.attributes["connection"]``. Run from the ``alembic`` command line instead
(``alembic -c storage/migrations/alembic.ini -x url=sqlite:///x.db revision --autogenerate``),
it connects to the URL given with ``-x url=...``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from storage.models import Base

target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite supports transactional DDL; alembic leaves it off by default. With it on, a crash
        # half-way through a migration leaves the old schema, and a concurrent opener waits.
        transactional_ddl=True,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER via table copy on SQLite
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic: expected -x url=... or sqlalchemy.url, found neither")
    engine = create_engine(url)
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


# Only run inside alembic: pytest's doctest collection imports this file too.
if hasattr(context, "config"):
    if context.is_offline_mode():
        raise SystemExit("offline (--sql) migrations are not supported; use a database")
    run_migrations_online()

"""Engines, connections and schema migrations.

* URLs: any SQLAlchemy URL; ``postgresql://`` (and ``postgres://``) use the psycopg 3 driver.
* SQLite: WAL journal (readers never block the writer), a 30 s busy timeout, foreign keys on, and
  ``BEGIN IMMEDIATE`` for write transactions, so two processes that read-then-write (trial
  numbering, claiming) queue up on the write lock instead of failing with "database is locked".
* Migrations: alembic ``upgrade head`` inside one locked write transaction, so concurrent openers
  of a fresh database serialise and the second finds the schema done.
* Errors: driver exceptions become one-line :class:`StorageError` messages with the password
  masked.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from storage.errors import NotFoundError, StorageError, StorageUnavailable

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
# Arbitrary constant key for pg_advisory_xact_lock: serialises concurrent schema upgrades.
_PG_MIGRATION_LOCK = 0x6E61_7377_6231  # "naswb1"
WRITE = {"storage_write": True}  # execution option marking a write transaction


def default_url() -> str:
    """The database URL used when none is given: ``$WORKBENCH_STORAGE`` or ``./workbench.db``.

    >>> import os
    >>> os.environ["WORKBENCH_STORAGE"] = "sqlite:////tmp/x.db"
    >>> default_url()
    'sqlite:////tmp/x.db'
    >>> del os.environ["WORKBENCH_STORAGE"]
    >>> default_url().endswith("/workbench.db")
    True
    """
    env = os.environ.get("WORKBENCH_STORAGE", "").strip()
    if env:
        return env
    return f"sqlite:///{Path.cwd() / 'workbench.db'}"


def parse_url(url: str) -> URL:
    """Parse and normalise a database URL (psycopg 3 for PostgreSQL).

    >>> parse_url("postgresql://u:secret@h/db").render_as_string(hide_password=True)
    'postgresql+psycopg://u:***@h/db'
    >>> parse_url("nonsense")
    Traceback (most recent call last):
    ...
    storage.errors.StorageError: invalid database URL 'nonsense': expected e.g. sqlite:///path/to/file.db or postgresql://user@host:5432/db
    """
    if not isinstance(url, str) or not url.strip():
        raise StorageError(f"invalid database URL {url!r}: expected e.g. sqlite:///path/to/file.db "
                           "or postgresql://user@host:5432/db")
    try:
        parsed = make_url(url.strip())
    except exc.ArgumentError:
        raise StorageError(
            f"invalid database URL {mask(url)!r}: expected e.g. sqlite:///path/to/file.db or "
            "postgresql://user@host:5432/db") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def mask(url: str | URL) -> str:
    """The URL with its password replaced by ``***``, for messages and logs.

    >>> mask("postgresql://me:pw@db:5432/nas")
    'postgresql://me:***@db:5432/nas'
    """
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except exc.ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def require_existing(url: URL) -> None:
    """For commands that only read: a SQLite file that does not exist is an error (a typo must
    not create directories and an empty database). Other backends are checked on connect.

    >>> require_existing(parse_url("sqlite:////nonexistent/dir/wb.db"))
    Traceback (most recent call last):
    ...
    storage.errors.NotFoundError: no database at /nonexistent/dir/wb.db: expected an existing SQLite file (a search creates one)
    """
    if url.get_backend_name() != "sqlite":
        return
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        return
    path = Path(database.removeprefix("file:").split("?", 1)[0]).expanduser()
    if not path.is_file():
        raise NotFoundError(f"no database at {path}: expected an existing SQLite file (a search "
                            f"creates one)")


def make_engine(url: URL) -> Engine:
    """Create the engine for ``url`` with the per-dialect settings described in the module doc."""
    shown = mask(url)
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        memory = database in ("", ":memory:") or database.startswith("file::memory:")
        if memory:
            # One shared connection, or every connection would see its own empty database.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            _make_parent_dirs(database, shown)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_S}
    elif url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        # Without it an unroutable host hangs for minutes before the user sees anything.
        kwargs["connect_args"] = {"connect_timeout": 10}
    try:
        engine = create_engine(url, **kwargs)
    except exc.NoSuchModuleError:
        raise StorageError(
            f"unknown database dialect {url.drivername!r} in {shown}: expected sqlite:///... or "
            "postgresql://... (or another SQLAlchemy dialect that is installed)") from None
    except ModuleNotFoundError as err:
        raise StorageError(f"the driver for {shown} is not installed (missing module "
                           f"{err.name!r}); for PostgreSQL install psycopg[binary]") from None
    except exc.ArgumentError as err:
        raise StorageError(f"invalid database URL {shown}: {_first_line(err)}") from None
    if is_sqlite(engine):
        _configure_sqlite(engine)
    else:
        _ping_idle_connections(engine)
    if engine.dialect.name == "postgresql":
        _configure_postgres(engine)
    _forget_connections_after_fork(engine)
    return engine


PING_AFTER_IDLE_S = 2.0


def _configure_postgres(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # psycopg prepares a statement on the server after a few runs, and PostgreSQL then
        # settles on a generic plan, costed with the table sizes of that moment. A search
        # starts on empty tables: a plan that scans a whole study's trials is cheapest then,
        # and stays in use while the study grows (finishing a trial went from 0.6 ms to 15 ms
        # at 10,000 trials). Custom plans are made for each run with the actual values and
        # table size; planning costs a little, the statements stay prepared.
        dbapi_conn.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use when it has sat idle, so that a database restart
    (or a dropped idle connection) costs a reconnect instead of a failed operation.

    Unlike ``pool_pre_ping``, a connection handed back less than :data:`PING_AFTER_IDLE_S`
    ago is not pinged: a running search reuses its connection every few milliseconds, and a
    ping is a network round trip each time.
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return  # fresh, or in steady use
        try:
            ok = engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as err:
            raise exc.DisconnectionError(f"stale pooled connection: {_first_line(err)}") from err
        if ok is False:
            raise exc.DisconnectionError("stale pooled connection")


def _forget_connections_after_fork(engine: Engine) -> None:
    # A forked child (a process-pool worker) must not reuse the parent's pooled connections;
    # dispose(close=False) drops them in the child without closing the parent's sockets/files.
    ref = weakref.ref(engine)

    def after_fork() -> None:
        alive = ref()
        if alive is not None:
            alive.dispose(close=False)

    os.register_at_fork(after_in_child=after_fork)


def _make_parent_dirs(database: str, shown: str) -> None:
    path = Path(database.removeprefix("file:").split("?", 1)[0]).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StorageUnavailable(
            f"cannot create the directory {str(path.parent)!r} for {shown}: "
            f"{err.strerror or err}") from None


def _set_wal(cur: Any) -> None:
    """Switch to WAL. While another process is creating the same fresh file, SQLite may answer
    "database is locked" at once instead of waiting out the busy timeout: retry for a while."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control from the sqlite3 module so that we can emit BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cur.execute("PRAGMA foreign_keys = ON")
        _set_wal(cur)
        cur.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode, much faster
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes cannot wait for the lock (SQLite
        # returns SQLITE_BUSY at once to avoid deadlock); IMMEDIATE takes it up front and waits.
        immediate = conn.get_execution_options().get("storage_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def describe(err: BaseException, url: URL | str) -> StorageError:
    """Turn a driver/SQLAlchemy exception into a one-line :class:`StorageError`.

    Failures to reach the database say "cannot connect to <url>"; other operational failures
    (a lock held too long, a full disk) are still :class:`StorageUnavailable`, worded as such.
    """
    shown = mask(url)
    if isinstance(err, StorageError):
        return err
    reason = _reason(err)
    if isinstance(err, OSError) or (isinstance(err, exc.DBAPIError)
                                    and err.connection_invalidated):
        return StorageUnavailable(f"cannot connect to {shown}: {reason}")
    if isinstance(err, (exc.OperationalError, exc.InterfaceError)):
        if any(word in str(getattr(err, "orig", err)).lower() for word in _CONNECT_WORDS):
            return StorageUnavailable(f"cannot connect to {shown}: {reason}")
        return StorageUnavailable(f"database unavailable at {shown}: {reason}")
    return StorageError(f"database error on {shown}: {reason}")


_CONNECT_WORDS = ("connect", "connection", "unable to open", "host", "timeout expired",
                  "authentication", "password", "does not exist", "terminating")


def _reason(err: BaseException) -> str:
    orig = getattr(err, "orig", None) or err
    message = str(orig).strip()
    lowered = message.lower()
    for needle, short in (
        ("connection refused", "connection refused"),
        ("could not translate host name", "unknown host"),
        ("name or service not known", "unknown host"),
        ("timeout expired", "connection timed out"),
        ("password authentication failed", "password authentication failed"),
        ("no password supplied", "a password is required"),
        ("does not exist", None),
    ):
        if needle in lowered:
            if short is not None:
                return short
            break
    return _first_line(message)


def _first_line(message: Any) -> str:
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    line = lines[0] if lines else type(message).__name__
    # psycopg prefixes its messages; the rest is what the user needs.
    line = re.sub(r"^connection failed:\s*", "", line)
    line = re.sub(r"^connection to server at [^,]+, port \d+ failed:\s*", "", line)
    line = re.sub(r"^(FATAL|ERROR):\s*", "", line)
    return line.rstrip(".")


def upgrade(engine: Engine) -> str:
    """Bring the schema to the alembic head; return the head revision. Cheap when up to date.

    >>> e = make_engine(parse_url("sqlite://"))
    >>> upgrade(e) == head_revision() == current_revision(e)
    True
    """
    from alembic.runtime.migration import MigrationContext

    head = head_revision()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
    if current == head:
        return head  # the common case: no write lock taken, so the UI can open during a search
    _check_known(current, engine)
    cfg = _alembic_config()
    with engine.connect().execution_options(**WRITE) as conn:
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            current = MigrationContext.configure(conn).get_current_revision()
            if current != head:  # another process may have finished while we waited
                _check_known(current, engine)
                log.info("upgrading schema of %s from %s to %s", mask(engine.url), current, head)
                cfg.attributes["connection"] = conn
                from alembic import command

                command.upgrade(cfg, "head")
    return head


def _check_known(current: str | None, engine: Engine) -> None:
    if current is None:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config())
    try:
        script.get_revision(current)
    except Exception:  # alembic raises several types for an unknown revision
        raise StorageError(
            f"the database {mask(engine.url)} has schema revision {current!r}, which this version "
            f"of the workbench does not know (newest known: {head_revision()!r}); upgrade the "
            "workbench") from None


def _alembic_config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest schema revision this code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise StorageError("the schema migrations have no head revision (a broken install)")
    return head


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()

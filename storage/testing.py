"""Throwaway PostgreSQL servers for tests and benchmarks.

>>> from storage.testing import find_postgres_bin
>>> find_postgres_bin() is None or (find_postgres_bin() / "initdb").exists()
True

``start_postgres(base_dir)`` runs ``initdb`` and ``pg_ctl`` from the image (``$PATH``, then
``/usr/lib/postgresql/*/bin``) and returns a :class:`PostgresServer` listening on 127.0.0.1 on a
free port with trust authentication; ``server.stop()`` shuts it down and removes its files.
PostgreSQL refuses to run as root, so as root the commands run as the ``postgres`` system user
(``runuser``), with the data directory owned by it.
"""

from __future__ import annotations

import atexit
import glob
import logging
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from storage.errors import StorageError, StorageUnavailable

log = logging.getLogger(__name__)

# Speed over durability: these clusters are thrown away after the run.
_SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
"""


class PostgresNotInstalled(StorageError, FileNotFoundError):
    """The PostgreSQL server binaries (initdb, pg_ctl) are not on this machine."""


def find_postgres_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or ``None``."""
    candidates = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                           key=_version_key, reverse=True)]
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


@dataclass
class PostgresServer:
    """A running throwaway cluster. ``url`` points at its ``postgres`` database."""

    url: str
    port: int
    data_dir: Path
    bin_dir: Path
    _as_user: list[str] = field(repr=False, default_factory=list)
    _owned_dir: Path | None = field(repr=False, default=None)
    _stopped: bool = field(repr=False, default=False)

    def database_url(self, name: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (a unique name if none given); return its URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg

        conninfo = self.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql)

    def restart(self) -> None:
        """Restart the server (fast shutdown): every open connection to it is dropped."""
        _run(self._as_user + [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l",
                              str(self.data_dir / "server.log"), "-m", "fast", "-w", "-t", "60",
                              "restart"], self.data_dir.parent)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its files. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        _run(self._as_user + [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m",
                              "fast", "-w", "stop"], self.data_dir.parent, check=False)
        shutil.rmtree(self._owned_dir or self.data_dir, ignore_errors=True)


def start_postgres(base_dir: str | os.PathLike[str]) -> PostgresServer:
    """Start a fresh cluster under ``base_dir`` (or the system temp dir when the ``postgres``
    user cannot reach ``base_dir``); raise :class:`PostgresNotInstalled` without the binaries."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        raise PostgresNotInstalled(
            "cannot start PostgreSQL: expected initdb and pg_ctl on $PATH or in "
            "/usr/lib/postgresql/*/bin, found neither (install the postgresql server package)")
    as_user: list[str] = []
    owner = None
    base = Path(base_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    owned_dir = None
    if os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresNotInstalled("cannot start PostgreSQL as root: expected a 'postgres' "
                                       "system user to run it as, found none") from None
        runuser = shutil.which("runuser")
        as_user = [runuser, "-u", "postgres", "--"] if runuser else [
            "su", "postgres", "-s", "/bin/sh", "-c", 'exec "$0" "$@"']
        if not _traversable(base):
            # pytest's temp dirs are private to root: use a world-reachable place instead.
            base = owned_dir = Path(tempfile.mkdtemp(prefix="workbench-pg-"))
            os.chmod(base, 0o755)
    data_dir = base / f"pgdata-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir(mode=0o700)
    if owner is not None:
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    _run(as_user + [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", "postgres",
                    "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"], base)
    log_file = data_dir / "server.log"
    last_error = ""
    for _ in range(3):  # the free port may be taken between probing and binding
        port = _free_port()
        with open(data_dir / "postgresql.conf", "a") as conf:
            conf.write(_SETTINGS.format(port=port))
        try:
            _run(as_user + [str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-l", str(log_file),
                            "-w", "-t", "60", "start"], base)
        except StorageUnavailable as err:
            last_error = str(err)
            continue
        server = PostgresServer(url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres",
                                port=port, data_dir=data_dir, bin_dir=bin_dir, _as_user=as_user,
                                _owned_dir=owned_dir)
        atexit.register(server.stop)  # a safety net if the caller forgets
        log.info("started PostgreSQL at %s (data in %s)", server.url, data_dir)
        return server
    tail = log_file.read_text(errors="replace")[-500:] if log_file.exists() else ""
    shutil.rmtree(owned_dir or data_dir, ignore_errors=True)
    raise StorageUnavailable(f"cannot start PostgreSQL in {data_dir}: {last_error} {tail}".strip())


def _traversable(path: Path) -> bool:
    """Whether every directory from / to ``path`` lets others in (o+x)."""
    for p in [path, *path.parents]:
        if not p.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], cwd: Path, check: bool = True) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        program = next(Path(c).name for c in cmd if Path(c).name in ("initdb", "pg_ctl"))
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise StorageUnavailable(f"{program} failed (exit {proc.returncode}): "
                                 f"{message[-1] if message else 'no output'}")

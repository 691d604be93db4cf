"""``workbench ui``: serve the Gradio workbench (studies, live view, explorer) on localhost."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import typer

from workbench.cli import app, fail
from workbench.cli.common import STORAGE

log = logging.getLogger(__name__)
AUTH_ENV = "WORKBENCH_AUTH"


@app.command()
def ui(storage: str | None = STORAGE,
       host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 to "
                                "serve the network; use --auth then)."),
       port: int = typer.Option(7860, "--port", help="TCP port."),
       auth: str | None = typer.Option(None, "--auth", help="user:password required to log in "
                                       f"(or ${AUTH_ENV}, or --auth-file)."),
       auth_file: Path | None = typer.Option(None, "--auth-file",
                                             help="A file whose first line is user:password."),
       allow_evaluators: str = typer.Option("", "--allow-evaluators",
                                            help="Comma-separated modules UI users may name as "
                                                 "module:function evaluators or spaces. RUNS "
                                                 "THEIR CODE on this server. Default: none."),
       data_root: Path = typer.Option(Path("."), "--data-root",
                                      help="Task paths and architecture files typed in the UI "
                                           "must lie inside this folder."),
       ) -> None:
    """Open the web UI: create, watch, stop and resume searches; explore architectures."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
    credentials = _credentials(auth, auth_file)
    if not 0 < port < 65536:
        fail(f"--port: expected 1-65535, found {port}")
    if not data_root.is_dir():
        fail(f"--data-root: expected a folder, found {'a file' if data_root.exists() else 'nothing'} "
             f"at {data_root}")
    from storage import Storage

    # an unreachable database fails here with one line (see cli.main); the default database is
    # created on first use (`make run` on a fresh machine), a --storage file that does not exist
    # is a typo, not a request for a new empty database
    db = Storage(storage, create=storage is None)
    from ui.app import build_app
    from ui.policy import ServePolicy

    modules = frozenset(m.strip() for m in allow_evaluators.split(",") if m.strip())
    policy = ServePolicy(modules, data_root.resolve())
    typer.echo(f"workbench UI on http://{host}:{port} (database {db.url})")
    if modules:
        typer.echo(f"warning: UI users may run code from {', '.join(sorted(modules))}", err=True)
    if host not in ("127.0.0.1", "localhost", "::1") and credentials is None:
        typer.echo("warning: serving beyond localhost without --auth", err=True)
    login = None if credentials is None else Throttled(*credentials)
    try:
        build_app(db, policy).launch(server_name=host, server_port=port, auth=login, quiet=True)
    except OSError as exc:  # port taken, address not available
        fail(f"cannot serve on {host}:{port}: {exc}")


def _credentials(auth: str | None, auth_file: Path | None) -> tuple[str, str] | None:
    """user:password from --auth, --auth-file or $WORKBENCH_AUTH (in that order)."""
    where = "--auth"
    if auth is None and auth_file is not None:
        try:
            auth = auth_file.read_text().splitlines()[0].strip() if auth_file.stat().st_size else ""
        except OSError as exc:
            fail(f"--auth-file: cannot read {auth_file} ({exc.strerror})")
        where = "--auth-file"
    elif auth is None and os.environ.get(AUTH_ENV):
        auth, where = os.environ[AUTH_ENV], f"${AUTH_ENV}"
    if auth is None:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        fail(f"{where}: expected user:password, found {'an empty value' if not auth else 'no colon or an empty part'}")
    return user, password


class Throttled:
    """gradio's login check, slowed after failures: each consecutive failure waits a second
    longer (up to 30 s) before answering, so guessing a password is impractical.

    >>> check = Throttled("u", "p")
    >>> check("u", "p"), check("u", "wrong") is False
    (True, True)
    """

    def __init__(self, user: str, password: str):
        self._user, self._password = user, password
        self._failures = 0
        self._lock = threading.Lock()

    def __call__(self, user: str, password: str) -> bool:
        import hmac

        ok = hmac.compare_digest(user.encode(), self._user.encode()) and hmac.compare_digest(
            password.encode(), self._password.encode())
        with self._lock:
            delay = min(30.0, float(self._failures))
            self._failures = 0 if ok else self._failures + 1
        if not ok:
            time.sleep(delay)
        return ok

"""``workbench ui``: serve the Gradio workbench (studies, live view, explorer) on localhost."""

from __future__ import annotations

import logging
import os

import typer

from workbench.cli import app, fail
from workbench.cli.common import STORAGE

log = logging.getLogger(__name__)


@app.command()
def ui(storage: str | None = STORAGE,
       host: str = typer.Option("127.0.0.1", "--host", help="Interface to bind (0.0.0.0 to "
                                "serve the network; use --auth then)."),
       port: int = typer.Option(7860, "--port", help="TCP port."),
       auth: str | None = typer.Option(None, "--auth", help="user:password required to log in."),
       ) -> None:
    """Open the web UI: create, watch, stop and resume searches; explore architectures."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
    credentials = None
    if auth is not None:
        user, sep, password = auth.partition(":")
        if not sep or not user or not password:
            fail(f"--auth: expected user:password, found {auth!r}")
        credentials = (user, password)
    if not 0 < port < 65536:
        fail(f"--port: expected 1-65535, found {port}")
    from storage import Storage

    # an unreachable database fails here with one line (see cli.main); the default database is
    # created on first use (`make run` on a fresh machine), a --storage file that does not exist
    # is a typo, not a request for a new empty database
    db = Storage(storage, create=storage is None)
    from ui.app import build_app

    typer.echo(f"workbench UI on http://{host}:{port} (database {db.url})")
    if host not in ("127.0.0.1", "localhost", "::1") and credentials is None:
        typer.echo("warning: serving beyond localhost without --auth", err=True)
    try:
        build_app(db).launch(server_name=host, server_port=port, auth=credentials, quiet=True)
    except OSError as exc:  # port taken, address not available
        fail(f"cannot serve on {host}:{port}: {exc}")

"""The ``workbench`` command line: a thin shell over the library.

Command groups live in submodules (``core``, ``study``, ``export`` ...) that register on ``app``;
heavy libraries (torch, gradio, ray) are imported inside commands so ``workbench --help`` is instant.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import TYPE_CHECKING, cast

import typer

if TYPE_CHECKING:  # private module of typer's vendored click: named for the type checker only
    from typer._click.exceptions import ClickException, UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="NAS workbench: search spaces, searches, results and exports.")

# Each module adds its commands to ``app`` when imported. A missing module (an optional part not
# installed) simply contributes no commands.
COMMAND_MODULES = ("core", "study", "searchers", "export", "diagram", "ui", "report")


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"workbench.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"workbench.cli.{name}":
                raise


def fail(message: str, code: int = 2) -> None:
    """One line to stderr and exit: the CLI's answer to every user error."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def main() -> None:
    """Console entry point: user errors become one line and exit code 2, never a traceback."""
    from workbench.errors import WorkbenchError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _load_commands()
    user_errors: tuple[type[BaseException], ...] = (WorkbenchError,)
    try:
        from storage.errors import StorageError

        user_errors += (StorageError,)
    except ImportError:
        pass
    # typer ships its own copy of click: its exception classes are reached through typer's
    usage_error = cast("type[UsageError]",
                       next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError"))
    click_error = cast("type[ClickException]",
                       next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"))
    try:
        code = app(standalone_mode=False)
    except user_errors as exc:
        typer.echo(f"error: {_one_line(str(exc))}", err=True)
        sys.exit(2)
    except usage_error as exc:  # a bad option or argument: one line too, not a usage box
        ctx = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
            typer.echo(ctx.get_help())
            sys.exit(0)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        typer.echo(f"error: {where}{_one_line(exc.format_message())}", err=True)
        sys.exit(2)
    except click_error as exc:  # e.g. a file option that cannot be opened
        typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _one_line(message: str) -> str:
    return " ".join(message.split())

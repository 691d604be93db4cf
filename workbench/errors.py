"""Every error class of the workbench. Each user-facing error says what was expected, what was
found, and where.

Each subclass also inherits the matching builtin, so ``except ValueError`` keeps working for
callers who do not know about the workbench. The storage layer has its own small hierarchy
(``storage`` imports nothing of ours); its errors that users catch are re-exported here, loaded on
first use so that importing this module stays free of SQLAlchemy.

>>> issubclass(ExecutorError, WorkbenchError) and issubclass(ExecutorError, RuntimeError)
True
>>> from workbench.errors import StorageError, NotFoundError
>>> issubclass(NotFoundError, StorageError) and issubclass(NotFoundError, KeyError)
True
"""

from __future__ import annotations

import importlib
from typing import Any

# storage's errors users catch: re-exported lazily (``import storage.errors`` imports the
# ``storage`` package, and with it SQLAlchemy: half a second a CLI call should not pay).
_STORAGE_ERRORS = ("StorageError", "NotFoundError", "StorageUnavailable", "ConflictError")

__all__ = ["WorkbenchError", "GrammarError", "ParseError", "InvalidArchitecture",
           "DerivationFailed", "NotFound", "ConfigError", "TrialError", "ExecutorError",
           "UnsupportedExport", "DiagramError", *_STORAGE_ERRORS]


def __getattr__(name: str) -> Any:
    if name in _STORAGE_ERRORS:
        value = getattr(importlib.import_module("storage.errors"), name)
        globals()[name] = value  # once loaded, a plain module attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class WorkbenchError(Exception):
    """Base of every error the workbench raises on purpose (a user error, not a bug)."""


class GrammarError(WorkbenchError, ValueError):
    """A grammar or search-space definition is malformed."""


class ParseError(WorkbenchError, ValueError):
    """A bracket string could not be parsed or does not derive in its space.

    >>> str(ParseError("expected ']'", text="a[b", pos=3))
    "line 1, column 4: expected ']'"
    """

    def __init__(self, message: str, *, text: str = "", pos: int | None = None):
        self.message = message
        self.text = text
        self.pos = pos
        self.line: int | None = None
        self.column: int | None = None
        if pos is not None:
            line = text.count("\n", 0, pos) + 1
            col = pos - (text.rfind("\n", 0, pos) + 1) + 1
            self.line, self.column = line, col
            message = f"line {line}, column {col}: {message}"
        super().__init__(message)


class InvalidArchitecture(WorkbenchError, ValueError):
    """Decisions that do not derive a valid architecture in their space."""


class DerivationFailed(WorkbenchError, RuntimeError):
    """A derivation ran out of valid options everywhere (after backtracking)."""


class NotFound(WorkbenchError, KeyError):
    """A named thing (space, searcher, task, study, trial, seed) does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0]) if self.args else ""


class ConfigError(WorkbenchError, ValueError):
    """A configuration value is invalid (bad option, bad URL, missing path)."""


class TrialError(WorkbenchError, RuntimeError):
    """Training a candidate failed (NaN, out of memory, time-out, shape error)."""


class ExecutorError(WorkbenchError, RuntimeError):
    """The executor itself cannot run (workers do not start, cluster unreachable)."""


class UnsupportedExport(WorkbenchError, ValueError):
    """An export format cannot represent this architecture (the message says why)."""


class DiagramError(WorkbenchError, RuntimeError):
    """Rendering failed: ``dot`` missing, timed out, or rejected the graph."""

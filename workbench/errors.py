"""Error types. Every user-facing error says what was expected, what was found, and where.

Each subclass also inherits the matching builtin, so ``except ValueError`` keeps working for
callers who do not know about the workbench.
"""

from __future__ import annotations


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

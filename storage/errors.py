"""Errors raised by the storage layer.

``storage`` imports nothing of the workbench, so it has its own small hierarchy. Each class also
inherits the matching builtin, so callers that only know ``KeyError`` or ``ConnectionError`` still
catch them. Messages are one line: what was expected, what was found, and where.

>>> try:
...     raise NotFoundError("no study named 'x' in sqlite://; studies: (none)")
... except KeyError as exc:
...     print(exc)
no study named 'x' in sqlite://; studies: (none)
"""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error the storage layer raises on purpose."""


class NotFoundError(StorageError, KeyError):
    """A study, trial or artifact does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message (quotes); we want it plain
        return str(self.args[0]) if self.args else ""


class StorageUnavailable(StorageError, ConnectionError):
    """The database cannot be reached or opened."""


class ConflictError(StorageError, ValueError):
    """A write conflicts with existing data (a study name taken, a trial in the wrong state)."""

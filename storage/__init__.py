"""Storage of studies, architectures, trials, learning curves and artifacts.

SQLAlchemy 2 over SQLite (the default, one file, WAL) or PostgreSQL (shared by a cluster); the
schema is managed by alembic and upgraded on open. This package imports nothing else of the
workbench (no torch, no grammars), so the UI and tools can use it alone.

>>> from storage import Storage, TrialState
>>> with Storage("sqlite://") as st:
...     _ = st.create_study("s", space="toy", task="t", searcher="random",
...                         objectives=[{"name": "loss", "direction": "minimize"}], config={},
...                         seed=1)
...     st.count_trials("s")["queued"]
0
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Lazy re-exports: the records and their enums (imported by the engine, the searchers and the
# workers) must not pull in SQLAlchemy.
_EXPORTS = {
    "Storage": "storage.api", "default_url": "storage.engine", "StudyStorage": "storage.protocol",
    "ConflictError": "storage.errors", "NotFoundError": "storage.errors",
    "StorageError": "storage.errors", "StorageUnavailable": "storage.errors",
    "StudyRecord": "storage.records", "StudyStatus": "storage.records", "Lease": "storage.records",
    "TrialRecord": "storage.records", "TrialState": "storage.records",
}
__all__ = [
    "ConflictError", "Lease", "NotFoundError", "Storage", "StorageError", "StorageUnavailable",
    "StudyRecord", "StudyStatus", "StudyStorage", "TrialRecord", "TrialState", "default_url",
]

if TYPE_CHECKING:
    from storage.api import Storage
    from storage.engine import default_url
    from storage.errors import ConflictError, NotFoundError, StorageError, StorageUnavailable
    from storage.protocol import StudyStorage
    from storage.records import Lease, StudyRecord, StudyStatus, TrialRecord, TrialState


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value

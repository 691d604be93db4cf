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

from storage.api import Storage
from storage.engine import default_url
from storage.errors import ConflictError, NotFoundError, StorageError, StorageUnavailable
from storage.records import StudyRecord, TrialRecord, TrialState

__all__ = [
    "ConflictError", "NotFoundError", "Storage", "StorageError", "StorageUnavailable",
    "StudyRecord", "TrialRecord", "TrialState", "default_url",
]

"""The Gradio web UI of the workbench: ``build_app(storage)`` returns the app (never built at import).

Modules: ``app`` (the factory and the one event-wiring function), ``layout`` (``_render_*`` layout
functions), ``views`` (pure view functions over stored studies: tables, plotly figures, progress),
``arch_views`` (diagrams, explorer, lineage, exports), ``control`` (create, start, stop and resume
background searches). Everything is read from the database, so the UI can be restarted at any
time; searches run in their own processes.
"""

from __future__ import annotations

from typing import Any

from storage.protocol import StudyStorage

__all__ = ["build_app"]


def build_app(storage: StudyStorage, policy: Any = None):
    """The workbench app for ``storage`` (imports gradio lazily so ``import ui`` stays light);
    ``policy``: a :class:`ui.policy.ServePolicy` (what users may make the server import/read)."""
    from ui.app import build_app as _build

    return _build(storage, policy)

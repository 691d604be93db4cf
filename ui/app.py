"""``build_app(storage)``: the Gradio app factory.

Layout lives in :mod:`ui.layout` (``_render_*`` functions), event wiring in :mod:`ui.wiring` and
:mod:`ui.wiring_live` (one small function per page), view decisions in pure functions
(:mod:`ui.panels`, :mod:`ui.views`, :mod:`ui.figures`, :mod:`ui.analysis`,
:mod:`ui.arch_views`) over one frozen snapshot per refresh (:mod:`ui.snapshot`), and search
control in :mod:`ui.control`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network at run time

import gradio as gr  # noqa: E402  (after the environment is set)

from storage.protocol import StudyStorage
from ui import control  # noqa: E402
from ui.layout import CLICK_JS, CSS, render  # noqa: E402
from ui.policy import ServePolicy, set_policy
from ui.snapshot import Snapshots  # noqa: E402
from ui.wiring import Ctx, wire_explorer, wire_studies  # noqa: E402
from ui.wiring_live import wire_analysis, wire_compare, wire_live, wire_trial  # noqa: E402

# System fonts only: the default theme would fetch Google fonts from the internet.
_FONTS = ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"]
_MONO = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


class WorkbenchApp(gr.Blocks):
    """The app's Blocks; :meth:`launch` defaults to an offline theme and our CSS (gradio 6 takes
    theme and css at launch, not at construction)."""

    def launch(self, *args: Any, **kwargs: Any):  # noqa: D102 - as gr.Blocks.launch
        kwargs.setdefault("theme", gr.themes.Default(font=_FONTS, font_mono=_MONO))
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("share", False)
        kwargs.setdefault("show_error", False)
        return super().launch(*args, **kwargs)


def build_app(storage: StudyStorage, policy: ServePolicy | None = None) -> WorkbenchApp:
    """The workbench UI over ``storage`` (a :class:`storage.Storage`); ``policy`` says what its
    users may make the server import or read (default: no custom code, the working directory)."""
    from workbench.spaces import list_spaces

    set_policy(policy or ServePolicy())
    from workbench.tasks import list_tasks

    spaces = [e.name for e in list_spaces()]
    tasks = [t["name"] + (":PATH" if t["needs_path"] else "") for t in list_tasks()]
    searchers = list(control.searcher_classes())
    ctx = Ctx(storage=storage, snaps=Snapshots(storage),
              export_dir=tempfile.mkdtemp(prefix="workbench-ui-"))
    with WorkbenchApp(title="NAS workbench", analytics_enabled=False) as app:
        c = render(spaces, tasks, searchers)
        wire_studies(app, c, ctx)
        wire_live(app, c, ctx)
        wire_trial(app, c, ctx)
        wire_analysis(app, c, ctx)
        wire_compare(app, c, ctx)
        wire_explorer(app, c, ctx)
        app.load(None, js=CLICK_JS)
    # The API surface is what the pages use: no handler is an endpoint for API clients (the
    # page's own events still run; gradio's client libraries and API docs see none of them).
    for fn in app.fns.values():
        fn.api_visibility = "private"
    return app

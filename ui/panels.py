"""What each area of the live page shows, as plain values computed from one snapshot.

The wiring (:mod:`ui.wiring`) reads the snapshot (and, for learning curves, the curves asked for)
and hands it here; these functions decide everything that is shown and are tested directly.
:class:`LiveState` is the live page's explicit state: the study on screen and the trial selected
in it, always together, so a selection never outlives its study.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ui import arch_views as av
from ui import figures, views
from ui.snapshot import StudySnapshot


@dataclass(frozen=True)
class LiveState:
    """The live page: which study is on screen and which of its trials is selected."""

    study: str | None = None
    trial: int | None = None

    def on_study(self, name: str | None) -> LiveState:
        """The state after switching to ``name``: the selection goes with its study."""
        return self if name == self.study else LiveState(name, None)

    def select(self, name: str, number: int | None) -> LiveState:
        return LiveState(name, number)


@dataclass(frozen=True)
class LiveView:
    """Everything the live page's refresh shows."""

    progress: str
    metrics: list[str]
    x: str
    y: str
    pareto: Any
    best: Any
    newest_html: str
    best_html: str
    sorts: list[str]
    sort: str
    table: Any
    caption: str
    page: int
    card: str
    card_html: str


def _diagram(snap: StudySnapshot, number: int | None, what: str, view: str,
             depth: int | None, small: bool = False) -> str:
    if number is None:
        return av.diagram_html(None, caption=f"no {what} trial yet")
    arch, t = av.snapshot_arch(snap, number)
    return av.diagram_html(arch, caption=f"{what}: {snap.name} · trial #{number} "
                           f"({t.state.value})", view=view, depth=min(depth or 3, 3)
                           if small else depth)


def live_view(snap: StudySnapshot, state_label: str, sel: LiveState, *, x: str | None,
              y: str | None, depth: Any, view: str, sort: str | None, descending: bool,
              states: Sequence[str] | None, page: Any) -> LiveView:
    """The live page of ``snap`` with ``sel`` highlighted (a selection of another study is
    ignored)."""
    selected = sel.trial if sel.study == snap.name else None
    metrics, x, y = views.choose_axes(snap, x, y)
    d = av.depth_value(depth)
    rev = snap.name
    pareto, _ = figures.pareto_figure(snap.complete, snap.objectives, x, y, selected=selected,
                                      revision=rev)
    best = figures.best_so_far_figure(snap.complete, snap.objectives, revision=rev)
    sorts = views.sort_choices(snap)
    sort = sort if sort in sorts else "number"
    table, caption, pages = views.trials_table(snap, page=page, sort=sort,
                                               descending=descending, states=states)
    newest = snap.newest.number if snap.newest else None
    best_n = snap.best.number if snap.best else None
    card, card_html = trial_card(snap, selected, view, d)
    return LiveView(
        progress=views.progress_text(snap, state_label) + f"  \n_updated {views.stamp()}_",
        metrics=metrics, x=x, y=y, pareto=pareto, best=best,
        newest_html=_diagram(snap, newest, "newest", view, d),
        best_html=_diagram(snap, best_n, "best", view, d), sorts=sorts, sort=sort, table=table,
        caption=caption, page=min(max(1, int(page or 1)), pages), card=card,
        card_html=card_html)


def trial_card(snap: StudySnapshot, number: int | None, view: str,
               depth: int | None) -> tuple[str, str]:
    """The compact card beside the Pareto plot: key metrics and a small diagram."""
    if number is None or snap.trial(number) is None:
        return f"click a point or a row to see a trial of **{snap.name}** here", ""
    return views.trial_card(snap, number), _diagram(snap, number, "selected", view, depth,
                                                    small=True)


@dataclass(frozen=True)
class TrialView:
    """The selected-trial panel."""

    info: str
    diagram: str
    curve_numbers: list[int]
    curve_message: str
    lineage_text: str
    lineage_html: str
    note: str


def trial_view(snap: StudySnapshot, number: int, *, view: str, depth: Any,
               curve_text: str) -> TrialView:
    """The panel for trial ``number`` of ``snap``; a bad curve box only changes its message."""
    arch, t = av.snapshot_arch(snap, number)
    d = av.depth_value(depth)
    info = views.trial_header(snap, number)
    info += "\n\n" + av.summary_markdown(arch, t.metrics)
    best = snap.best.number if snap.best else None
    numbers, message = views.curve_numbers(curve_text, t.number, best)
    lin_text, lin_html = av.lineage_view(snap, t.number, view=view, depth=d)
    return TrialView(info=info, diagram=av.diagram_html(
        arch, caption=f"{snap.name} · trial #{t.number}", view=view, depth=d),
        curve_numbers=numbers, curve_message=message, lineage_text=lin_text,
        lineage_html=lin_html, note=snap.notes.get(t.number, ""))


def empty_trial_view(name: str | None) -> TrialView:
    what = f" of **{name}**" if name else ""
    return TrialView(info=f"select a trial{what}: click a point or a table row, or type its "
                     "number", diagram="", curve_numbers=[], curve_message="",
                     lineage_text="", lineage_html="", note="")


def curves(curve_data: Mapping[int, Sequence[dict[str, Any]]], numbers: Sequence[int],
           metric: str, name: str):
    return figures.curves_figure(curve_data, numbers, metric or "val_accuracy", revision=name)


def diagrams(snap: StudySnapshot, sel: LiveState, view: str, depth: Any) -> dict[str, str]:
    """Every diagram on the live page at the given view and depth (the depth control redraws
    all of them: newest, best, the card, the selected trial and its lineage)."""
    d = av.depth_value(depth)
    newest = snap.newest.number if snap.newest else None
    best = snap.best.number if snap.best else None
    out = {"newest": _diagram(snap, newest, "newest", view, d),
           "best": _diagram(snap, best, "best", view, d), "card": "", "trial": "",
           "lineage": ""}
    if sel.study == snap.name and sel.trial is not None and snap.trial(sel.trial) is not None:
        arch, t = av.snapshot_arch(snap, sel.trial)
        out["card"] = _diagram(snap, sel.trial, "selected", view, d, small=True)
        out["trial"] = av.diagram_html(arch, caption=f"{snap.name} · trial #{t.number}",
                                       view=view, depth=d)
        out["lineage"] = av.lineage_view(snap, t.number, view=view, depth=d)[1]
    return out

"""Analysis views over a :class:`ui.snapshot.StudySnapshot`: parallel coordinates with a brush,
decision importance, slice plots, hypervolume history, the worker timeline and comparisons of
several studies. Each is a pure function returning a plotly figure (or plain data).

Decisions are lined up by path (DESIGN §2): a trial's choice at ``root/op`` means the same
decision in every trial, so paths are the columns of every encoding here. A define-by-run space
does not visit every path in every trial; a path a trial did not visit is the choice ``—``.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from storage.records import TrialState
from ui.figures import MAX_PLOT_POINTS, best_so_far, empty_figure, layout
from ui.snapshot import StudySnapshot
from ui.views import direction, fmt, is_num
from workbench.pareto import front_2d, hypervolume, non_dominated

MISSING = "—"  # a path the trial's derivation did not visit
MAX_PATHS = 8
MAX_PARCOORDS = 3000
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
          "#17becf"]


def choice_text(choice: Any) -> str:
    """A decision's choice as a short label (JSON for lists and dicts).

    >>> choice_text("relu"), choice_text(3), choice_text([1, 2])
    ('relu', '3', '[1, 2]')
    """
    return choice if isinstance(choice, str) else json.dumps(choice)


def decision_table(trials: Sequence) -> tuple[list[str], list[dict[str, str]]]:
    """Every decision path (most often visited first) and each trial's choices by path."""
    rows = [{p: choice_text(c) for p, c in t.arch_decisions} for t in trials]
    seen = Counter(p for r in rows for p in r)
    return [p for p, _ in seen.most_common()], rows


def varied_paths(trials: Sequence, limit: int = MAX_PATHS) -> list[str]:
    """The paths worth a column: visited by at least a fifth of the trials and with at least
    two different choices, the most visited first (at most ``limit``)."""
    paths, rows = decision_table(trials)
    out = []
    for p in paths:
        values = [r.get(p, MISSING) for r in rows]
        if sum(v != MISSING for v in values) * 5 >= len(rows) and len(set(values)) >= 2:
            out.append(p)
        if len(out) == limit:
            break
    return out


def _choice_order(label: str) -> tuple:
    """Numbers in numeric order, then words, the unvisited ``—`` last."""
    try:
        return (label == MISSING, 0, float(label), "")
    except ValueError:
        return (label == MISSING, 1, 0.0, label)


def _thin(items: Sequence, limit: int) -> list:
    if len(items) <= limit:
        return list(items)
    return [items[int(i * len(items) / limit)] for i in range(limit)]


# -- parallel coordinates ------------------------------------------------------------------------
def parcoords_dimensions(snap: StudySnapshot, paths: Sequence[str] | None = None,
                         max_trials: int = MAX_PARCOORDS) -> list[dict[str, Any]]:
    """The axes: ``trial #``, each decision path (choices as ticks) and each objective."""
    trials = _thin([t for t in snap.complete
                    if all(is_num(t.metrics.get(n)) for n in snap.objective_names)], max_trials)
    paths = varied_paths(trials) if paths is None else list(paths)
    dims: list[dict[str, Any]] = [{"label": "trial #", "values": [t.number for t in trials]}]
    _, rows = decision_table(trials)
    for p in paths:
        labels = [r.get(p, MISSING) for r in rows]
        ticks = sorted(set(labels), key=_choice_order)
        index = {v: i for i, v in enumerate(ticks)}
        dims.append({"label": p, "values": [index[v] for v in labels],
                     "tickvals": list(range(len(ticks))), "ticktext": ticks})
    for n in snap.objective_names:
        dims.append({"label": n, "values": [float(t.metrics[n]) for t in trials]})
    return dims


def parallel_coordinates(snap: StudySnapshot, paths: Sequence[str] | None = None,
                         max_trials: int = MAX_PARCOORDS) -> go.Figure:
    """Parallel coordinates over decisions and objectives, coloured by the first objective.

    Dragging along an axis brushes it; the UI sends the brushed ranges back and filters the
    trial table with :func:`brushed_numbers`.
    """
    dims = parcoords_dimensions(snap, paths, max_trials)
    if not dims[0]["values"]:
        return empty_figure("no complete trial yet")
    first = snap.objective_names[0] if snap.objective_names else ""
    color = next((d["values"] for d in dims if d["label"] == first), dims[0]["values"])
    fig = go.Figure(go.Parcoords(
        dimensions=dims,
        line={"color": color, "colorscale": "Viridis", "showscale": True,
              "reversescale": direction(first, snap.objectives) == "minimize",
              "colorbar": {"title": {"text": first}}}))
    fig = layout(fig, f"decisions and objectives of {len(dims[0]['values'])} complete trials "
                 "(drag along an axis to filter the table)", "", "",
                 revision=f"{snap.name}|parcoords", height=480)
    fig.update_layout(margin={"l": 80, "r": 60, "t": 90, "b": 40})
    return fig


def brushed_numbers(dimensions: Sequence[dict[str, Any]],
                    ranges: Mapping[str, Sequence[Sequence[float]]]) -> list[int] | None:
    """Trial numbers whose value on every brushed axis lies in one of its ranges; None when no
    axis is brushed. ``ranges`` maps an axis label to ``[[lo, hi], ...]`` (plotly's
    ``constraintrange``, one pair or several).

    >>> dims = [{"label": "trial #", "values": [0, 1, 2]}, {"label": "acc", "values": [.2, .5, .9]}]
    >>> brushed_numbers(dims, {"acc": [[0.4, 1.0]]}), brushed_numbers(dims, {})
    ([1, 2], None)
    """
    active = {}
    for label, rs in ranges.items():
        # plotly sends one [lo, hi] pair bare, several as a list of pairs
        raw: Sequence[Any] = [rs] if rs and is_num(rs[0]) else list(rs or [])
        pairs = [(float(a), float(b)) for a, b in raw]
        if pairs:
            active[label] = pairs
    if not active:
        return None
    by_label = {d["label"]: d["values"] for d in dimensions}
    numbers = by_label["trial #"]
    keep = []
    for i, n in enumerate(numbers):
        if all(label not in by_label or any(lo <= by_label[label][i] <= hi for lo, hi in pairs)
               for label, pairs in active.items()):
            keep.append(int(n))
    return keep


# -- decision importance and slices ----------------------------------------------------------------
def _target(values: list[float]) -> list[float]:
    # Objectives spanning decades (params, FLOPs) are compared on a log scale, as plotted.
    if values and min(values) > 0 and max(values) / min(values) > 100:
        return [math.log10(v) for v in values]
    return values


def decision_importance(snap: StudySnapshot, objective: str, *, seed: int = 0,
                        max_trials: int = 3000, trees: int = 64) -> list[tuple[str, float]]:
    """How much each decision path explains ``objective``: a random forest over the one-hot
    encoding of (path, choice), its impurity importances summed per path and normalised to 1.
    Trials above ``max_trials`` are subsampled with a generator seeded by ``seed``."""
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    trials = [t for t in snap.complete if is_num(t.metrics.get(objective))]
    if len(trials) > max_trials:
        trials = sorted(random.Random(seed).sample(trials, max_trials), key=lambda t: t.number)
    if len(trials) < 4:
        return []
    paths, rows = decision_table(trials)
    columns = sorted({(p, r.get(p, MISSING)) for r in rows for p in paths})
    if len(columns) <= len(paths):  # every path has one choice only: nothing to explain
        return [(p, 0.0) for p in paths]
    index = {c: i for i, c in enumerate(columns)}
    x = np.zeros((len(rows), len(columns)), dtype=np.float32)
    for i, r in enumerate(rows):
        for p in paths:
            x[i, index[(p, r.get(p, MISSING))]] = 1.0
    y = np.asarray(_target([float(t.metrics[objective]) for t in trials]))
    forest = RandomForestRegressor(n_estimators=trees, max_depth=10, min_samples_leaf=2,
                                   random_state=seed, n_jobs=1).fit(x, y)
    per_path: dict[str, float] = dict.fromkeys(paths, 0.0)
    for (p, _), w in zip(columns, forest.feature_importances_):
        per_path[p] += float(w)
    total = sum(per_path.values()) or 1.0
    return sorted(((p, w / total) for p, w in per_path.items()), key=lambda pw: (-pw[1], pw[0]))


def importance_figure(snap: StudySnapshot, objective: str | None = None, *, seed: int = 0,
                      top: int = 15) -> go.Figure:
    """Bar chart of :func:`decision_importance` (the ``top`` paths)."""
    objective = objective or (snap.objective_names[0] if snap.objective_names else "")
    ranked = decision_importance(snap, objective, seed=seed)[:top]
    if not ranked:
        return empty_figure(f"need at least 4 complete trials with {objective}")
    ranked = ranked[::-1]  # plotly draws horizontal bars bottom-up
    fig = go.Figure(go.Bar(x=[w for _, w in ranked], y=[p for p, _ in ranked], orientation="h",
                           marker={"color": "#1f77b4"},
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig = layout(fig, f"decision importance for {objective}",
                 "share of the variance explained (random forest over decision one-hots)", "",
                 revision=f"{snap.name}|importance|{objective}", height=max(300, 28 * len(ranked)
                                                                            + 120))
    fig.update_layout(margin={"l": 220, "r": 20, "t": 50, "b": 50})
    return fig


def slice_figure(snap: StudySnapshot, path: str, objective: str | None = None,
                 max_points: int = MAX_PLOT_POINTS) -> go.Figure:
    """The objective against one decision's choices: a box per choice, trials as points."""
    objective = objective or (snap.objective_names[0] if snap.objective_names else "")
    trials = [t for t in snap.complete if is_num(t.metrics.get(objective))]
    if not trials or not path:
        return empty_figure("choose a decision path" if trials else "no complete trial yet")
    groups: dict[str, list] = {}
    for t in trials:  # one path only: no need to tabulate every decision of every trial
        choice = next((choice_text(c) for p, c in t.arch_decisions if p == path), MISSING)
        groups.setdefault(choice, []).append(t)
    fig = go.Figure()
    per_group = max(20, max_points // max(1, len(groups)))
    for label in sorted(groups, key=_choice_order):
        shown = _thin(groups[label], per_group)
        fig.add_trace(go.Box(y=[t.metrics[objective] for t in shown], name=label,
                             boxpoints="all", jitter=0.4, pointpos=0, marker={"size": 4},
                             customdata=[t.number for t in shown],
                             hovertemplate="trial #%{customdata}: %{y}<extra></extra>"))
    fig = layout(fig, f"{objective} by choice at {path}", path, objective,
                 revision=f"{snap.name}|slice|{path}|{objective}")
    fig.update_layout(showlegend=False)
    return fig


# -- multi-objective progress ----------------------------------------------------------------------
def hypervolume_history(snap: StudySnapshot, checkpoints: int = 200) -> list[tuple[int, float]]:
    """(trial number, hypervolume of the front so far) at up to ``checkpoints`` trials.

    Every objective is rescaled to [0, 1] over the study's complete trials; the reference point
    lies 10% beyond the worst value of each, so the best possible hypervolume is 1.21 for two
    objectives.
    """
    names = snap.objective_names
    trials = [t for t in snap.complete if all(is_num(t.metrics.get(n)) for n in names)]
    if len(names) < 2 or not trials:
        return []
    dirs = [o.get("direction", "maximize") for o in snap.objectives]
    bounds = [(min(t.metrics[n] for t in trials), max(t.metrics[n] for t in trials))
              for n in names]
    ref = [lo - 0.1 * (hi - lo) if d == "maximize" else hi + 0.1 * (hi - lo)
           for (lo, hi), d in zip(bounds, dirs)]
    marks = {trials[int(i * len(trials) / checkpoints)].number
             for i in range(min(checkpoints, len(trials)))} | {trials[-1].number}
    front: list[tuple[float, ...]] = []
    out = []
    for t in trials:
        front.append(tuple(float(t.metrics[n]) for n in names))
        if t.number in marks:
            front = [front[i] for i in non_dominated(front, dirs)]
            out.append((t.number, hypervolume(front, dirs, ref, bounds=bounds)))
    return out


def hypervolume_figure(snap: StudySnapshot) -> go.Figure:
    history = hypervolume_history(snap)
    if not history:
        return empty_figure("hypervolume needs two or more objectives and a complete trial")
    fig = go.Figure(go.Scatter(x=[n for n, _ in history], y=[v for _, v in history],
                               mode="lines+markers", line={"shape": "hv", "color": "#d62728"},
                               marker={"size": 4}, name="hypervolume"))
    return layout(fig, f"hypervolume of the front so far: {fmt(history[-1][1])} "
                  "(objectives rescaled to [0, 1])", "trial", "hypervolume",
                  revision=f"{snap.name}|hv")


def timeline_figure(snap: StudySnapshot, max_trials: int = 2000) -> go.Figure:
    """One row per worker, one bar per trial from its start to its end (running ones up to the
    snapshot), coloured by state: idle workers and stragglers show as gaps and long bars."""
    # (trial, its start): the start kept beside the trial so it is known to be set
    runs = [(t, t.started_at) for t in snap.trials if t.started_at is not None][-max_trials:]
    if not runs:
        return empty_figure("no trial has started yet")
    now = snap.read_at or max(t.finished_at or s for t, s in runs)
    colors = {TrialState.COMPLETE: "#2ca02c", TrialState.FAILED: "#d62728",
              TrialState.RUNNING: "#1f77b4", TrialState.PRUNED: "#ff7f0e",
              TrialState.QUEUED: "#9aa5b1"}
    fig = go.Figure()
    for state in TrialState:
        group = [(t, s) for t, s in runs if t.state is state]
        if not group:
            continue
        ends = [t.finished_at or now for t, _ in group]
        fig.add_trace(go.Bar(
            y=[t.worker or "?" for t, _ in group], base=[s.isoformat() for _, s in group],
            x=[max(1.0, (e - s).total_seconds() * 1000) for (_, s), e in zip(group, ends)],
            orientation="h", name=state.value, marker={"color": colors[state]},
            customdata=[t.number for t, _ in group],
            hovertemplate="trial #%{customdata}<br>%{base} + %{x:.0f} ms<extra></extra>"))
    workers = sorted({t.worker or "?" for t, _ in runs})
    fig = layout(fig, f"trials per worker ({len(workers)} workers, last {len(runs)} trials)",
                 "time", "worker", revision=f"{snap.name}|timeline",
                 height=max(260, 40 * len(workers) + 140))
    fig.update_layout(barmode="overlay", bargap=0.3)
    fig.update_xaxes(type="date")
    return fig


def rank_quality(snap: StudySnapshot) -> list[tuple[int, float | None, float | None, int]]:
    """(trial number, Kendall tau, Spearman rho, hold-out size) of the searcher's predictor, for
    every trial whose proposal reported them (the ``surrogate`` searcher's refits: the model fit
    without the last ``holdout`` told results, ranking them; ``Proposal.info`` is stored with
    each trial). Trials proposed before the model measured anything are left out."""
    out = []
    for t in snap.trials:
        tau, rho = (t.info.get(k) for k in ("surrogate_kendall_tau", "surrogate_spearman"))
        tau, rho = (float(v) if v is not None and is_num(v) else None for v in (tau, rho))
        if tau is not None or rho is not None:
            out.append((t.number, tau, rho, int(t.info.get("surrogate_holdout") or 0)))
    return out


def rank_quality_figure(snap: StudySnapshot) -> go.Figure:
    """The predictor's rank quality per refit: is the surrogate learning the space?"""
    rows = rank_quality(snap)[-MAX_PLOT_POINTS:]
    if not rows:
        return empty_figure("no predictor rank quality in this study: the surrogate searcher "
                            "reports it once it has more told results than n_init + holdout")
    fig = go.Figure()
    for k, (name, color) in ((1, ("Kendall τ", "#1f77b4")), (2, ("Spearman ρ", "#ff7f0e"))):
        pts = [(row[0], row[k]) for row in rows if row[k] is not None]
        fig.add_trace(go.Scatter(x=[n for n, _ in pts], y=[v for _, v in pts], name=name,
                                 mode="lines+markers", marker={"size": 4},
                                 line={"color": color}))
    fig.add_hline(y=0.0, line={"color": "#9aa5b1", "dash": "dot"})
    recent = [r[1] for r in rows[-10:] if r[1] is not None]
    mean = fmt(sum(recent) / len(recent)) if recent else "n/a"
    fig = layout(fig, f"predictor rank quality on the last {rows[-1][3]} told results "
                 f"(τ, mean of the last {len(recent)} refits: {mean})", "trial",
                 "rank correlation", revision=f"{snap.name}|rank")
    fig.update_yaxes(range=[-1.05, 1.05])
    return fig


# -- several studies -------------------------------------------------------------------------------
def compare_best_figure(snaps: Sequence[StudySnapshot], metric: str | None = None) -> go.Figure:
    """Best-so-far curves of several studies on one plot (x: trials done)."""
    if not snaps:
        return empty_figure("choose studies to compare")
    metric = metric or (snaps[0].objective_names[0] if snaps[0].objective_names else "")
    fig = go.Figure()
    for i, snap in enumerate(snaps):
        trials = [t for t in snap.complete if is_num(t.metrics.get(metric))]
        if not trials:
            continue
        steps = best_so_far(trials, metric, direction(metric, snap.objectives))
        x = [s[0] for s in steps] + [trials[-1].number]
        y = [s[1] for s in steps] + [steps[-1][1]]
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=f"{snap.name} ({snap.study.searcher})",
                                 line={"shape": "hv", "width": 2.5,
                                       "color": COLORS[i % len(COLORS)]}))
    if not fig.data:
        return empty_figure(f"no complete trial with {metric} in these studies")
    return layout(fig, f"best {metric} so far", "trial", metric,
                  revision="compare|" + "|".join(s.name for s in snaps) + f"|{metric}")


def compare_fronts_figure(snaps: Sequence[StudySnapshot], x: str, y: str) -> go.Figure:
    """The Pareto fronts of several studies over the same two metrics, overlaid."""
    if not snaps:
        return empty_figure("choose studies to compare")
    fig = go.Figure()
    objectives = snaps[0].objectives
    dirs = [direction(x, objectives), direction(y, objectives)]
    for i, snap in enumerate(snaps):
        pts = [t for t in snap.complete if is_num(t.metrics.get(x)) and is_num(t.metrics.get(y))]
        if not pts:
            continue
        idx = front_2d([(t.metrics[x], t.metrics[y]) for t in pts], dirs)
        front = sorted((pts[j] for j in idx), key=lambda t: (t.metrics[x], t.metrics[y]))
        color = COLORS[i % len(COLORS)]
        fig.add_trace(go.Scatter(
            x=[t.metrics[x] for t in front], y=[t.metrics[y] for t in front],
            mode="markers+lines", name=f"{snap.name} ({len(front)} of {len(pts)})",
            line={"shape": "hv", "color": color}, marker={"size": 9, "color": color},
            customdata=[t.number for t in front],
            hovertemplate=f"{snap.name} #%{{customdata}}<br>{x} %{{x}}<br>{y} %{{y}}"
                          "<extra></extra>"))
    if not fig.data:
        return empty_figure(f"no complete trial has both {x} and {y}")
    fig = layout(fig, "Pareto fronts", x, y,
                 revision="fronts|" + "|".join(s.name for s in snaps) + f"|{x}|{y}")
    values = [v for tr in fig.data for v in tr.x]
    if min(values) > 0 and max(values) / min(values) > 100:
        fig.update_xaxes(type="log")
    return fig


def log_tail(text: str, lines: int = 40) -> str:
    """The last ``lines`` lines of a driver log, as a fenced block for markdown."""
    tail = text.splitlines()[-lines:]
    body = "\n".join(tail).replace("```", "ʼʼʼ")
    return f"```\n{body}\n```" if tail else "the driver log is empty"

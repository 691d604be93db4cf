"""A study report: one self-contained HTML file (plotly inlined, diagrams as inline SVG) that
opens offline in any browser: progress, Pareto front, best so far, the top trials, diagrams of
the best architectures and the study's configuration.

>>> from storage import Storage
>>> from workbench.study import StudyConfig, create_study, parse_objectives
>>> st = Storage("sqlite://")
>>> _ = create_study(st, "demo", StudyConfig(space="quickstart", task="digits",
...                  objectives=parse_objectives("acc,params"), trials=3))
>>> html = study_report(st, "demo")
>>> html.startswith("<!DOCTYPE html>") and "demo" in html and "no complete trial" in html
True
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

from storage.protocol import StudyStorage
from storage.records import TrialState
from workbench.errors import ConfigError
from workbench.study import trial_architecture

TOP_K = 10
DIAGRAMS = 3


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:.4g}"
    return str(v)


def _pareto(trials: list, objectives: list[dict]) -> Any:
    import plotly.graph_objects as go

    from workbench.pareto import front_2d

    x, y = objectives[1]["name"], objectives[0]["name"]
    dirs = [objectives[1].get("direction", "maximize"), objectives[0].get("direction",
                                                                          "maximize")]
    pts = [t for t in trials if _num(t.metrics.get(x)) and _num(t.metrics.get(y))]
    front = set(front_2d([(t.metrics[x], t.metrics[y]) for t in pts], dirs))
    fig = go.Figure()
    for label, group, color in (("dominated", [t for i, t in enumerate(pts) if i not in front],
                                 "#9aa5b1"),
                                ("Pareto front", sorted((pts[i] for i in front),
                                                        key=lambda t: t.metrics[x]), "#d62728")):
        fig.add_trace(go.Scatter(x=[t.metrics[x] for t in group], y=[t.metrics[y] for t in group],
                                 mode="markers+lines" if label != "dominated" else "markers",
                                 name=f"{label} ({len(group)})", marker={"color": color},
                                 line={"shape": "hv"}, text=[f"trial #{t.number}" for t in group]))
    values = [t.metrics[x] for t in pts]
    if values and min(values) > 0 and max(values) / min(values) > 100:
        fig.update_xaxes(type="log")
    fig.update_layout(title="Pareto front", xaxis_title=x, yaxis_title=y, height=420,
                      template="plotly_white")
    return fig


def _best_so_far(trials: list, objective: dict) -> Any:
    import plotly.graph_objects as go

    name, maximize = objective["name"], objective.get("direction", "maximize") == "maximize"
    pts = [t for t in trials if _num(t.metrics.get(name))]
    steps: list[tuple[int, float]] = []
    for t in pts:
        v = float(t.metrics[name])
        if not steps or (v > steps[-1][1] if maximize else v < steps[-1][1]):
            steps.append((t.number, v))
    if steps and pts:
        steps.append((pts[-1].number, steps[-1][1]))
    fig = go.Figure([
        go.Scatter(x=[t.number for t in pts], y=[t.metrics[name] for t in pts], mode="markers",
                   name="trial", marker={"color": "#9aa5b1", "size": 5}),
        go.Scatter(x=[s[0] for s in steps], y=[s[1] for s in steps], mode="lines",
                   name="best so far", line={"shape": "hv", "width": 2.5})])
    fig.update_layout(title=f"best {name} so far", xaxis_title="trial", yaxis_title=name,
                      height=380, template="plotly_white")
    return fig


def _diagram(study, trial, view: str) -> str:
    from workbench.diagrams import render_svg
    from workbench.errors import WorkbenchError
    from workbench.spaces import get_space
    from workbench.study import StudyConfig

    try:
        cfg = StudyConfig.from_dict(study.config)
        space = get_space(cfg.space, *cfg.shape, **cfg.space_options)
        arch = trial_architecture(space, trial)
        svg = render_svg(arch, view=view, depth=4)
    except WorkbenchError as exc:
        return f"<p><em>cannot draw trial #{trial.number}: {html.escape(str(exc))}</em></p>"
    return svg[svg.find("<svg"):]


def study_report(storage: StudyStorage, name: str, *, top_k: int = TOP_K,
                 view: str = "macro") -> str:
    """The HTML report of study ``name`` (a string; write it to a ``.html`` file). Diagrams are
    drawn in ``view`` (default ``macro``: repeated blocks drawn once, so a ResNet fits a page;
    ``dataflow`` draws every module)."""
    from workbench.diagrams import VIEWS

    if view not in VIEWS:  # refused up front, not once per diagram
        raise ConfigError(f"--view: expected one of {', '.join(VIEWS)}, found {view!r}")
    study = storage.get_study(name)
    counts = storage.count_trials(name)
    trials = [t for t in storage.trials_from(name) if t.state is TrialState.COMPLETE]
    objectives = study.objectives
    first = objectives[0]
    maximize = first.get("direction", "maximize") == "maximize"
    ranked = sorted((t for t in trials if _num(t.metrics.get(first["name"]))),
                    key=lambda t: (-t.metrics[first["name"]] if maximize
                                   else t.metrics[first["name"]], t.number))
    esc = html.escape
    done = sum(n for state, n in counts.items()  # pruned: screened out, not in the budget
               if TrialState(state).finished and TrialState(state) is not TrialState.PRUNED)
    budget = study.config.get("trials")
    parts = [f"<h1>Study {esc(name)}</h1>",
             f"<p>{esc(study.searcher)} on {esc(study.space)} / {esc(study.task)} · status "
             f"<b>{esc(study.status)}</b> · {done}{f' / {budget}' if budget else ''} trials: "
             f"{counts['complete']} complete, {counts['failed']} failed, {counts['running']} "
             f"running, {counts['queued']} queued · created {study.created_at:%Y-%m-%d %H:%M} "
             f"UTC</p>"]
    figures: list[Any] = []
    if ranked:
        figures.append(_best_so_far(trials, first))
        if len(objectives) >= 2:
            figures.insert(0, _pareto(trials, objectives))
    else:
        parts.append("<p><em>no complete trial yet</em></p>")
    for i, fig in enumerate(figures):  # plotly.js inlined once: the file works offline
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(i == 0),
                                 config={"displaylogo": False}))
    names = list(dict.fromkeys([o["name"] for o in objectives] + ["params", "flops"]))
    head = "".join(f"<th>{esc(n)}</th>" for n in ["#", *names, "seconds", "architecture"])
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in [
            t.number, *(t.metrics.get(n) for n in names), t.duration_s]) +
        f"<td><code>{esc(t.arch_text[:160])}</code></td></tr>" for t in ranked[:top_k])
    if ranked:
        parts.append(f"<h2>Top {min(top_k, len(ranked))} by {esc(first['name'])}</h2>"
                     f"<table><tr>{head}</tr>{rows}</table>")
        parts.append("<h2>Best architectures</h2>")
        for t in ranked[:DIAGRAMS]:
            parts.append(f"<h3>trial #{t.number} · {esc(first['name'])} "
                         f"{esc(_fmt(t.metrics[first['name']]))}</h3>"
                         f"<div class='diagram'>{_diagram(study, t, view)}</div>")
    config = {k: v for k, v in study.config.items() if k != "driver"}
    parts.append("<h2>Configuration</h2><pre>" + html.escape(
        json.dumps(config, indent=2, sort_keys=True), quote=False) + "</pre>")
    style = ("body{font-family:system-ui,sans-serif;margin:24px;color:#111}"
             "table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:3px 8px;"
             "text-align:left;white-space:nowrap}.diagram{overflow:auto;max-height:700px;"
             "border:1px solid #eee}pre{background:#f6f8fa;padding:8px}")
    return ("<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>Study {esc(name)}</title><style>{style}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")

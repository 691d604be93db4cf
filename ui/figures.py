"""Plotly figures of the live page: the Pareto front, best so far and learning curves.

Pure functions over already-read trials. Plots are down-sampled above :data:`MAX_PLOT_POINTS`
(the Pareto front and every best-so-far improvement are always kept exactly). Every figure
carries a ``uirevision``: plotly keeps the user's zoom and pan across refreshes for as long as
the revision stays the same (the study and the axes), so a new trial does not reset them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ui.views import direction, fmt, is_num, short
from workbench.pareto import front_2d

MAX_PLOT_POINTS = 3000  # dominated points drawn on the Pareto plot; the front always complete
WEBGL_ABOVE = 1500  # scattergl (WebGL) above this many points, SVG below (works without a GPU)
MAX_CURVES = 12


# -- figures -------------------------------------------------------------------------------------
def layout(fig: go.Figure, title: str, x: str, y: str, revision: str = "",
           height: int = 420) -> go.Figure:
    """The common look; ``revision`` (e.g. study + axes) keeps zoom and pan across refreshes."""
    # plotly_white by hand: a named template is deep-copied into every figure (~20 ms each)
    fig.update_layout(title={"text": title, "x": 0.02}, xaxis_title=x, yaxis_title=y,
                      height=height, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      template="none", plot_bgcolor="white", paper_bgcolor="white",
                      font={"color": "#2a3f5f"}, legend={"orientation": "h", "y": -0.18},
                      clickmode="event", hovermode="closest", uirevision=revision or None)
    grid = {"gridcolor": "#EBF0F8", "zerolinecolor": "#EBF0F8", "linecolor": "#EBF0F8",
            "automargin": True}
    fig.update_xaxes(**grid)
    fig.update_yaxes(**grid)
    return fig


def empty_figure(message: str) -> go.Figure:
    """A blank figure carrying a message (no data yet, bad axis ...)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": "#666"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, "", "", "")


def _hover(t, names: Sequence[str], text: bool = True) -> str:
    vals = "<br>".join(f"{n}: {fmt(t.metrics.get(n))}" for n in names)
    arch = f"<br>{short(t.arch_text, 70)}" if text else ""
    return f"<b>trial #{t.number}</b><br>{vals}{arch}"


def pareto_figure(trials: Sequence, objectives: Sequence[dict[str, Any]], x: str, y: str, *,
                  selected: int | None = None, max_points: int = MAX_PLOT_POINTS,
                  revision: str = "") -> tuple[go.Figure, list[int]]:
    """Scatter of ``y`` against ``x`` over complete trials, the non-dominated ones highlighted.

    Returns the figure and the front's trial numbers (sorted by ``x``). Each point's
    ``customdata`` is its trial number (clicking selects that trial in the UI). Above
    ``max_points`` the dominated points are thinned evenly; the front is always drawn whole.
    """
    if not x or not y:
        return empty_figure("choose two metrics"), []
    pts = [t for t in trials if is_num(t.metrics.get(x)) and is_num(t.metrics.get(y))]
    if not pts:
        return empty_figure(f"no complete trial has both {x} and {y} yet"), []
    dirs = [direction(x, objectives), direction(y, objectives)]
    front_idx = set(front_2d([(t.metrics[x], t.metrics[y]) for t in pts], dirs))
    front = sorted((pts[i] for i in front_idx), key=lambda t: (t.metrics[x], t.metrics[y]))
    rest = [t for i, t in enumerate(pts) if i not in front_idx]
    if len(rest) > max_points:
        step = len(rest) / max_points
        rest = [rest[int(i * step)] for i in range(max_points)]
    names = list(dict.fromkeys([x, y, *(o["name"] for o in objectives)]))
    scatter = go.Scattergl if len(rest) + len(front) > WEBGL_ABOVE else go.Scatter
    fig = go.Figure()
    fig.add_trace(scatter(
        x=[t.metrics[x] for t in rest], y=[t.metrics[y] for t in rest], mode="markers",
        name=f"dominated ({len(pts) - len(front)})", customdata=[t.number for t in rest],
        # no architecture text on the (many) dominated points: it would double the JSON sent
        hovertext=[_hover(t, names, text=len(rest) <= WEBGL_ABOVE) for t in rest],
        hoverinfo="text",
        marker={"color": "#9aa5b1", "size": 7, "opacity": 0.7}))
    fig.add_trace(scatter(
        x=[t.metrics[x] for t in front], y=[t.metrics[y] for t in front], mode="markers+lines",
        name=f"Pareto front ({len(front)})", customdata=[t.number for t in front],
        hovertext=[_hover(t, names) for t in front], hoverinfo="text",
        line={"shape": "hv", "color": "#d62728", "width": 1.5},
        marker={"color": "#d62728", "size": 11, "line": {"color": "#600", "width": 1}}))
    chosen = [t for t in pts if t.number == selected]
    if chosen:
        t = chosen[0]
        fig.add_trace(go.Scatter(
            x=[t.metrics[x]], y=[t.metrics[y]], mode="markers", name=f"selected #{t.number}",
            customdata=[t.number], hovertext=[_hover(t, names)], hoverinfo="text",
            marker={"symbol": "star", "size": 20, "color": "#ffbf00",
                    "line": {"color": "#000", "width": 1}}))
    arrows = {"maximize": "↑ better", "minimize": "↓ better"}
    title = f"Pareto front: {len(front)} of {len(pts)} complete trials (click a point)"
    fig = layout(fig, title, f"{x} ({arrows[dirs[0]].replace('↑', '→').replace('↓', '←')})",
                 f"{y} ({arrows[dirs[1]]})", revision=revision and f"{revision}|{x}|{y}")
    for axis, metric in ((fig.update_xaxes, x), (fig.update_yaxes, y)):
        values = [t.metrics[metric] for t in pts]
        if min(values) > 0 and max(values) / min(values) > 100:  # wide ranges (params, FLOPs)
            axis(type="log")
    return fig, [t.number for t in front]


def best_so_far(trials: Sequence, metric: str, dirn: str) -> list[tuple[int, float]]:
    """(trial number, best value so far) at every improvement, in number order."""
    out: list[tuple[int, float]] = []
    for t in trials:
        v = t.metrics.get(metric)
        if not is_num(v):
            continue
        if not out or (v > out[-1][1] if dirn == "maximize" else v < out[-1][1]):
            out.append((t.number, float(v)))
    return out


def best_so_far_figure(trials: Sequence, objectives: Sequence[dict[str, Any]],
                       metric: str | None = None, *, max_points: int = MAX_PLOT_POINTS,
                       revision: str = "") -> go.Figure:
    """Every trial's value (thinned above ``max_points``) and the best-so-far step line."""
    metric = metric or (objectives[0]["name"] if objectives else "")
    dirn = direction(metric, objectives)
    pts = [t for t in trials if is_num(t.metrics.get(metric))]
    if not pts:
        return empty_figure(f"no complete trial with {metric} yet")
    steps = best_so_far(pts, metric, dirn)
    last = pts[-1].number
    if steps[-1][0] != last:  # extend the line to the newest trial
        steps.append((last, steps[-1][1]))
    shown = pts if len(pts) <= max_points else [pts[int(i * len(pts) / max_points)]
                                                for i in range(max_points)]
    scatter = go.Scattergl if len(shown) > WEBGL_ABOVE else go.Scatter
    fig = go.Figure()
    fig.add_trace(scatter(x=[t.number for t in shown], y=[t.metrics[metric] for t in shown],
                          mode="markers", name="trial", customdata=[t.number for t in shown],
                          marker={"color": "#9aa5b1", "size": 5}, hoverinfo="x+y"))
    fig.add_trace(go.Scatter(x=[s[0] for s in steps], y=[s[1] for s in steps], mode="lines",
                             name="best so far", line={"shape": "hv", "color": "#1f77b4",
                                                       "width": 2.5}))
    return layout(fig, f"best {metric} so far: {fmt(steps[-1][1])}", "trial", metric,
                  revision=revision and f"{revision}|{metric}")


def curves_figure(curves: Mapping[int, Sequence[dict[str, Any]]], numbers: Sequence[int],
                  metric: str = "val_accuracy", revision: str = "") -> go.Figure:
    """Per-epoch learning curves of the given trials (at most :data:`MAX_CURVES`);
    ``curves`` is what ``Storage.curves`` returned for them."""
    wanted = list(dict.fromkeys(int(n) for n in numbers))[:MAX_CURVES]
    if not wanted:
        return empty_figure("select trials to see their learning curves")
    fig = go.Figure()
    for n in wanted:
        points = [p for p in curves.get(n, []) if is_num(p.get(metric))]
        if points:
            fig.add_trace(go.Scatter(
                x=[p.get("epoch", i + 1) for i, p in enumerate(points)],
                y=[p[metric] for p in points], mode="lines+markers", name=f"#{n}"))
    if not fig.data:
        return empty_figure(f"no {metric} curve stored for trial(s) "
                            f"{', '.join(map(str, wanted))}")
    return layout(fig, f"learning curves ({metric})", "epoch", metric,
                  revision=revision and f"{revision}|{metric}")

"""Pure view functions over stored studies: tables, progress text and plotly figures.

Each takes the storage (or already-loaded records) and returns plain data for one component, so
it is tested directly and reused by the benchmark. Built for studies of 10,000+ trials: tables
are paginated in SQL, plots are down-sampled (the Pareto front and every best-so-far improvement
are always kept exactly), learning curves are loaded only for the trials asked for, and the
complete trials of a study are loaded once per change of the study (see :func:`complete_trials`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from ui.control import study_state
from workbench.pareto import front_2d

MAX_PLOT_POINTS = 3000  # dominated points drawn on the Pareto plot; the front always complete
WEBGL_ABOVE = 1500  # scattergl (WebGL) above this many points, SVG below (works without a GPU)
MAX_CURVES = 12
PAGE_SIZE = 20
_MAXIMIZE_HINTS = ("acc", "score", "reward", "auc", "f1")

# Directions of well-known metrics that are not objectives of the study.
_KNOWN = {"val_accuracy": "maximize", "best_val_accuracy": "maximize",
          "test_accuracy": "maximize", "params": "minimize", "flops": "minimize",
          "latency_ms": "minimize", "peak_memory_mb": "minimize", "val_loss": "minimize",
          "train_loss": "minimize", "duration_s": "minimize"}


def direction(metric: str, objectives: Sequence[dict[str, Any]]) -> str:
    """The study's direction for an objective, else a guess from the metric's name."""
    for o in objectives:
        if o["name"] == metric:
            return o.get("direction", "maximize")
    if metric in _KNOWN:
        return _KNOWN[metric]
    return "maximize" if any(h in metric for h in _MAXIMIZE_HINTS) else "minimize"


def fmt(value: Any) -> str:
    """Numbers for tables: 4 significant digits, integers with thousands separators."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.4g}"
    return str(value)


def short(text: str, n: int = 90) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# -- studies -------------------------------------------------------------------------------------
STUDY_COLUMNS = ["study", "state", "searcher", "space", "task", "done", "failed", "running",
                 "queued", "budget", "best"]


def studies_table(storage) -> pd.DataFrame:
    """Every study with its state, counts and best value (counted in SQL), newest first."""
    configs = {r.name: r.config for r in storage.list_studies()}
    rows = []
    for s in reversed(storage.study_summaries()):
        cfg = configs.get(s["name"], {})
        rows.append([s["name"], study_state(s["status"], cfg, s["name"]), s["searcher"],
                     s["space"], s["task"], s["n_complete"], s["n_failed"], s["n_running"],
                     s["n_queued"], fmt(cfg.get("trials")), fmt(s["best"])])
    return pd.DataFrame(rows, columns=STUDY_COLUMNS)


# -- loading trials once per change ---------------------------------------------------------------
_CACHE: OrderedDict[tuple[str, str], tuple[Any, list]] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 6


def signature(storage, name: str) -> tuple:
    """Changes whenever a trial of the study is created or finished (or its status changes)."""
    rec = storage.get_study(name)
    return (rec.updated_at, rec.status, tuple(sorted(storage.count_trials(name).items())))


def complete_trials(storage, name: str, sig: tuple | None = None) -> list:
    """The study's complete trials in number order (no curves), cached until the study changes."""
    sig = signature(storage, name) if sig is None else sig
    key = (storage.url, name)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == sig:
            _CACHE.move_to_end(key)
            return hit[1]
    trials = storage.trials(name, states=["complete"])
    with _CACHE_LOCK:
        _CACHE[key] = (sig, trials)
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return trials


def metric_names(trials: Sequence, objectives: Sequence[dict[str, Any]]) -> list[str]:
    """Objectives first, then every other numeric metric seen in the trials (sampled)."""
    names = [o["name"] for o in objectives]
    step = max(1, len(trials) // 200)
    for t in trials[::step]:
        for k, v in (t.metrics or {}).items():
            if k not in names and isinstance(v, (int, float)) and not isinstance(v, bool):
                names.append(k)
    return names


# -- progress ------------------------------------------------------------------------------------
def progress_text(storage, name: str) -> str:
    """Markdown: state, trials done of the budget, failures, rate and ETA, best so far."""
    rec = storage.get_study(name)
    counts = storage.count_trials(name)
    state = study_state(rec.status, rec.config, name)
    done = counts["complete"] + counts["failed"] + counts["pruned"]
    budget = rec.config.get("trials")
    lines = [f"**{name}** · state **{state}** · {rec.searcher} on {rec.space} / {rec.task}"]
    bar = f"{done} / {budget} trials" if budget else f"{done} trials"
    if budget:
        pct = min(100.0, 100.0 * done / budget)
        bar += f" ({pct:.0f}%)"
    lines.append(f"{bar} · {counts['complete']} complete · {counts['failed']} failed · "
                 f"{counts['running']} running · {counts['queued']} queued")
    recent = storage.trials(name, states=["complete", "failed", "pruned"], order_by="finished_at",
                            descending=True, limit=20)
    stamps = [t.finished_at for t in recent if t.finished_at is not None]
    if len(stamps) >= 2 and (stamps[0] - stamps[-1]).total_seconds() > 0:
        per_trial = (stamps[0] - stamps[-1]).total_seconds() / (len(stamps) - 1)
        eta = ""
        if budget and done < budget and state in ("running", "starting"):
            eta = f" · ETA {_duration(per_trial * (budget - done))}"
        lines.append(f"{per_trial:.1f} s per trial (last {len(stamps)}){eta}")
    if rec.objectives:
        obj = rec.objectives[0]
        best = storage.trials(name, states=["complete"], order_by=f"metric:{obj['name']}",
                              descending=obj.get("direction", "maximize") == "maximize", limit=1)
        if best:
            b = best[0]
            vals = ", ".join(f"{o['name']} {fmt(b.metrics.get(o['name']))}"
                             for o in rec.objectives)
            lines.append(f"best: trial #{b.number} ({vals})")
    log = (rec.config.get("driver") or {}).get("log")
    if state == "driver gone" and log:
        lines.append(f"the driver process is gone; see its log `{log}`, then resume")
    return "  \n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def newest_and_best(storage, name: str) -> tuple[int | None, int | None]:
    """Numbers of the newest finished-or-running trial and of the best complete trial."""
    rec = storage.get_study(name)
    newest = storage.trials(name, states=["complete", "running", "failed"], descending=True,
                            limit=1)
    best = None
    if rec.objectives:
        obj = rec.objectives[0]
        top = storage.trials(name, states=["complete"], order_by=f"metric:{obj['name']}",
                             descending=obj.get("direction", "maximize") == "maximize", limit=1)
        best = top[0].number if top else None
    return (newest[0].number if newest else None), best


# -- trial table ---------------------------------------------------------------------------------
SORTS = {"number": "number", "newest first": "number", "finished": "finished_at",
         "duration": "duration_s", "state": "state"}


def sort_choices(objectives: Sequence[dict[str, Any]], metrics: Sequence[str]) -> list[str]:
    """Sort keys offered by the trial table: each metric, then the columns."""
    return [*metrics, *SORTS] if metrics else [o["name"] for o in objectives] + list(SORTS)


def trials_table(storage, name: str, *, page: int = 1, page_size: int = PAGE_SIZE,
                 sort: str = "number", descending: bool = False,
                 states: Sequence[str] | None = None) -> tuple[pd.DataFrame, str, int]:
    """One page of trials (ordered and paged in SQL): the table, a caption and the page count.

    ``sort`` is a metric name or one of :data:`SORTS`; metric sorts put the best first when
    ``descending`` is not given explicitly by the objective's direction.
    """
    rec = storage.get_study(name)
    counts = storage.count_trials(name)
    chosen = [s for s in (states or []) if s]
    total = sum(counts[s] for s in chosen) if chosen else sum(counts.values())
    pages = max(1, math.ceil(total / page_size))
    page = min(max(1, int(page or 1)), pages)
    if sort in SORTS:
        order_by, desc = SORTS[sort], descending or sort == "newest first"
    else:
        order_by = f"metric:{sort}"
        desc = (direction(sort, rec.objectives) == "maximize") != bool(descending)
    rows = storage.trials(name, states=chosen or None, offset=(page - 1) * page_size,
                          limit=page_size, order_by=order_by, descending=desc)
    names = [o["name"] for o in rec.objectives]
    extra = [m for m in ("params", "flops") if m not in names]
    cols = ["#", "state", *names, *extra, "seconds", "parents", "architecture / failure reason"]
    data = []
    for t in rows:
        text = f"✗ {t.error}" if t.error else short(t.arch_text, 120)
        data.append([t.number, t.state.value, *(fmt(t.metrics.get(n)) for n in names),
                     *(fmt(t.metrics.get(m)) for m in extra), fmt(t.duration_s),
                     ", ".join(map(str, t.parent_numbers)), text])
    caption = f"page {page} of {pages} · {total} trials" + (
        f" ({', '.join(chosen)})" if chosen else "")
    return pd.DataFrame(data, columns=cols), caption, pages


# -- figures -------------------------------------------------------------------------------------
def _layout(fig: go.Figure, title: str, x: str, y: str) -> go.Figure:
    fig.update_layout(title={"text": title, "x": 0.02}, xaxis_title=x, yaxis_title=y,
                      height=420, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      template="plotly_white", legend={"orientation": "h", "y": -0.18},
                      clickmode="event", hovermode="closest")
    return fig


def empty_figure(message: str) -> go.Figure:
    """A blank figure carrying a message (no data yet, bad axis ...)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": "#666"})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, "", "", "")


def _hover(t, names: Sequence[str]) -> str:
    vals = "<br>".join(f"{n}: {fmt(t.metrics.get(n))}" for n in names)
    return f"<b>trial #{t.number}</b><br>{vals}<br>{short(t.arch_text, 70)}"


def pareto_figure(trials: Sequence, objectives: Sequence[dict[str, Any]], x: str, y: str, *,
                  selected: int | None = None,
                  max_points: int = MAX_PLOT_POINTS) -> tuple[go.Figure, list[int]]:
    """Scatter of ``y`` against ``x`` over complete trials, the non-dominated ones highlighted.

    Returns the figure and the front's trial numbers (sorted by ``x``). Each point's
    ``customdata`` is its trial number (clicking selects that trial in the UI). Above
    ``max_points`` the dominated points are thinned evenly; the front is always drawn whole.
    """
    if not x or not y:
        return empty_figure("choose two metrics"), []
    pts = [t for t in trials if _num(t.metrics.get(x)) and _num(t.metrics.get(y))]
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
        hovertext=[_hover(t, names) for t in rest], hoverinfo="text",
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
    fig = _layout(fig, title, f"{x} ({arrows[dirs[0]].replace('↑', '→').replace('↓', '←')})",
                  f"{y} ({arrows[dirs[1]]})")
    for axis, metric in ((fig.update_xaxes, x), (fig.update_yaxes, y)):
        values = [t.metrics[metric] for t in pts]
        if min(values) > 0 and max(values) / min(values) > 100:  # wide ranges (params, FLOPs)
            axis(type="log")
    return fig, [t.number for t in front]


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def best_so_far(trials: Sequence, metric: str, dirn: str) -> list[tuple[int, float]]:
    """(trial number, best value so far) at every improvement, in number order."""
    out: list[tuple[int, float]] = []
    for t in trials:
        v = t.metrics.get(metric)
        if not _num(v):
            continue
        if not out or (v > out[-1][1] if dirn == "maximize" else v < out[-1][1]):
            out.append((t.number, float(v)))
    return out


def best_so_far_figure(trials: Sequence, objectives: Sequence[dict[str, Any]],
                       metric: str | None = None, *,
                       max_points: int = MAX_PLOT_POINTS) -> go.Figure:
    """Every trial's value (thinned above ``max_points``) and the best-so-far step line."""
    metric = metric or (objectives[0]["name"] if objectives else "")
    dirn = direction(metric, objectives)
    pts = [t for t in trials if _num(t.metrics.get(metric))]
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
    return _layout(fig, f"best {metric} so far: {fmt(steps[-1][1])}", "trial", metric)


def curves_figure(storage, name: str, numbers: Sequence[int], metric: str = "val_accuracy",
                  ) -> go.Figure:
    """Per-epoch learning curves of the given trials (at most :data:`MAX_CURVES`)."""
    wanted = list(dict.fromkeys(int(n) for n in numbers))[:MAX_CURVES]
    if not wanted:
        return empty_figure("select trials to see their learning curves")
    curves = storage.curves(name, wanted)
    fig = go.Figure()
    for n in wanted:
        points = [p for p in curves.get(n, []) if _num(p.get(metric))]
        if points:
            fig.add_trace(go.Scatter(
                x=[p.get("epoch", i + 1) for i, p in enumerate(points)],
                y=[p[metric] for p in points], mode="lines+markers", name=f"#{n}"))
    if not fig.data:
        return empty_figure(f"no {metric} curve stored for trial(s) "
                            f"{', '.join(map(str, wanted))}")
    return _layout(fig, f"learning curves ({metric})", "epoch", metric)


def parse_numbers(text: str) -> list[int]:
    """``"3, 7 12"`` -> [3, 7, 12]; ConfigError naming the bad part otherwise."""
    from workbench.errors import ConfigError

    out = []
    for part in str(text or "").replace(",", " ").split():
        part = part.lstrip("#")
        if not part.isdigit():
            raise ConfigError(f"trial numbers: expected integers like 3, 7, 12, found {part!r}")
        out.append(int(part))
    return out


def stamp() -> str:
    """Time of a refresh, shown so users see the view is live."""
    return time.strftime("%H:%M:%S")

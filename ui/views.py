"""Pure views of the live page over one :class:`ui.snapshot.StudySnapshot`: progress, the trial
table, the selected-trial header and card, axis choices; plus the studies table.

Each takes already-read data and returns plain data for one component, so it is tested directly
and reused by the benchmark. Nothing here reads the database (``studies_table`` takes the rows
``Storage.study_summaries`` returned).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from storage.records import TrialState
from ui.snapshot import StudySnapshot

PAGE_SIZE = 20
_MAXIMIZE_HINTS = ("acc", "score", "reward", "auc", "f1")

# Directions of well-known metrics that are not objectives of the study.
_KNOWN = {"val_accuracy": "maximize", "best_val_accuracy": "maximize",
          "test_accuracy": "maximize", "params": "minimize", "flops": "minimize",
          "latency_ms": "minimize", "peak_memory_mb": "minimize", "val_loss": "minimize",
          "train_loss": "minimize", "duration_s": "minimize"}


def direction(metric: str, objectives: Sequence[dict[str, Any]]) -> str:
    """The study's direction for an objective, else a guess from the metric's name.

    >>> direction("params", []), direction("my_score", []), direction("loss", [])
    ('minimize', 'maximize', 'minimize')
    """
    for o in objectives:
        if o["name"] == metric:
            return o.get("direction", "maximize")
    if metric in _KNOWN:
        return _KNOWN[metric]
    return "maximize" if any(h in metric for h in _MAXIMIZE_HINTS) else "minimize"


def fmt(value: Any) -> str:
    """Numbers for tables: 4 significant digits, integers with thousands separators.

    >>> fmt(1234567), fmt(0.912345), fmt(None)
    ('1,234,567', '0.9123', '')
    """
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


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def duration(seconds: float) -> str:
    """``75`` -> ``'1 min 15 s'``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


# -- studies -------------------------------------------------------------------------------------
STUDY_COLUMNS = ["study", "state", "searcher", "space", "task", "objectives", "done", "failed",
                 "running", "queued", "budget", "best", "elapsed", "note"]


def studies_table(summaries: Sequence[dict[str, Any]], configs: dict[str, dict[str, Any]],
                  states: dict[str, str], notes: dict[str, str] | None = None) -> pd.DataFrame:
    """Every study (newest first): state, searcher, objectives, counts, best, time since
    creation or between creation and the last change, and its note.

    ``summaries`` are ``Storage.study_summaries()`` rows, ``states`` what the UI calls each
    study's state (see :func:`ui.control.study_state`).
    """
    rows = []
    for s in reversed(list(summaries)):
        cfg = configs.get(s["name"], {})
        objs = ", ".join(f"{o['name']} {'↑' if o.get('direction') == 'maximize' else '↓'}"
                         for o in cfg.get("objectives") or [])
        elapsed = (s["updated_at"] - s["created_at"]).total_seconds() if s.get("updated_at") \
            else 0.0
        rows.append([s["name"], states.get(s["name"], s["status"]), s["searcher"], s["space"],
                     s["task"], objs, s["n_complete"], s["n_failed"], s["n_running"],
                     s["n_queued"], fmt(cfg.get("trials")), fmt(s["best"]), duration(elapsed),
                     short((notes or {}).get(s["name"], ""), 60)])
    return pd.DataFrame(rows, columns=STUDY_COLUMNS)


# -- progress ------------------------------------------------------------------------------------
def progress_text(snap: StudySnapshot, state: str) -> str:
    """Markdown: state, trials done of the budget, failures, rate and ETA, best so far."""
    rec, counts = snap.study, snap.counts
    done = sum(n for state, n in counts.items()  # pruned: screened out, not in the budget
               if TrialState(state).finished and TrialState(state) is not TrialState.PRUNED)
    budget = rec.config.get("trials")
    lines = [f"**{snap.name}** · state **{state}** · {rec.searcher} on {rec.space} / {rec.task}"]
    bar = f"{done} / {budget} trials" if budget else f"{done} trials"
    if budget:
        bar += f" ({min(100.0, 100.0 * done / budget):.0f}%)"
    pruned = f" · {counts['pruned']} pruned" if counts.get("pruned") else ""
    lines.append(f"{bar} · {counts['complete']} complete · {counts['failed']} failed{pruned} · "
                 f"{counts['running']} running · {counts['queued']} queued")
    stamps = sorted((t.finished_at for t in snap.trials[-200:] if t.finished_at is not None),
                    reverse=True)[:20]
    if len(stamps) >= 2 and (stamps[0] - stamps[-1]).total_seconds() > 0:
        per_trial = (stamps[0] - stamps[-1]).total_seconds() / (len(stamps) - 1)
        eta = ""
        if budget and done < budget and state in ("running", "starting"):
            eta = f" · ETA {duration(per_trial * (budget - done))}"
        lines.append(f"{per_trial:.1f} s per trial (last {len(stamps)}){eta}")
    b = snap.best
    if b is not None:
        vals = ", ".join(f"{n} {fmt(b.metrics.get(n))}" for n in snap.objective_names)
        lines.append(f"best: trial #{b.number} ({vals})")
    log = (rec.config.get("driver") or {}).get("log")
    if state == "driver gone" and log:
        lines.append(f"the driver process is gone; see its log `{log}`, then resume")
    if snap.notes.get(None):
        lines.append(f"note: {short(snap.notes[None], 200)}")
    return "  \n".join(lines)


def choose_axes(snap: StudySnapshot, x: str | None, y: str | None) -> tuple[list[str], str, str]:
    """The metrics offered on the Pareto axes and the axes to draw: the asked ones when the
    study has them (and they differ), else the first two objectives (or params)."""
    metrics = snap.metric_names
    objs = snap.objective_names
    y = y if y in metrics else (objs[0] if objs else "")
    x = x if x in metrics and x != y else next(
        (m for m in [*objs[1:], "params", *metrics] if m != y and m in metrics), y)
    return metrics, x, y


# -- trial table ---------------------------------------------------------------------------------
SORTS = ("number", "newest first", "finished", "duration", "state")


def sort_choices(snap: StudySnapshot) -> list[str]:
    """Sort keys offered by the trial table: the metrics, then the columns."""
    return [*snap.metric_names, *SORTS]


def _sort_key(sort: str, objectives) -> tuple[Any, bool]:
    if sort == "finished":
        return (lambda t: (t.finished_at is None, t.finished_at or datetime.min, t.number)), False
    if sort == "duration":
        return (lambda t: (t.duration_s is None, t.duration_s or 0.0, t.number)), False
    if sort == "state":
        return (lambda t: (t.state.value, t.number)), False
    if sort in ("number", "newest first"):
        return (lambda t: t.number), sort == "newest first"
    best_first = direction(sort, objectives) == "maximize"

    def key(t):  # missing values last in either direction, ties by number
        v = t.metrics.get(sort)
        ok = is_num(v)
        return (not ok, (-v if best_first else v) if ok else 0.0, t.number)
    return key, False


def filter_trials(snap: StudySnapshot, states: Sequence[str] | None = None,
                  numbers: Sequence[int] | None = None) -> list:
    """The trials in ``states`` (none: all) and, when given, among ``numbers`` (a brush)."""
    chosen = {TrialState(s) for s in states or [] if s}
    wanted = None if numbers is None else set(numbers)
    return [t for t in snap.trials if (not chosen or t.state in chosen)
            and (wanted is None or t.number in wanted)]


def trials_table(snap: StudySnapshot, *, page: int = 1, page_size: int = PAGE_SIZE,
                 sort: str = "number", descending: bool = False,
                 states: Sequence[str] | None = None,
                 numbers: Sequence[int] | None = None) -> tuple[pd.DataFrame, str, int]:
    """One page of trials: the table, a caption and the page count.

    ``sort`` is a metric (best first by its direction) or one of :data:`SORTS`; ``descending``
    reverses it. ``numbers`` keeps only those trials (the parallel-coordinates brush).
    """
    rows = filter_trials(snap, states, numbers)
    key, desc = _sort_key(sort if sort in SORTS or sort in snap.metric_names else "number",
                          snap.objectives)
    rows.sort(key=key, reverse=desc != bool(descending))
    pages = max(1, math.ceil(len(rows) / page_size))
    page = min(max(1, int(page or 1)), pages)
    shown = rows[(page - 1) * page_size: page * page_size]
    names = snap.objective_names
    extra = [m for m in ("params", "flops") if m not in names]
    cols = ["#", "state", *names, *extra, "seconds", "worker", "parents", "note",
            "architecture / failure reason"]
    data = []
    for t in shown:
        text = f"✗ {t.error}" if t.error else short(t.arch_text, 120)
        data.append([t.number, t.state.value, *(fmt(t.metrics.get(n)) for n in names),
                     *(fmt(t.metrics.get(m)) for m in extra), fmt(t.duration_s),
                     t.worker or "", ", ".join(map(str, t.parent_numbers)),
                     short(snap.notes.get(t.number, ""), 40), text])
    chosen = [s for s in (states or []) if s]
    caption = f"page {page} of {pages} · {len(rows)} trials" + (
        f" ({', '.join(chosen)})" if chosen else "") + (
        " · filtered by the parallel-coordinates brush" if numbers is not None else "")
    return pd.DataFrame(data, columns=cols), caption, pages


# -- selected trial ------------------------------------------------------------------------------
def trial_header(snap: StudySnapshot, number: int) -> str:
    """``**evo1 · trial #5** · complete · parents #2`` (the study is always named)."""
    t = snap.trial(number)
    if t is None:
        return f"**{snap.name}** has no trial #{number}"
    head = f"**{snap.name} · trial #{t.number}** · {t.state.value}"
    if t.error:
        head += f" · failed: {t.error}"
    if t.parent_numbers:
        head += f" · parents {', '.join('#' + str(p) for p in t.parent_numbers)}"
    return head


def trial_card(snap: StudySnapshot, number: int) -> str:
    """A compact card for beside the Pareto plot: header, objectives, time, note."""
    t = snap.trial(number)
    if t is None:
        return trial_header(snap, number)
    names = list(dict.fromkeys([*snap.objective_names, "params", "flops"]))
    vals = " · ".join(f"{n} **{fmt(t.metrics.get(n))}**" for n in names if n in t.metrics)
    lines = [trial_header(snap, number), vals or "no metrics (not complete)"]
    if t.duration_s is not None:
        lines.append(f"{fmt(t.duration_s)} s on {t.worker or 'an unknown worker'}")
    if snap.notes.get(t.number):
        lines.append(f"note: {short(snap.notes[t.number], 120)}")
    return "  \n".join(lines)


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


def curve_numbers(text: str, selected: int | None, best: int | None) -> tuple[list[int], str]:
    """The trials whose learning curves to draw and a message for beside the box: the box's
    numbers, or selected + best when it is blank or bad (a bad box never blocks anything else).

    >>> curve_numbers("3, x9", 5, 1)
    ([5, 1], "⚠ trial numbers: expected integers like 3, 7, 12, found 'x9'; showing #5, #1")
    """
    from workbench.errors import ConfigError

    default = [n for n in dict.fromkeys([selected, best]) if n is not None]
    try:
        numbers = parse_numbers(text)
    except ConfigError as exc:
        shown = ", ".join(f"#{n}" for n in default) or "nothing"
        return default, f"⚠ {exc}; showing {shown}"
    return (numbers or default), ""


def parse_trial_number(text: Any) -> int | None:
    """``"#5"`` -> 5; blank -> None; ConfigError for anything else."""
    from workbench.errors import ConfigError

    raw = "" if text is None else str(text).strip().lstrip("#")
    if not raw:
        return None
    if not raw.isdigit():
        raise ConfigError(f"trial #: expected a trial number like 5, found {text!r}")
    return int(raw)


def stamp() -> str:
    """Time of a refresh, shown so users see the view is live."""
    return time.strftime("%H:%M:%S")

"""Pareto utilities for several objectives with mixed directions.

Every function takes points as rows of objective values and one direction per column
(``"maximize"`` / ``"minimize"``); internally points are oriented so that smaller is better.

>>> pts = [(0.9, 100), (0.8, 50), (0.7, 80), (0.9, 120)]
>>> dirs = ["maximize", "minimize"]
>>> non_dominated(pts, dirs)
[0, 1]
>>> nondominated_ranks(pts, dirs)
[0, 0, 1, 1]
>>> hypervolume([(0.9, 100), (0.8, 50)], dirs, reference=(0.0, 200))
130.0
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from storage.records import TrialState
from workbench.errors import ConfigError

Point = Sequence[float]


def _oriented(points: Sequence[Point], directions: Sequence[str]) -> list[tuple[float, ...]]:
    """Rows turned into 'smaller is better' tuples; checks lengths and direction names."""
    signs = []
    for i, d in enumerate(directions):
        if d not in ("maximize", "minimize"):
            raise ConfigError(f"pareto: expected direction maximize or minimize for objective {i}, "
                              f"found {d!r}")
        signs.append(-1.0 if d == "maximize" else 1.0)
    out = []
    for j, p in enumerate(points):
        if len(p) != len(signs):
            raise ConfigError(f"pareto: expected {len(signs)} values per point (one per direction), "
                              f"found {len(p)} in point {j}")
        out.append(tuple(s * float(v) for s, v in zip(signs, p)))
    return out


def _dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def dominates(a: Point, b: Point, directions: Sequence[str]) -> bool:
    """True when ``a`` is at least as good as ``b`` everywhere and better somewhere.

    >>> dominates((1, 1), (2, 2), ["minimize", "minimize"])
    True
    """
    oa, ob = _oriented([a, b], directions)
    return _dominates(oa, ob)


def nondominated_ranks(points: Sequence[Point], directions: Sequence[str]) -> list[int]:
    """Front index of every point (0 = non-dominated), by repeated peeling (NSGA-II's sort)."""
    pts = _oriented(points, directions)
    n = len(pts)
    dominated_by = [0] * n  # how many points dominate i
    dominating: list[list[int]] = [[] for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if _dominates(pts[i], pts[j]):
                dominating[i].append(j)
                dominated_by[j] += 1
            elif _dominates(pts[j], pts[i]):
                dominating[j].append(i)
                dominated_by[i] += 1
    ranks = [0] * n
    front = [i for i in range(n) if dominated_by[i] == 0]
    rank = 0
    while front:
        nxt = []
        for i in front:
            ranks[i] = rank
            for j in dominating[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    nxt.append(j)
        front, rank = nxt, rank + 1
    return ranks


def non_dominated(points: Sequence[Point], directions: Sequence[str]) -> list[int]:
    """Indices of the non-dominated points, in input order (duplicates all kept).

    Two objectives take an O(n log n) sweep (the UI plots fronts of 10,000 trials); more take
    the pairwise sort.

    >>> non_dominated([(1, 5), (2, 4), (2, 6), (3, 1)], ["maximize", "maximize"])
    [2, 3]
    """
    if len(directions) == 2:
        return front_2d(points, directions)
    return [i for i, r in enumerate(nondominated_ranks(points, directions)) if r == 0]


def front_2d(points: Sequence[Point], directions: Sequence[str]) -> list[int]:
    """Non-dominated indices of a 2-D set by a sweep over x (ties all kept), in input order."""
    pts = _oriented(points, directions)  # both minimised now
    order = sorted(range(len(pts)), key=lambda i: pts[i][0])
    out: list[int] = []
    best_y = math.inf  # best y among points with a strictly smaller x
    k = 0
    while k < len(order):
        j = k
        while j < len(order) and pts[order[j]][0] == pts[order[k]][0]:
            j += 1
        group = order[k:j]
        low = min(pts[i][1] for i in group)
        if low < best_y:
            out.extend(i for i in group if pts[i][1] == low)
        best_y = min(best_y, low)
        k = j
    return sorted(out)


def crowding_distance(points: Sequence[Point]) -> list[float]:
    """NSGA-II crowding distance of each point within one front (boundary points: infinity).

    Direction does not matter: distances are symmetric.

    >>> crowding_distance([(0, 4), (1, 2), (4, 0)])
    [inf, 2.0, inf]
    """
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    dist = [0.0] * n
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][m])
        lo, hi = float(points[order[0]][m]), float(points[order[-1]][m])
        dist[order[0]] = dist[order[-1]] = math.inf
        if hi == lo:
            continue
        for k in range(1, n - 1):
            i = order[k]
            dist[i] += (float(points[order[k + 1]][m]) - float(points[order[k - 1]][m])) / (hi - lo)
    return dist


def crowded_order(points: Sequence[Point], directions: Sequence[str]) -> list[int]:
    """Indices best-first by (front rank, larger crowding distance), NSGA-II's comparison; ties
    keep input order so the result is deterministic.

    >>> crowded_order([(1, 5), (2, 2), (5, 1), (3, 3)], ["minimize", "minimize"])
    [0, 2, 1, 3]
    """
    ranks = nondominated_ranks(points, directions)
    crowd = [0.0] * len(points)
    for r in set(ranks):
        members = [i for i, x in enumerate(ranks) if x == r]
        for i, d in zip(members, crowding_distance([points[i] for i in members])):
            crowd[i] = d
    return sorted(range(len(points)), key=lambda i: (ranks[i], -crowd[i], i))


def hypervolume(points: Sequence[Point], directions: Sequence[str], reference: Point,
                *, bounds: Sequence[tuple[float, float]] | None = None) -> float:
    """Hypervolume dominated by ``points`` and bounded by ``reference`` (computed by moocore).

    Points not strictly better than the reference in every objective contribute nothing.
    ``bounds`` (one ``(low, high)`` per objective) rescales every objective to [0, 1] first, so
    objectives on different scales (accuracy vs parameters) weigh alike; the reference is rescaled
    the same way.

    >>> hypervolume([(2, 1), (1, 2)], ["minimize", "minimize"], reference=(3, 3))
    3.0
    >>> hypervolume([(0.9, 1e6)], ["maximize", "minimize"], (0.0, 2e6), bounds=[(0, 1), (0, 2e6)])
    0.45
    """
    import numpy as np

    ref_pt = list(reference)
    pts = [list(p) for p in points]
    if bounds is not None:
        if len(bounds) != len(directions):
            raise ConfigError(f"hypervolume: expected {len(directions)} bounds, found {len(bounds)}")

        def scale(p):
            return [(v - lo) / (hi - lo) if hi != lo else 0.0 for v, (lo, hi) in zip(p, bounds)]
        pts, ref_pt = [scale(p) for p in pts], scale(ref_pt)
    opts = _oriented(pts, directions)
    (oref,) = _oriented([ref_pt], directions)
    inside = [p for p in opts if all(x < r for x, r in zip(p, oref))]
    if not inside:
        return 0.0
    import moocore

    return round(float(moocore.hypervolume(np.asarray(inside, dtype=float), ref=np.asarray(oref))),
                 12)


# -- a study's front ------------------------------------------------------------------------------
@dataclass(frozen=True)
class FrontPoint:
    """One non-dominated trial: its number, objective values, fidelity and architecture text."""

    number: int
    values: tuple[float, ...]
    fidelity: float | None
    arch: str


@dataclass(frozen=True)
class StudyFront:
    """The non-dominated complete trials of a study and their normalised hypervolume.

    ``hypervolume`` rescales each objective to [0, 1] over the range of the study's complete
    trials, with the reference point at the worst value of each, so it lies in [0, 1] (``None``
    with no complete trial). ``trials`` counts the complete trials that have every objective.
    """

    objectives: tuple[tuple[str, str], ...]  # (name, direction)
    trials: int
    hypervolume: float | None
    front: tuple[FrontPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"objectives": [{"name": n, "direction": d} for n, d in self.objectives],
                "trials": self.trials, "hypervolume": self.hypervolume,
                "front": [{"number": f.number, "values": list(f.values), "fidelity": f.fidelity,
                           "arch": f.arch} for f in self.front]}


def front_of(trials: Iterable[Any], objectives: Sequence[Any]) -> StudyFront:
    """The front of finished trials (records with ``state``, ``metrics``, ``number``,
    ``fidelity``, ``arch_text``) for objectives given as dicts (``{"name", "direction"}``) or
    :class:`~workbench.searchers.Objective` values. Only complete trials with every objective
    count; the others cannot be placed.

    >>> from types import SimpleNamespace as T
    >>> from storage.records import TrialState
    >>> rows = [T(state=TrialState.COMPLETE, metrics={"acc": a, "params": p}, number=i, fidelity=None,
    ...           arch_text=f"a{i}") for i, (a, p) in enumerate([(0.9, 10), (0.8, 5), (0.7, 9)])]
    >>> f = front_of(rows, [{"name": "acc", "direction": "maximize"},
    ...                     {"name": "params", "direction": "minimize"}])
    >>> [p.number for p in f.front], round(f.hypervolume, 3)
    ([0, 1], 0.5)
    """
    objs = tuple((o["name"], o.get("direction", "maximize")) if isinstance(o, dict)
                 else (o.name, o.direction) for o in objectives)
    rows, points = [], []
    for t in trials:
        if TrialState(t.state) is not TrialState.COMPLETE:
            continue
        try:
            values = tuple(float(t.metrics[n]) for n, _ in objs)
        except (KeyError, TypeError, ValueError):
            continue
        if not all(math.isfinite(v) for v in values):
            continue
        rows.append(t)
        points.append(values)
    dirs = [d for _, d in objs]
    idx = non_dominated(points, dirs) if points else []
    hv = None
    if points:
        bounds = [(min(p[k] for p in points), max(p[k] for p in points)) for k in range(len(objs))]
        worst = [lo if d == "maximize" else hi for (lo, hi), d in zip(bounds, dirs)]
        hv = hypervolume([points[i] for i in idx], dirs, worst, bounds=bounds)
    return StudyFront(objs, len(points), hv, tuple(
        FrontPoint(rows[i].number, points[i], rows[i].fidelity, rows[i].arch_text) for i in idx))


def study_front(storage: Any, name: str) -> StudyFront:
    """:func:`front_of` over a stored study's complete trials."""
    study = storage.get_study(name)
    return front_of(storage.trials(name, states=[TrialState.COMPLETE]), study.objectives)


# ``wb.pareto(study)`` (the public API) and this module share a name: importing the submodule sets
# ``workbench.pareto`` to the module, so the module itself answers the call.
class _CallableModule(types.ModuleType):
    def __call__(self, study: Any, **kwargs: Any) -> StudyFront:
        from workbench.api import pareto

        return pareto(study, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

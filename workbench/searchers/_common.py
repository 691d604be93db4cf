"""Helpers shared by searchers: recording the decision points of an architecture, ranking
results on one or several objectives.

>>> from workbench.spaces import get_space
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> arch = space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
>>> [(p.path, len(p.options), c) for p, c in record_points(space, arch)][-1]
('root/edge_3_2', 5, 'skip_connect')
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

from workbench.architecture import Architecture, Choice, DecisionPoint
from workbench.pareto import crowded_order
from workbench.searchers.base import Objective, Result


def record_points(space, arch: Architecture) -> list[tuple[DecisionPoint, Choice]]:
    """Replay ``arch`` and return every decision point it meets with the choice made there, so a
    searcher can see the option sets (which are not stored with the decisions)."""
    from workbench.spaces import _match

    table = arch.choices
    seen: list[tuple[DecisionPoint, Choice]] = []

    def policy(point: DecisionPoint) -> Choice:
        choice = _match(point, table[point.path])
        seen.append((point, choice))
        return choice

    space.derive(policy, random.Random(0), backtrack=False)
    return seen


def option_digest(point: DecisionPoint) -> str:
    """A short digest of a point's option set (or continuous range): two points with the same
    path and digest offer the same choices."""
    if point.continuous:
        key = f"range:{point.low}:{point.high}:{point.log}:{point.integer}"
    else:
        key = "|".join(f"{type(o).__name__}:{o}" for o in point.options)
    return hashlib.sha1(key.encode()).hexdigest()[:6]


def derived_seed(rng: random.Random) -> int:
    """A 31-bit seed for a library generator, drawn from the ask's generator."""
    return rng.randrange(2**31 - 1)


def signed_values(result: Result, objectives: Sequence[Objective]) -> tuple[float, ...]:
    """Objective values as quantities to maximise."""
    return tuple(o.signed(float(v)) for o, v in zip(objectives, result.values or ()))


def best_first(results: Sequence[Result], objectives: Sequence[Objective]) -> list[int]:
    """Indices of complete ``results`` best-first: by the objective for one, by NSGA-II's crowded
    comparison (front rank, then crowding distance) for several. Ties keep input order."""
    idx = [i for i, r in enumerate(results) if r.ok]
    if len(objectives) == 1:
        return sorted(idx, key=lambda i: (-signed_values(results[i], objectives)[0], i))
    pts = [signed_values(results[i], objectives) for i in idx]
    order = crowded_order(pts, ["maximize"] * len(objectives))
    return [idx[k] for k in order]

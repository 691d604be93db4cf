"""Repeated evaluation of one architecture with K training seeds, inside one trial.

The trial's metrics are those of the repeats combined: every numeric metric that the seed
can change (the ``SEED_METRICS`` always, and any other number that differs between repeats)
becomes the mean over the repeats, with ``<metric>_mean``, ``<metric>_sd`` (sample standard
deviation) and ``<metric>_repeats`` (the K values, in seed order) beside it, so the objective
(e.g. ``val_accuracy``) is the mean and users see the evaluation noise next to it. Numbers
equal in every repeat (params, flops, steps) are kept as they are; ``repeats`` says K and
``wall_time_s`` is the mean per repeat (the trial's duration is their sum). The curve is the
point-wise mean over the repeats, with ``val_accuracy_sd`` per point. One failed repeat fails
the trial, with its error.

>>> from storage.records import TrialState
>>> from workbench.trainer import EvalResult
>>> runs = [EvalResult(TrialState.COMPLETE, {"val_accuracy": v, "params": 10}, ({"epoch": 1,
...         "val_accuracy": v},)) for v in (0.5, 0.7, 0.6)]
>>> out = combine(runs)
>>> out.metrics["val_accuracy"], out.metrics["val_accuracy_sd"], out.metrics["params"]
(0.6, 0.1, 10)
>>> out.metrics["val_accuracy_repeats"], out.curve[0]["val_accuracy"]
([0.5, 0.7, 0.6], 0.6)
>>> seeds = [repeat_seed(7, r) for r in range(3)]
>>> seeds[0], len(set(seeds))
(7, 3)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from storage.records import TrialState
from workbench.errors import ConfigError
from workbench.trainer import EvalResult

SEED_METRICS = ("val_accuracy", "best_val_accuracy", "val_loss", "test_accuracy", "train_loss")
MAX_REPEATS = 100


def check_repeats(repeats) -> int:
    """``repeats`` as an int in ``[1, MAX_REPEATS]``, else a ConfigError."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= MAX_REPEATS:
        raise ConfigError(f"--repeats: expected an int in [1, {MAX_REPEATS}], found {repeats!r}")
    return repeats


def repeat_seed(seed: int, repeat: int) -> int:
    """The training seed of repeat ``repeat`` (0-based) of a trial whose seed is ``seed``: repeat
    0 is the trial's own seed, so ``repeats=1`` trains exactly as before; the others are derived
    from it like every seed (:func:`workbench.seeds.derive_seed`)."""
    from workbench.seeds import derive_seed

    return seed if repeat == 0 else derive_seed(seed, "repeat", repeat)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 12)  # rounding hides last-bit noise of the sum


def _sd(values: list[float]) -> float:
    return round(statistics.stdev(values), 12) if len(values) > 1 else 0.0


def combine(runs: Sequence) -> EvalResult:
    """One result from K runs (objects with ``state``, ``metrics``, ``curve``, ``error``)."""
    if not runs:
        raise ConfigError("expected at least one repeat to combine, found none")
    for i, run in enumerate(runs):
        if run.state != TrialState.COMPLETE:
            metrics = dict(run.metrics, repeats=len(runs), failed_repeat=i)
            error = f"repeat {i + 1} of {len(runs)}: {run.error}"
            return EvalResult(TrialState.FAILED, metrics, tuple(run.curve), error=error)
    if len(runs) == 1:
        return EvalResult(TrialState.COMPLETE, dict(runs[0].metrics), tuple(runs[0].curve))
    metrics = dict(runs[0].metrics)
    for key, first in runs[0].metrics.items():
        values = [run.metrics.get(key) for run in runs]
        if not all(_number(v) for v in values):
            continue
        if key in SEED_METRICS or any(v != first for v in values):
            metrics.update({key: _mean(values), f"{key}_mean": _mean(values),
                            f"{key}_sd": _sd(values), f"{key}_repeats": values})
    metrics["repeats"] = len(runs)
    return EvalResult(TrialState.COMPLETE, metrics, _mean_curve(runs))


def _mean_curve(runs: Sequence) -> tuple[dict, ...]:
    """Point-wise mean of the curves over the common length (time budgets may differ)."""
    curve = []
    for points in zip(*(run.curve for run in runs)):
        point = dict(points[0])
        for key in point:
            values = [p.get(key) for p in points]
            if key not in ("epoch", "step") and all(_number(v) for v in values):
                point[key] = _mean(values)
        accs = [p.get("val_accuracy") for p in points]
        if all(_number(v) for v in accs):
            point["val_accuracy_sd"] = _sd(accs)
        curve.append(point)
    return tuple(curve)

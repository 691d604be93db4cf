"""Every result is checked before it is stored: a wrong result shown as right is worse than a crash.

:func:`check_result` says why a finished evaluation must be recorded as failed, or ``None`` when it
may be stored as it is. A trial fails when an objective is missing, not a number, or not finite,
when its metrics cannot be stored as JSON or exceed :data:`MAX_METRICS_BYTES`, or when its
learning curve is not a list of at most :data:`MAX_CURVE_POINTS` points of numbers. Artifacts
(trained weights) are capped at :data:`MAX_ARTIFACT_BYTES` per trial.

>>> from workbench.searchers import Objective
>>> objs = [Objective("val_accuracy")]
>>> check_result({"val_accuracy": 0.9}, [], objs) is None
True
>>> check_result({"val_accuracy": float("nan")}, [], objs)
'objective val_accuracy: expected a finite number, found nan'
>>> check_result({}, [], objs)
'objective val_accuracy: expected a finite number, found no value'
>>> check_result({"val_accuracy": "0.9"}, [], objs)
"objective val_accuracy: expected a finite number, found '0.9'"
>>> check_result({"val_accuracy": 1.0, "blob": "x" * 2_000_000}, [], objs)
'metrics: expected at most 1,000,000 bytes of JSON, found 2,000,033'
>>> check_result({"val_accuracy": 1.0}, [{"epoch": 1, "loss": "high"}], objs)
"curve point 0: expected numbers, found 'high' for 'loss'"
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Sequence
from typing import Any

from storage.errors import StorageError
from storage.jsondata import clean_json

MAX_METRICS_BYTES = 1_000_000  # JSON of one trial's metrics
MAX_CURVE_POINTS = 10_000  # points of one trial's learning curve
MAX_ARTIFACT_BYTES = 2 * 1024**3  # one stored artifact (e.g. weights.safetensors)


def finite_number(value: Any) -> bool:
    """A real number (not a bool, not a string) that is finite."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(float(value)))


def check_objectives(metrics: dict, objectives: Sequence[Any]) -> str | None:
    for o in objectives:
        value = metrics.get(o.name)
        if not finite_number(value):
            found = "no value" if o.name not in metrics else _show(value)
            return f"objective {o.name}: expected a finite number, found {found}"
    return None


def check_storable(metrics: Any, curve: Any) -> str | None:
    """Why the metrics or the curve cannot be stored, or None."""
    if not isinstance(metrics, dict):
        return f"metrics: expected a dict, found {type(metrics).__name__}"
    try:
        data = clean_json(metrics, "metrics")
    except StorageError as exc:
        return str(exc)
    size = len(json.dumps(data))
    if size > MAX_METRICS_BYTES:
        return f"metrics: expected at most {MAX_METRICS_BYTES:,} bytes of JSON, found {size:,}"
    if not isinstance(curve, (list, tuple)):
        return f"curve: expected a list of points, found {type(curve).__name__}"
    if len(curve) > MAX_CURVE_POINTS:
        return f"curve: expected at most {MAX_CURVE_POINTS:,} points, found {len(curve):,}"
    for i, point in enumerate(curve):
        if not isinstance(point, dict):
            return f"curve point {i}: expected a dict of numbers, found {type(point).__name__}"
        for key, value in point.items():
            if value is not None and not (isinstance(value, numbers.Real)
                                          and not isinstance(value, bool)):
                return f"curve point {i}: expected numbers, found {_show(value)} for {key!r}"
    return None


def check_result(metrics: Any, curve: Any, objectives: Sequence[Any]) -> str | None:
    """Why a complete evaluation must be recorded as failed, or None."""
    return check_storable(metrics, curve) or check_objectives(metrics, objectives)


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."

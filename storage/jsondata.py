"""What can be stored as JSON: :func:`clean_json` turns a value into JSON data or says why not.

The engine checks every trial's metrics with it before storing them (a metric that cannot be
stored fails its trial with the reason), and the storage applies it to everything it writes.
"""

from __future__ import annotations

import math
from typing import Any

from storage.errors import StorageError

MAX_DEPTH = 64  # nesting levels of stored JSON (a deeper value is refused, not a RecursionError)


def clean_json(value: Any, where: str, *, _depth: int = 0) -> Any:
    """A JSON-storable copy of ``value``.

    Non-finite floats become ``None`` (JSON has no NaN, and PostgreSQL rejects it; a NaN loss is
    recorded by the trial's error instead); tuples become lists; numpy/torch scalars and arrays
    become Python numbers and lists through their ``tolist()``.

    >>> clean_json({"loss": float("nan"), "shape": (3, 4), "ok": True}, "metrics")
    {'loss': None, 'shape': [3, 4], 'ok': True}
    >>> clean_json({"f": object}, "metrics")
    Traceback (most recent call last):
    ...
    storage.errors.StorageError: cannot store metrics['f']: expected JSON data (numbers, strings, lists, dicts), found type
    """
    if _depth > MAX_DEPTH:
        raise StorageError(f"cannot store {where}: nesting deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean_json(v, f"{where}[{k!r}]", _depth=_depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v, f"{where}[{i}]", _depth=_depth + 1) for i, v in enumerate(value)]
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return clean_json(tolist(), where, _depth=_depth + 1)
    raise StorageError(f"cannot store {where}: expected JSON data (numbers, strings, lists, "
                       f"dicts), found {type(value).__name__}")

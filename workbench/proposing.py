"""What the driver does with a searcher's proposal before it trains anything.

:func:`storable_info` makes a proposal's ``info`` fit to store with its trial: JSON data (through
:func:`storage.jsondata.clean_json`) of at most :data:`MAX_INFO_BYTES`; anything else is dropped
with a logged warning, never failing the trial.

>>> storable_info({"fidelity": 3, "surrogate_spearman": float("nan")}, "trial 0")
{'fidelity': 3, 'surrogate_spearman': None}
>>> storable_info({"blob": "x" * 70_000}, "trial 0") is None
True
"""

from __future__ import annotations

import json
import logging
from typing import Any

from storage.errors import StorageError
from storage.jsondata import clean_json

log = logging.getLogger(__name__)
MAX_INFO_BYTES = 64 * 1024  # JSON of one proposal's info stored with its trial
STATIC_LIMITS = {"max_params": "params_total", "max_flops": "flops"}  # key -> static metric


def check_proposing(cfg: Any) -> None:
    """A study config's proxies, pre-filter and constraints, or a one-line ConfigError."""
    from workbench.errors import ConfigError
    from workbench.proxies import parse_prefilter, parse_proxies

    if isinstance(cfg.proxies, str) or tuple(parse_proxies(cfg.proxies)) != tuple(cfg.proxies):
        found = cfg.proxies if isinstance(cfg.proxies, str) else list(cfg.proxies)
        raise ConfigError(f"--proxies: expected a tuple of distinct names, found {found!r}")
    if cfg.prefilter is not None:
        parse_prefilter(cfg.prefilter)
    unknown = set(cfg.constraints) - set(STATIC_LIMITS)
    if unknown:
        raise ConfigError(f"constraints: expected max_params or max_flops, found {unknown}")


def storable_info(info: Any, where: str) -> dict | None:
    """``info`` as JSON data to store with a trial, or ``None`` (nothing to store, or it could not
    be stored: not JSON data or over :data:`MAX_INFO_BYTES`, with a warning naming ``where``)."""
    if not info:
        return None
    try:
        data = clean_json(dict(info), "info")
    except (StorageError, TypeError, ValueError) as exc:
        log.warning("%s: searcher info not stored: %s", where, exc)
        return None
    size = len(json.dumps(data))
    if size > MAX_INFO_BYTES:
        log.warning("%s: searcher info not stored: expected at most %s bytes of JSON, found %s",
                    where, f"{MAX_INFO_BYTES:,}", f"{size:,}")
        return None
    return data

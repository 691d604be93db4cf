"""Importing user code named ``module:function`` (spaces, evaluators), the one way.

>>> import_object("json:dumps", "--evaluator").__name__
'dumps'
>>> import_object("json", "--evaluator")
Traceback (most recent call last):
...
workbench.errors.ConfigError: --evaluator: expected module:function, found 'json'
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from workbench.errors import ConfigError, NotFound


def import_object(spec: str, what: str) -> Any:
    """Import ``module:attribute``; like ``python -m``, the working directory is searched too (a
    console script does not put it on sys.path, and workers inherit the driver's cwd)."""
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ConfigError(f"{what}: expected module:function, found {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj = getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        raise NotFound(f"{what} {spec}: module {exc.name!r} not found "
                       f"(is it on PYTHONPATH?)") from None
    except AttributeError:
        raise NotFound(f"{what} {spec}: module {module!r} has no {attr!r}") from None
    except Exception as exc:  # a module that fails at import: SyntaxError, anything it raises
        raise ConfigError(f"{what} {spec}: importing {module!r} failed "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                          ) from None
    if not callable(obj):
        raise ConfigError(f"{what} {spec}: expected a callable, found {type(obj).__name__}")
    return obj

"""Argument parsing shared by the CLI modules."""

from __future__ import annotations

from workbench.errors import ConfigError


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` -> ``(3, 32, 32)``."""
    try:
        dims = tuple(int(x) for x in text.replace("x", ",").split(",") if x.strip())
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ConfigError(f"--input: expected positive integers like 3,32,32, found {text!r}")
    return dims

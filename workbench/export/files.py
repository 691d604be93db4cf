"""Files of the exporters: the output path checked before any work, atomic writes, and
safetensors weights read back (no pickle is involved).

>>> import tempfile, pathlib
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = write_atomic(pathlib.Path(tmp) / "sub" / "a.json", b"{}")
...     path.read_bytes(), sorted(p.name for p in path.parent.iterdir())
(b'{}', ['a.json'])
>>> check_writable(tempfile.gettempdir())  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
workbench.errors.ConfigError: --out: expected a file path, found a directory at ...
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.errors import ConfigError, NotFound

if TYPE_CHECKING:  # torch is imported where it is used, so the CLI checks arguments instantly
    import torch

__all__ = ["check_writable", "load_weights", "weights_from_bytes", "write_atomic"]


def check_writable(out_path: str | os.PathLike) -> Path:
    """Fail early (before any export work) when ``out_path`` cannot be written."""
    path = Path(out_path)
    if path.is_dir():
        raise ConfigError(f"--out: expected a file path, found a directory at {path}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(f"--out: expected a writable location, found {path} "
                          f"({parent} is not a writable directory)")
    return path


def write_atomic(path: Path, data: bytes) -> Path:
    """Write atomically (temporary file + rename), so a failed export leaves no partial file."""
    check_writable(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise ConfigError(f"--out: expected a writable location, found {path} "
                          f"({exc.strerror or exc})") from None
    return path


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file written by :func:`~workbench.export.export` (no pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise NotFound(f"weights: expected a safetensors file, found no file at {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ConfigError(f"weights: expected a safetensors file at {path}, found unreadable "
                          f"data ({exc})") from None


def weights_from_bytes(data: bytes, where: str) -> dict[str, torch.Tensor]:
    """Parse safetensors bytes (e.g. a stored artifact); ``where`` names them in errors."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError) as exc:
        raise ConfigError(f"{where}: expected safetensors weights, found unreadable data "
                          f"({exc})") from None

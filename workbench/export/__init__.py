"""Export a discovered architecture: JSON, standalone PyTorch source, TorchScript, torch.export,
ONNX, weights (safetensors) and diagrams.

* :mod:`.formats` -- the format table (one frozen :class:`Format` each) and :func:`export`;
* :mod:`.files` -- output paths checked before any work, atomic writes, weights read back;
* :mod:`.source` -- standalone ``.py``: the compiled module tree walked by registered emitters;
* :mod:`.fx` -- the ``forward`` of a space's own modules, traced with torch.fx, as source;
* :mod:`.writer` -- the source writer both of them write through (lines, the file around them).

Nothing here imports torch until an export runs, so the CLI checks its arguments instantly.

>>> import json, tempfile, pathlib
>>> from workbench.spaces import get_space
>>> arch = get_space("einspace", (3, 8, 8), 10).parse(
...     "sequential[computation[linear(16)], computation[relu]]")
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = export(arch, "weights", pathlib.Path(tmp) / "w.safetensors", seed=3)
...     sorted(load_weights(path))
['backbone.0.bias', 'backbone.0.weight', 'head.fc.bias', 'head.fc.weight']
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

from workbench.errors import UnsupportedExport
from workbench.export.files import check_writable, load_weights, weights_from_bytes
from workbench.export.formats import (
    EXAMPLE_BATCH,
    FORMAT_TABLE,
    FORMATS,
    ONNX_OPSET,
    SUFFIXES,
    WEIGHTED,
    Format,
    build_model,
    check_format,
    export,
    export_bytes,
    get_format,
)

# The source generator imports torch: loaded on first use.
_FROM_SOURCE = ("to_python_source", "check_source", "emitter")

__all__ = ["EXAMPLE_BATCH", "FORMATS", "FORMAT_TABLE", "Format", "ONNX_OPSET", "SUFFIXES",
           "UnsupportedExport", "WEIGHTED", "build_model", "check_format", "check_writable",
           "export", "export_bytes", "get_format", "load_weights", "weights_from_bytes",
           *_FROM_SOURCE]


def __getattr__(name: str) -> Any:
    if name in _FROM_SOURCE:
        from workbench.export import source

        return getattr(source, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ``wb.export(arch, fmt, out)`` (the public API) and this package share a name: importing the
# package sets ``workbench.export`` to it, so the package itself answers the call.
class _CallableModule(types.ModuleType):
    def __call__(self, arch: Any, fmt: str, out_path: str | os.PathLike, **kwargs: Any) -> Path:
        return export(arch, fmt, out_path, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

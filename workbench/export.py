"""Export a discovered architecture: JSON, standalone PyTorch source, TorchScript, torch.export,
ONNX, weights (safetensors) and diagrams.

Every format that carries weights is made from one model, ``compile_model(arch, seed=seed)`` with
``state_dict`` loaded over it when given, so two exports of one architecture agree with each other
and across runs. Models are exported in eval mode (BatchNorm uses its running statistics).

* ``json`` -- :meth:`Architecture.to_dict` plus ``metrics``/``seed``: loads back with
  :func:`workbench.architecture.from_json`, ``workbench info FILE.json`` and as a seed.
* ``py`` -- :func:`to_python_source`: one file importing only torch, state_dict keys as compiled.
* ``torchscript`` -- ``torch.jit.trace``: the networks have no data-dependent control flow, so a
  trace is exact, and it covers every module (scripting would need type-annotated ops).
* ``pt2`` -- ``torch.export.export`` + ``torch.export.save``, batch dimension dynamic.
* ``onnx`` -- the dynamo exporter (opset 18), falling back to the TorchScript-based exporter.
* ``weights`` -- the state_dict as safetensors (:func:`load_weights` reads it back).
* ``svg`` -- the diagram from :mod:`workbench.diagrams`.

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

import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import types
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.architecture import Architecture
from workbench.errors import ConfigError, InvalidArchitecture, NotFound, WorkbenchError

if TYPE_CHECKING:  # torch is imported where it is used, so the CLI checks arguments instantly
    import torch
    from torch import nn

log = logging.getLogger(__name__)


class UnsupportedExport(WorkbenchError, ValueError):
    """An export format cannot represent this architecture (the message says why)."""

FORMATS = ("json", "py", "torchscript", "pt2", "onnx", "weights", "svg")
SUFFIXES = {"json": ".json", "py": ".py", "torchscript": ".pt", "pt2": ".pt2", "onnx": ".onnx",
            "weights": ".safetensors", "svg": ".svg"}
WEIGHTED = frozenset({"torchscript", "pt2", "onnx", "weights"})  # formats that carry weights
ONNX_OPSET = 18
EXAMPLE_BATCH = 2

__all__ = ["FORMATS", "UnsupportedExport", "build_model", "check_writable", "export",
           "export_bytes", "load_weights", "to_python_source"]


def to_python_source(arch: Architecture, model: nn.Module | None = None) -> str:
    """Standalone PyTorch source for ``arch`` (see :mod:`workbench.export_source`)."""
    from workbench.export_source import to_python_source as generate

    return generate(arch, model)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, found {fmt!r}")
    return fmt


def build_model(arch: Architecture, *, seed: int = 0,
                state_dict: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """The compiled model in eval mode: weights from ``seed``, or ``state_dict`` loaded strictly."""
    from workbench.compiler import compile_model

    model = compile_model(arch, seed=seed)
    if state_dict is not None:
        want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        got = {k: tuple(v.shape) for k, v in state_dict.items()}
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        wrong = [k for k in want if k in got and want[k] != got[k]]
        if missing or extra or wrong:
            found = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                     else f"{wrong[0]} of shape {list(got[wrong[0]])}, not {list(want[wrong[0]])}")
            raise InvalidArchitecture(
                f"weights: expected the {len(want)} tensors of architecture {arch.hash}, "
                f"found {found} ({len(missing)} missing, {len(extra)} unexpected, "
                f"{len(wrong)} of the wrong shape)")
        model.load_state_dict(dict(state_dict), strict=True)
    return model.eval()


def load_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file written by :func:`export` (no pickle is involved)."""
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
    """Parse safetensors bytes (e.g. a stored artifact)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        return load(data)
    except (SafetensorError, ValueError) as exc:
        raise ConfigError(f"{where}: expected safetensors weights, found unreadable data "
                          f"({exc})") from None


# -- writing --------------------------------------------------------------------------------------
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


def _write(path: Path, data: bytes) -> Path:
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


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The torch exporters print progress and warn about optional extras; keep the CLI's
    stdout/stderr for our own one-line messages."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo",
                                               "torch.fx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _why(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[0][:200] if lines else 'no message'}"


# -- formats --------------------------------------------------------------------------------------
def _example(arch: Architecture) -> torch.Tensor:
    import torch

    gen = torch.Generator().manual_seed(0)
    return torch.randn(EXAMPLE_BATCH, *arch.input_shape, generator=gen)


def _json(arch: Architecture, model: Callable[[], nn.Module], seed: int,
          metrics: Mapping[str, Any] | None) -> bytes:
    data = arch.to_dict()
    data["seed"] = seed
    if metrics:
        data["metrics"] = dict(metrics)
    try:
        return (json.dumps(data, indent=2) + "\n").encode()
    except TypeError as exc:
        raise ConfigError(f"json: expected JSON-serialisable metrics, found {exc}") from None


def _py(arch: Architecture, model: Callable[[], nn.Module], seed: int, metrics: Any) -> bytes:
    from workbench.export_source import check_source

    m = model()
    source = to_python_source(arch, m)
    check_source(source, m)
    return source.encode()


def _weights(arch: Architecture, model: Callable[[], nn.Module], seed: int, metrics: Any) -> bytes:
    from safetensors.torch import save

    state = {k: v.detach().contiguous().clone() for k, v in model().state_dict().items()}
    meta = {"space": arch.space, "version": arch.version, "hash": arch.hash, "seed": seed,
            "input_shape": list(arch.input_shape), "num_classes": arch.num_classes}
    # One metadata key: safetensors writes its metadata map in arbitrary order, and a single
    # entry keeps the file byte-for-byte reproducible.
    return save(state, metadata={"workbench": json.dumps(meta, sort_keys=True)})


def _torchscript(arch: Architecture, model: Callable[[], nn.Module], seed: int,
                 metrics: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    try:
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(model(), _example(arch), check_trace=False)
            torch.jit.save(traced, buf)
    except Exception as exc:  # noqa: BLE001 (any tracer failure is reported as unsupported)
        raise UnsupportedExport(f"format torchscript unsupported for this architecture: "
                                f"torch.jit.trace failed ({_why(exc)})") from None
    return buf.getvalue()


def _exported_program(arch: Architecture, m: nn.Module):
    """torch.export with a dynamic batch dimension, or a static one where the graph needs it."""
    import torch

    x = _example(arch)
    batch = {0: torch.export.Dim("batch", min=1, max=65536)}
    try:
        return torch.export.export(m, (x,), dynamic_shapes=(batch,))
    except Exception as first:  # noqa: BLE001 (retry without the dynamic batch)
        log.info("torch.export with a dynamic batch failed (%s); exporting a static batch",
                 _why(first))
        return torch.export.export(m, (x,))


def _pt2(arch: Architecture, model: Callable[[], nn.Module], seed: int, metrics: Any) -> bytes:
    import torch

    buf = io.BytesIO()
    try:
        with _quiet():
            torch.export.save(_exported_program(arch, model()), buf)
    except Exception as exc:  # noqa: BLE001
        raise UnsupportedExport(f"format pt2 unsupported for this architecture: "
                                f"torch.export failed ({_why(exc)})") from None
    return buf.getvalue()


def _onnx(arch: Architecture, model: Callable[[], nn.Module], seed: int, metrics: Any) -> bytes:
    import onnx
    import torch

    m, x = model(), _example(arch)
    errors = []
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        path = Path(tmp) / "model.onnx"
        try:  # the dynamo exporter: current and maintained
            program = torch.onnx.export(
                m, (x,), dynamo=True, opset_version=ONNX_OPSET, input_names=["input"],
                output_names=["logits"],
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=65536)},))
            program.save(str(path), external_data=False)
        except Exception as exc:  # noqa: BLE001 (fall back to the TorchScript-based exporter)
            errors.append(f"dynamo exporter: {_why(exc)}")
            try:
                torch.onnx.export(m, (x,), str(path), dynamo=False, opset_version=ONNX_OPSET,
                                  input_names=["input"], output_names=["logits"],
                                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            except Exception as exc2:  # noqa: BLE001
                errors.append(f"TorchScript exporter: {_why(exc2)}")
                raise UnsupportedExport(f"format onnx unsupported for this architecture: "
                                        f"{'; '.join(errors)}") from None
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except Exception as exc:  # noqa: BLE001
            raise UnsupportedExport(f"format onnx unsupported for this architecture: the "
                                    f"exported graph fails onnx.checker ({_why(exc)})") from None
        return path.read_bytes()


def _svg(arch: Architecture, model: Any, seed: int, metrics: Any) -> bytes:
    try:
        from workbench import diagrams
    except ModuleNotFoundError as exc:
        if exc.name != "workbench.diagrams":
            raise
        raise UnsupportedExport("format svg needs the diagram module (workbench.diagrams), "
                                "which is not installed") from None
    return diagrams.render(arch, fmt="svg")


_WRITERS = {"json": _json, "py": _py, "torchscript": _torchscript, "pt2": _pt2, "onnx": _onnx,
            "weights": _weights, "svg": _svg}


def export_bytes(arch: Architecture, fmt: str, *, seed: int = 0,
                 state_dict: Mapping[str, torch.Tensor] | None = None,
                 metrics: Mapping[str, Any] | None = None) -> bytes:
    """The exported file's content (see :func:`export`)."""
    check_format(fmt)
    cache: list[nn.Module] = []

    def model() -> nn.Module:  # compiled on demand: json and svg need no weights
        if not cache:
            cache.append(build_model(arch, seed=seed, state_dict=state_dict))
        return cache[0]

    return _WRITERS[fmt](arch, model, seed, metrics)


def export(arch: Architecture, fmt: str, out_path: str | os.PathLike, *, seed: int = 0,
           state_dict: Mapping[str, torch.Tensor] | None = None,
           metrics: Mapping[str, Any] | None = None) -> Path:
    """Write ``arch`` as ``fmt`` (one of :data:`FORMATS`) to ``out_path`` and return the path.

    Weights are ``state_dict`` (trained, loaded strictly) or else initialised from ``seed``.
    ``metrics`` are recorded in the JSON form. Raises :class:`UnsupportedExport` when a format
    cannot represent the architecture, :class:`~workbench.errors.ConfigError` for a bad format or
    an unwritable path -- before any work is done.
    """
    check_format(fmt)
    path = check_writable(out_path)
    data = export_bytes(arch, fmt, seed=seed, state_dict=state_dict, metrics=metrics)
    return _write(path, data)


# ``wb.export(arch, fmt, out)`` (the public API) and this module share a name: importing the
# submodule sets ``workbench.export`` to the module, so the module itself answers the call.
class _CallableModule(types.ModuleType):
    def __call__(self, arch: Architecture, fmt: str, out_path: str | os.PathLike,
                 **kwargs: Any) -> Path:
        return export(arch, fmt, out_path, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

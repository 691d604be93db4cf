"""The export formats: one frozen :class:`Format` per format in :data:`FORMAT_TABLE` (name, file
suffix, what it needs, description, whether it carries weights, the function making its bytes),
and :func:`export` / :func:`export_bytes` over it.

Every format that carries weights is made from one model, ``compile_model(arch, seed=seed)`` with
``state_dict`` loaded over it when given, so two exports of one architecture agree with each other
and across runs. Models are exported in eval mode (BatchNorm uses its running statistics).

* ``json`` -- :meth:`Architecture.to_dict` plus ``metrics``/``seed``: loads back with
  :func:`workbench.architecture.from_json`, ``workbench info FILE.json`` and as a seed.
* ``py`` -- :func:`workbench.export.source.to_python_source`: one file importing only torch,
  state_dict keys as compiled.
* ``torchscript`` -- ``torch.jit.trace``: the networks have no data-dependent control flow, so a
  trace is exact, and it covers every module (scripting would need type-annotated ops).
* ``pt2`` -- ``torch.export.export`` + ``torch.export.save``, batch dimension dynamic.
* ``onnx`` -- the dynamo exporter (opset 18), falling back to the TorchScript-based exporter.
* ``weights`` -- the state_dict as safetensors (:func:`~workbench.export.files.load_weights`).
* ``svg`` -- the diagram from :mod:`workbench.diagrams`.

>>> [f.name for f in FORMAT_TABLE.values() if f.weighted]
['torchscript', 'pt2', 'onnx', 'weights']
>>> get_format("onnx").suffix, get_format("onnx").extra
('.onnx', 'export')
>>> get_format("tflite")
Traceback (most recent call last):
...
workbench.errors.ConfigError: --format: expected one of json, py, torchscript, pt2, onnx, weights, svg, found 'tflite'
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from workbench.architecture import Architecture
from workbench.errors import ConfigError, InvalidArchitecture, UnsupportedExport
from workbench.export.files import check_writable, write_atomic

if TYPE_CHECKING:  # torch is imported where it is used, so the CLI checks arguments instantly
    import torch
    from torch import nn

log = logging.getLogger(__name__)


ONNX_OPSET = 18
EXAMPLE_BATCH = 2

__all__ = ["FORMATS", "FORMAT_TABLE", "Format", "SUFFIXES", "WEIGHTED", "build_model",
           "check_format", "export", "export_bytes", "get_format"]

# (arch, model on demand, seed, metrics) -> the file's bytes
FormatWriter = Callable[[Architecture, Callable[[], "nn.Module"], int, "Mapping[str, Any] | None"],
                        bytes]


@dataclass(frozen=True)
class Format:
    """One export format: everything the library, the CLI and the UI know about it."""

    name: str  # --format value
    suffix: str  # file suffix, with the dot
    description: str  # what the file is and what loads it back
    write: FormatWriter  # makes the file's bytes
    weighted: bool = False  # carries weights (trained ones when given, else from the seed)
    extra: str | None = None  # the install extra it needs: pip install 'nas-workbench[extra]'


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
    from workbench.export.source import check_source, to_python_source

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
            if program is None:  # only the TorchScript path returns None; caught just below
                raise RuntimeError("torch.onnx.export returned no ONNXProgram")
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


FORMAT_TABLE: Mapping[str, Format] = MappingProxyType({f.name: f for f in (
    Format("json", ".json", "Architecture.to_dict() + seed (+ metrics); loads with from_json and "
           "`workbench info FILE.json`", _json),
    Format("py", ".py", "standalone PyTorch source importing only torch; Network() takes the "
           "exported weights with strict=True", _py),
    Format("torchscript", ".pt", "torch.jit.trace of the model; torch.jit.load", _torchscript,
           weighted=True),
    Format("pt2", ".pt2", "torch.export.export + torch.export.save, dynamic batch; "
           "torch.export.load(path).module()", _pt2, weighted=True),
    Format("onnx", ".onnx", f"ONNX opset {ONNX_OPSET} (dynamo exporter, TorchScript exporter as "
           f"fallback), checked by onnx.checker; onnxruntime.InferenceSession", _onnx,
           weighted=True, extra="export"),
    Format("weights", ".safetensors", "the compiled model's state_dict as safetensors; "
           "workbench.export.load_weights", _weights, weighted=True),
    Format("svg", ".svg", "the circuit diagram (workbench.diagrams; needs graphviz's dot on the "
           "PATH)", _svg),
)})

# Views of the table under the names callers have always imported.
FORMATS: tuple[str, ...] = tuple(FORMAT_TABLE)
SUFFIXES: Mapping[str, str] = MappingProxyType({f.name: f.suffix for f in FORMAT_TABLE.values()})
WEIGHTED: frozenset[str] = frozenset(f.name for f in FORMAT_TABLE.values() if f.weighted)


def get_format(fmt: str) -> Format:
    """The :class:`Format` named ``fmt``; a :class:`~workbench.errors.ConfigError` otherwise."""
    try:
        return FORMAT_TABLE[fmt]
    except (KeyError, TypeError):
        raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, "
                          f"found {fmt!r}") from None


def check_format(fmt: str) -> str:
    """``fmt`` when it names a format (see :func:`get_format`)."""
    return get_format(fmt).name


def export_bytes(arch: Architecture, fmt: str, *, seed: int = 0,
                 state_dict: Mapping[str, torch.Tensor] | None = None,
                 metrics: Mapping[str, Any] | None = None) -> bytes:
    """The exported file's content (see :func:`export`)."""
    form = get_format(fmt)
    cache: list[nn.Module] = []

    def model() -> nn.Module:  # compiled on demand: json and svg need no weights
        if not cache:
            cache.append(build_model(arch, seed=seed, state_dict=state_dict))
        return cache[0]

    return form.write(arch, model, seed, metrics)


def export(arch: Architecture, fmt: str, out_path: str | os.PathLike, *, seed: int = 0,
           state_dict: Mapping[str, torch.Tensor] | None = None,
           metrics: Mapping[str, Any] | None = None) -> Path:
    """Write ``arch`` as ``fmt`` (one of :data:`FORMATS`) to ``out_path`` and return the path.

    Weights are ``state_dict`` (trained, loaded strictly) or else initialised from ``seed``.
    ``metrics`` are recorded in the JSON form. Raises
    :class:`~workbench.errors.UnsupportedExport` when a format cannot represent the
    architecture, :class:`~workbench.errors.ConfigError` for a bad format or an unwritable path --
    before any work is done.
    """
    check_format(fmt)
    path = check_writable(out_path)
    data = export_bytes(arch, fmt, seed=seed, state_dict=state_dict, metrics=metrics)
    return write_atomic(path, data)

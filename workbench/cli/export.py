"""``workbench export``: write an architecture (or a stored trial) as json, py, torchscript, pt2,
onnx, weights or svg.

::

    workbench export resnet18 --space einspace --input 3,32,32 --classes 10 --format onnx --out r.onnx
    workbench export --study demo --trial 3 --format py --out best.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from workbench.cli import app
from workbench.cli.common import CLASSES, INPUT, SPACE, STORAGE, open_storage, parse_shape
from workbench.errors import ConfigError
from workbench.export import FORMATS  # names from the format table (no torch at import)

FORMAT_HELP = " | ".join(FORMATS)


@app.command("export")
def export_cmd(
        arch: str | None = typer.Argument(None, help="Seed name, bracket string or JSON file "
                                                     "(or use --study/--trial)."),
        fmt: str = typer.Option(..., "--format", "-f", help=FORMAT_HELP),
        out: Path = typer.Option(..., "--out", "-o", help="Output file."),
        space: str = SPACE, input: str = INPUT, classes: int = CLASSES,
        seed: int = typer.Option(0, "--seed", help="Initialise weights from this seed (when no "
                                                   "trained weights are stored)."),
        study: str | None = typer.Option(None, "--study", help="Export a trial of this study."),
        trial: int | None = typer.Option(None, "--trial", help="Trial number within --study."),
        storage: str | None = STORAGE,
) -> None:
    """Export an architecture: JSON, standalone PyTorch source, TorchScript, torch.export, ONNX,
    safetensors weights or an SVG diagram."""
    from workbench import export as ex

    ex.check_format(fmt)
    ex.check_writable(out)
    if (study is None) != (trial is None):
        raise ConfigError("expected --study and --trial together, found only "
                          + ("--study" if study is not None else "--trial"))
    if study is not None and arch is not None:
        raise ConfigError(f"expected either ARCH or --study/--trial, found both ({arch!r} and "
                          f"--study {study})")
    if study is None and arch is None:
        raise ConfigError("expected ARCH (seed name, bracket string or JSON file) or "
                          "--study NAME --trial N, found neither")
    if study is not None:
        assert trial is not None
        a, state, metrics = _from_storage(storage, study, trial)
        if state is None and ex.get_format(fmt).weighted:
            typer.echo(f"note: study {study!r} trial {trial} has no stored weights; exporting "
                       f"weights initialised from --seed {seed}", err=True)
    else:
        from workbench.spaces import get_space

        assert arch is not None
        a = get_space(space, parse_shape(input), classes).resolve(arch)
        state, metrics = None, None
    path = ex.export(a, fmt, out, seed=seed, state_dict=state, metrics=metrics)
    typer.echo(f"wrote {fmt} of {a.space} architecture {a.hash} to {path}")


def _from_storage(url: str | None, study: str, number: int) -> tuple[Any, Any, dict | None]:
    """The trial's architecture (replayed from its decisions), trained weights if stored, metrics."""
    from workbench.api import Study
    from workbench.export import weights_from_bytes

    with open_storage(url) as st:
        handle = Study(st, study)
        arch = handle.architecture(number)
        rec = st.get_trial(study, number, with_curve=False)
        blob = st.get_artifact(study, number, "weights.safetensors")
    where = f"study {study!r} trial {number} artifact weights.safetensors"
    state = weights_from_bytes(blob, where) if blob is not None else None
    return arch, state, dict(rec.metrics or {}) or None

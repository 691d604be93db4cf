"""``workbench diagram``: draw one architecture to an SVG or PNG file (format from the extension)."""

from __future__ import annotations

from pathlib import Path

import typer

from workbench.cli import app
from workbench.cli.common import parse_shape
from workbench.cli.core import CLASSES, INPUT, SPACE
from workbench.diagrams import DEFAULT_DEPTH
from workbench.errors import ConfigError

EXTENSIONS = {".svg": "svg", ".png": "png", ".dot": "dot", ".gv": "dot"}


def parse_depth(text: str) -> int | None:
    """``"3"`` -> 3, ``"all"`` -> None (draw everything).

    >>> parse_depth("2"), parse_depth("all")
    (2, None)
    """
    if text.strip().lower() in ("all", "none", "full"):
        return None
    try:
        depth = int(text)
    except ValueError:
        depth = -1
    if depth < 0:
        raise ConfigError(f"--depth: expected a non-negative integer or 'all', found {text!r}")
    return depth


def output_format(path: Path) -> str:
    """The drawing format named by a file's extension.

    >>> output_format(Path("net.PNG"))
    'png'
    """
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(f"--out: expected a file ending in {', '.join(EXTENSIONS)}, "
                          f"found {str(path)!r}")
    return fmt


@app.command()
def diagram(arch: str = typer.Argument(..., help="Seed name, bracket string or JSON file."),
            out: Path = typer.Option(..., "--out", "-o", help="Output file: .svg, .png or .dot."),
            space: str = SPACE, input: str = INPUT, classes: int = CLASSES,
            view: str = typer.Option("dataflow", "--view",
                                     help="dataflow | macro (repeats drawn once) | tree."),
            depth: str = typer.Option(str(DEFAULT_DEPTH), "--depth",
                                      help="Collapse modules nested deeper than N; 'all' draws "
                                           "everything.")) -> None:
    """Draw an architecture as a circuit diagram (dataflow) or its derivation tree."""
    from workbench import diagrams
    from workbench.spaces import get_space

    fmt = output_format(out)
    d = parse_depth(depth)
    if view not in diagrams.VIEWS:
        raise ConfigError(f"--view: expected one of {', '.join(diagrams.VIEWS)}, found {view!r}")
    a = get_space(space, parse_shape(input), classes).resolve(arch)
    source = diagrams.to_dot(a, view=view, depth=d)
    data = source.encode() if fmt == "dot" else diagrams.render_dot(source, fmt)
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write {str(out)!r} ({exc.strerror})") from None
    typer.echo(f"wrote {out} ({len(data) / 1024:.1f} kB, {a.nodes} tree nodes)")

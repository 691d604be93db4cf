"""``workbench sample | info | spaces``."""

from __future__ import annotations

import json

import typer

from workbench.cli import app
from workbench.cli.common import CLASSES, INPUT, SPACE, parse_shape


@app.command()
def sample(space: str = SPACE, input: str = INPUT, classes: int = CLASSES,
           n: int = typer.Option(5, "-n", help="How many architectures."),
           seed: int = typer.Option(0, "--seed", help="Random seed.")) -> None:
    """Print N random architectures from a space, one per line."""
    import random

    from workbench.spaces import get_space

    sp = get_space(space, parse_shape(input), classes)
    rng = random.Random(seed)
    for _ in range(n):
        typer.echo(sp.sample(rng).text)


@app.command()
def info(arch: str = typer.Argument(..., help="Seed name, bracket string or JSON file."),
         space: str = SPACE, input: str = INPUT, classes: int = CLASSES,
         as_json: bool = typer.Option(False, "--json", help="One JSON object.")) -> None:
    """Parameters, FLOPs, shapes and size of one architecture."""
    from workbench.metrics import static_metrics
    from workbench.spaces import get_space

    sp = get_space(space, parse_shape(input), classes)
    a = sp.resolve(arch)
    m = static_metrics(a)
    if as_json:
        m["decisions_list"] = [[d.path, d.choice] for d in a.decisions]
        typer.echo(json.dumps(m))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{a.space} architecture {a.hash}", show_header=False)
    for key in ("params_backbone", "params_total", "flops", "output_shape", "logits_shape",
                "nodes", "depth", "decisions"):
        v = m[key]
        t.add_row(key, f"{v:,}" if isinstance(v, int) else str(v))
    Console().print(t)
    typer.echo(a.text)


@app.command()
def spaces(as_json: bool = typer.Option(False, "--json", help="A JSON list.")) -> None:
    """List the registered search spaces."""
    from workbench.spaces import get_space, list_spaces

    rows = []
    for e in list_spaces():
        size = get_space(e.name, e.example_input, 10).size()
        rows.append({"name": e.name, "kind": e.kind, "size": size, "description": e.description,
                     "example_input": list(e.example_input)})
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        shown = "infinite" if r["size"] is None else f"{r['size']:,}"
        typer.echo(f"{r['name']:<16} {r['kind']:<8} size {shown:<24} {r['description']}")

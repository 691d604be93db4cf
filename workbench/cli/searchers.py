"""``workbench searchers | pareto``: the searcher registry and a study's Pareto front."""

from __future__ import annotations

import json

import typer

from workbench.cli import app
from workbench.cli.common import JSON, STORAGE, open_storage, short


def searcher_rows() -> list[dict]:
    """One dict per registered searcher: name, summary, multi_objective, options.

    >>> rows = {r["name"]: r for r in searcher_rows()}
    >>> rows["evolution"]["options"][0]["name"], rows["evolution"]["multi_objective"]
    ('population', True)
    >>> rows["sha"]["versus_random"].startswith("not meant to beat random")
    True
    """
    from workbench.searchers import list_searchers

    rows = []
    for cls in list_searchers():
        rows.append({
            "name": cls.name, "summary": cls.summary, "multi_objective": cls.multi_objective,
            "versus_random": cls.versus_random,
            "options": [{"name": k, "default": o.default, "type": o.type.__name__, "help": o.help}
                        for k, o in cls.options.items()],
        })
    return rows


@app.command()
def searchers(as_json: bool = JSON) -> None:
    """List the searchers with their options (pass them as --searcher-opt key=value)."""
    rows = searcher_rows()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        mo = "one or several objectives" if r["multi_objective"] else "one objective"
        typer.echo(f"{r['name']:<10} {r['summary']} ({mo})")
        typer.echo(f"    vs random: {r['versus_random']}")
        for o in r["options"]:
            typer.echo(f"    {o['name']}={o['default']!r} ({o['type']}): {o['help']}")


@app.command()
def pareto(name: str = typer.Argument(..., help="Study name."), as_json: bool = JSON,
           storage: str | None = STORAGE) -> None:
    """The study's non-dominated trials (its Pareto front) and their hypervolume."""
    from workbench.pareto import study_front

    out = {"study": name, **study_front(open_storage(storage), name).to_dict()}
    if as_json:
        typer.echo(json.dumps(out))
        return
    names = ", ".join(f"{o['name']} ({o['direction'][:3]})" for o in out["objectives"])
    hv = "n/a" if out["hypervolume"] is None else f"{out['hypervolume']:.4f}"
    typer.echo(f"study {name}: {len(out['front'])} of {out['trials']} complete trials on the "
               f"front of {names}; normalised hypervolume {hv}")
    for f in out["front"]:
        values = "  ".join(f"{v:.6g}" for v in f["values"])
        typer.echo(f"  #{f['number']:<5} {values}  {short(f['arch'], 80)}")

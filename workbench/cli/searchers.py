"""``workbench searchers | pareto``: the searcher registry and a study's Pareto front."""

from __future__ import annotations

import json

import typer

from workbench.cli import app


def searcher_rows() -> list[dict]:
    """One dict per registered searcher: name, summary, multi_objective, options.

    >>> rows = {r["name"]: r for r in searcher_rows()}
    >>> rows["evolution"]["options"][0]["name"], rows["evolution"]["multi_objective"]
    ('population', True)
    """
    from workbench.searchers import list_searchers

    rows = []
    for cls in list_searchers():
        rows.append({
            "name": cls.name, "summary": cls.summary, "multi_objective": cls.multi_objective,
            "options": [{"name": k, "default": o.default, "type": o.type.__name__, "help": o.help}
                        for k, o in cls.options.items()],
        })
    return rows


@app.command()
def searchers(as_json: bool = typer.Option(False, "--json", help="A JSON list.")) -> None:
    """List the searchers with their options (pass them as --searcher-opt key=value)."""
    rows = searcher_rows()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        mo = "one or several objectives" if r["multi_objective"] else "one objective"
        typer.echo(f"{r['name']:<10} {r['summary']} ({mo})")
        for o in r["options"]:
            typer.echo(f"    {o['name']}={o['default']!r} ({o['type']}): {o['help']}")


def study_front(storage, name: str) -> dict:
    """The non-dominated complete trials of a study and their normalised hypervolume.

    The hypervolume rescales each objective to [0, 1] over the range of the study's complete
    trials, with the reference point at the worst value of each (so it lies in [0, 1]).
    """
    from workbench.pareto import hypervolume, non_dominated

    study = storage.get_study(name)
    objectives = [(o["name"], o.get("direction", "maximize")) for o in study.objectives]
    trials = storage.trials(name, states=["complete"])
    rows, points = [], []
    for t in trials:
        try:
            values = [float(t.metrics[n]) for n, _ in objectives]
        except (KeyError, TypeError, ValueError):
            continue  # a complete trial without every objective cannot be placed
        rows.append(t)
        points.append(values)
    dirs = [d for _, d in objectives]
    front = non_dominated(points, dirs) if points else []
    hv = None
    if points:
        bounds = [(min(p[k] for p in points), max(p[k] for p in points))
                  for k in range(len(objectives))]
        worst = [lo if d == "maximize" else hi for (lo, hi), d in zip(bounds, dirs)]
        hv = hypervolume([points[i] for i in front], dirs, worst, bounds=bounds)
    return {
        "study": name,
        "objectives": [{"name": n, "direction": d} for n, d in objectives],
        "trials": len(points),
        "hypervolume": hv,
        "front": [{"number": rows[i].number, "values": points[i], "fidelity": rows[i].fidelity,
                   "arch": rows[i].arch_text} for i in front],
    }


@app.command()
def pareto(name: str = typer.Argument(..., help="Study name."),
           as_json: bool = typer.Option(False, "--json", help="One JSON object."),
           storage: str | None = typer.Option(None, "--storage", help="SQLAlchemy URL (default: "
                                              "./workbench.db or $WORKBENCH_STORAGE).")) -> None:
    """The study's non-dominated trials (its Pareto front) and their hypervolume."""
    from storage import Storage

    out = study_front(Storage(storage), name)
    if as_json:
        typer.echo(json.dumps(out))
        return
    names = ", ".join(f"{o['name']} ({o['direction'][:3]})" for o in out["objectives"])
    hv = "n/a" if out["hypervolume"] is None else f"{out['hypervolume']:.4f}"
    typer.echo(f"study {name}: {len(out['front'])} of {out['trials']} complete trials on the "
               f"front of {names}; normalised hypervolume {hv}")
    for f in out["front"]:
        values = "  ".join(f"{v:.6g}" for v in f["values"])
        typer.echo(f"  #{f['number']:<5} {values}  {f['arch'][:80]}")

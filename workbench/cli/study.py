"""``workbench search | resume | stop | studies | trials | show``."""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from storage.protocol import StudyStorage
from storage.records import TrialState
from workbench.cli import app
from workbench.cli.common import (
    CONSTRAINT,
    JSON,
    PREFILTER,
    PROXIES,
    QUIET,
    SPACE,
    STORAGE,
    open_storage,
    parse_shape,
    short,
)


def _kv(pairs: list[str], what: str) -> dict:
    """``key=value`` options; values parsed as JSON where they parse (numbers, bools)."""
    from workbench.errors import ConfigError

    out = {}
    for p in pairs:
        key, sep, raw = p.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what}: expected key=value, found {p!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


@app.command()
def search(
    space: str = SPACE,
    task: str = typer.Option("mnist1d", "--task", "-t",
                             help="mnist1d | digits | synthetic | npz:PATH | npy:PATH | "
                                  "folder:PATH | cifar10:PATH | cifar100:PATH | mnist:PATH "
                                  "(docs/tasks.md)."),
    task_opt: list[str] = typer.Option([], "--task-opt",
                                       help="key=value (repeatable), e.g. augment=crop+flip."),
    searcher: str = typer.Option("random", "--searcher", help="See `workbench searchers`."),
    searcher_opt: list[str] = typer.Option([], "--searcher-opt", help="key=value (repeatable)."),
    space_opt: list[str] = typer.Option([], "--space-opt", help="key=value (repeatable)."),
    trials: int | None = typer.Option(20, "--trials", "-n", help="Trials to finish."),
    max_seconds: float | None = typer.Option(None, "--max-seconds",
                                                help="Wall-clock budget of this run."),
    objectives: str = typer.Option("acc", "--objectives",
                                   help="acc, params, flops, latency, or metric:max|min."),
    max_params: int | None = typer.Option(None, "--max-params", help="Parameter cap."),
    max_flops: int | None = typer.Option(None, "--max-flops",
                                         help="FLOPs cap (one input); checked before training."),
    proxies: str = PROXIES,
    prefilter: str | None = PREFILTER,
    constraint: list[str] = CONSTRAINT,
    epochs: int = typer.Option(5, "--epochs", help="Training epochs per trial (an epoch is a "
                               "pass or 50 steps, whichever is more)."),
    steps: int | None = typer.Option(None, "--steps", min=1,
                                     help="Optimizer steps per trial (instead of --epochs)."),
    repeats: int = typer.Option(1, "--repeats", min=1, max=100,
                                help="Training seeds per trial; objective = their mean."),
    batch_size: int = typer.Option(128, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    optimizer: str = typer.Option("adamw", "--optimizer", help="adamw | sgd"),
    workers: int = typer.Option(1, "--workers", "-w", help="Parallel trials."),
    executor: str = typer.Option("process", "--executor", help="process | inline | ray"),
    ray_address: str | None = typer.Option(None, "--ray-address",
                                              help="auto | HOST:PORT (default: start local)."),
    gpus_per_trial: float = typer.Option(0, "--gpus-per-trial"),
    cpus_per_trial: float = typer.Option(1, "--cpus-per-trial"),
    max_retries: int = typer.Option(2, "--max-retries",
                                    help="Ray: re-runs of a trial whose worker died."),
    timeout: float | None = typer.Option(None, "--timeout", help="Seconds per trial."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda | cuda:N"),
    trials_per_gpu: str | None = typer.Option(None, "--trials-per-gpu",
                                              help="Trials at once per GPU: N or auto."),
    compile: bool = typer.Option(False, "--compile/--no-compile",
                                 help="torch.compile candidates (eager fallback)."),
    evaluator: str | None = typer.Option(None, "--evaluator",
                                            help="module:function replacing training."),
    input: str | None = typer.Option(None, "--input", help="Input shape (custom evaluators)."),
    classes: int | None = typer.Option(None, "--classes"),
    keep_weights: str = typer.Option("none", "--keep-weights", help="none | all | top:K"),
    memory_limit: str | None = typer.Option(None, "--memory-limit",
                                            help="Per-trial memory cap, e.g. 4GB (process "
                                                 "executor): past it a trial fails as out of "
                                                 "memory."),
    seed: int = typer.Option(0, "--seed"),
    study: str | None = typer.Option(None, "--study", help="Study name (default: generated)."),
    storage: str | None = STORAGE,
    quiet: bool = QUIET,
) -> None:
    """Create a study and run it, with a live progress bar."""
    from workbench.proposing import parse_constraint
    from workbench.proxies import parse_proxies
    from workbench.study import StudyConfig, create_study, parse_memory, parse_objectives

    ray: dict[str, Any] = {}
    if executor == "ray":
        ray = {"address": ray_address, "gpus_per_trial": gpus_per_trial,
               "cpus_per_trial": cpus_per_trial, "max_retries": max_retries}
    cfg = StudyConfig(
        space=space, space_options=_kv(space_opt, "--space-opt"), task=task,
        task_options=_kv(task_opt, "--task-opt"), searcher=searcher,
        searcher_options=_kv(searcher_opt, "--searcher-opt"),
        objectives=parse_objectives(objectives),
        constraints={**{k: v for k, v in (("max_params", max_params), ("max_flops", max_flops))
                        if v}, **dict(parse_constraint(c) for c in constraint)},
        proxies=parse_proxies(proxies), prefilter=prefilter, trials=trials,
        max_seconds=max_seconds,
        budget={"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
                **({"steps": steps} if steps else {}), **({"compile": True} if compile else {})},
        repeats=repeats,
        trials_per_gpu=(int(trials_per_gpu) if trials_per_gpu and trials_per_gpu.isdigit()
                        else trials_per_gpu),
        seed=seed, workers=workers, executor=executor, timeout=timeout, device=device,
        evaluator=evaluator, keep_weights=keep_weights,
        memory_limit_mb=parse_memory(memory_limit) if memory_limit else None,
        input_shape=parse_shape(input) if input else None, num_classes=classes, ray=ray)
    db = open_storage(storage, create=True)
    name = study or f"{space}-{searcher}-{time.strftime('%Y%m%d-%H%M%S')}"
    if executor == "ray":  # a bad --ray-address must not leave an empty study behind
        from workbench.executors import make_executor

        make_executor("ray", workers=workers, timeout=timeout, **ray).shutdown()
    create_study(db, name, cfg)
    typer.echo(f"study {name} in {db.url}")
    try:
        _run(db, name, quiet)
    except Exception:
        # a search that could not start (workers, devices, the database) leaves no empty study
        if not db.trials(name, limit=1):
            db.delete_study(name)
        raise


@app.command()
def resume(name: str = typer.Argument(..., help="Study name."), storage: str | None = STORAGE,
           quiet: bool = QUIET) -> None:
    """Continue a study: finished trials are kept, trials that were running are re-run."""
    db = open_storage(storage)
    db.get_study(name)
    _run(db, name, quiet)


@app.command()
def stop(name: str = typer.Argument(...), storage: str | None = STORAGE,
         now: bool = typer.Option(False, "--now", help="Cancel the trials in flight (they are "
                                  "re-queued and run again on resume) instead of waiting.")
         ) -> None:
    """Ask a study's driver to stop: after its trials in flight, which are recorded (default),
    or --now, cancelling and re-queueing them."""
    from workbench.study import request_stop

    request_stop(open_storage(storage), name, now=now)
    typer.echo(f"stop requested for {name}: " + (
        "cancelling the trials in flight (re-queued for a resume)" if now else
        "the driver finishes and records the trials in flight, then stops"))


def _run(db: StudyStorage, name: str, quiet: bool) -> None:
    from rich.console import Console

    from workbench.study import run_study

    console = Console(stderr=True)
    if quiet:
        summary = run_study(db, name)
    else:
        summary = _with_progress(db, name, console)
    best = summary.best
    pruned = f", {summary.pruned} pruned" if summary.pruned else ""
    line = (f"{summary.status}: {summary.complete} complete, {summary.failed} failed{pruned} in "
            f"{summary.elapsed_s:.1f}s")
    if best:
        line += f"; best trial {best['number']}: {_fmt_values(db, name, best['values'])}"
    typer.echo(line)
    if best:
        typer.echo(f"  {short(best['text'])}")
        if len(best["text"]) > 100:
            typer.echo(f"  (full text: workbench show {name} {best['number']})")


def _fmt_values(db: StudyStorage, name: str, values: list) -> str:
    objectives = db.get_study(name).objectives
    return ", ".join(f"{o['name']}={v:.4g}" for o, v in zip(objectives, values))


def _with_progress(db: StudyStorage, name: str, console):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from workbench.study import load_config, run_study

    total = load_config(db, name).trials
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[best]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console, transient=False) as bar:
        done = sum(v for k, v in db.count_trials(name).items()  # pruned: not in the budget
                   if TrialState(k).finished and TrialState(k) is not TrialState.PRUNED)
        tid = bar.add_task(name, total=total, completed=done, best="")

        def on_event(kind: str, data: dict) -> None:
            if kind != "trial_finished":
                return
            best = data.get("best")
            text = f"best {best['values'][0]:.4g} (#{best['number']})" if best else ""
            bar.update(tid, completed=data["finished"], best=text)
            if data["state"] is TrialState.FAILED and data.get("error"):
                bar.console.print(f"  trial {data['number']} failed: {data['error']}",
                                  style="dim")

        return run_study(db, name, on_event=on_event)


@app.command()
def studies(storage: str | None = STORAGE, as_json: bool = JSON) -> None:
    """List the studies in the database."""
    rows = open_storage(storage).study_summaries()
    if as_json:
        typer.echo(json.dumps(rows, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table()
    for col in ("name", "status", "space", "task", "searcher", "complete", "failed", "best"):
        t.add_column(col, no_wrap=True)
    for r in rows:
        best = "" if r["best"] is None else f"{r['best']:.4g}"
        t.add_row(r["name"], r["status"], r["space"], r["task"], r["searcher"],
                  str(r["n_complete"]), str(r["n_failed"]), best)
    Console().print(t)


def trial_dict(t) -> dict:
    return {"number": t.number, "state": t.state.value,
            "metrics": t.metrics, "error": t.error, "fidelity": t.fidelity,
            "architecture": t.arch_text, "hash": t.arch_hash, "parents": list(t.parent_numbers),
            "duration_s": t.duration_s, "worker": t.worker}


@app.command()
def trials(name: str = typer.Argument(...), storage: str | None = STORAGE,
           top: int | None = typer.Option(None, "--top", help="Best K by the first objective."),
           as_json: bool = JSON) -> None:
    """Trials of a study (all, or the best K)."""
    db = open_storage(storage)
    rec = db.get_study(name)
    if top:
        obj = rec.objectives[0]
        rows = db.trials(name, states=[TrialState.COMPLETE], limit=top, order_by=f"metric:{obj['name']}",
                         descending=obj["direction"] == "maximize")
    else:
        rows = db.trials(name)
    data = [trial_dict(t) for t in rows]
    if as_json:
        typer.echo(json.dumps(data, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    names = [o["name"] for o in rec.objectives]
    t = Table()
    for col in ["#", "state", *names, "architecture / error"]:
        t.add_column(col, overflow="fold")
    for d in data:
        vals = [_fmt(d["metrics"].get(n)) for n in names]
        t.add_row(str(d["number"]), d["state"], *vals, d["error"] or short(d["architecture"], 90))
    Console().print(t)


def _fmt(v) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else f"{v:,}"


@app.command()
def show(name: str = typer.Argument(...), trial: int = typer.Argument(...),
         storage: str | None = STORAGE, as_json: bool = JSON) -> None:
    """One trial: metrics, learning curve, architecture."""
    db = open_storage(storage)
    t = db.get_trial(name, trial, with_curve=True)
    d = trial_dict(t) | {"curve": t.curve, "decisions": t.arch_decisions}
    if as_json:
        typer.echo(json.dumps(d, default=str))
        return
    typer.echo(f"trial {t.number} of {name}: {d['state']}" + (f" ({t.error})" if t.error else ""))
    for k, v in sorted(t.metrics.items()):
        typer.echo(f"  {k:<20} {_fmt(v) if isinstance(v, (int, float)) else v}")
    for p in t.curve or []:
        rest = ", ".join(f"{k}={_fmt(v)}" for k, v in p.items() if k != "epoch")
        typer.echo(f"  epoch {p.get('epoch')}: {rest}")
    typer.echo(t.arch_text)

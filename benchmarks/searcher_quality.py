"""Search quality of every searcher on tabular benchmarks (no training).

For each searcher and seed the searcher proposes until ``--evals`` distinct architectures have been
evaluated; a proposal of an architecture already evaluated is told its stored result again without
counting (what the study loop does) and counts as a repeat.

* **NAS-Bench-201, CIFAR-10.** The searcher sees the 12-epoch validation accuracy; after 50, 100
  and 150 evaluations the cell with the best validation accuracy so far is *selected* and the
  table reports its 200-epoch test accuracy (mean ± sd over seeds; the optimum is 94.37).
  ``to94`` is the mean number of evaluations until the selected cell's test accuracy is >= 94.0,
  over the seeds that get there within the budget (their count in brackets).
* **NAS-Bench-101 sample** (1,000 cells, searched as a trie space, see ``tabular.py``): selection
  on 12-epoch validation accuracy, reported: the selected cell's 108-epoch validation accuracy
  (the sample has no test accuracy) at the same marks.
* **Multi-objective (HW-NAS-Bench):** searchers that handle several objectives maximise 12-epoch
  validation accuracy and minimise edge-GPU latency for ``--mo-evals`` evaluations; the table gives
  the hypervolume of the evaluated points divided by that of the whole table's front, with the
  reference point at the median cell (median accuracy, median latency), so only points better
  than a typical cell in both objectives count (see ``true_front_hv``). Cells that
  HW-NAS-Bench did not measure (20 %) are told as failures and do not count as evaluations.
* ``ms/ask`` is the searcher's mean time per ask over the NB201 run, ``rep`` the share of asks
  that repeated an evaluated architecture.
* **Zero-cost proxies:** Spearman correlation of each proxy (``workbench/proxies.py``) with the
  200-epoch test accuracy over ``--proxy-cells`` seeded NB201 cells, compiled from the ``nb201``
  space and scored at initialisation on one synthetic CIFAR-shaped batch.

    PYTHONPATH=. .venv/bin/python benchmarks/searcher_quality.py             # everything, 50 seeds
    PYTHONPATH=. .venv/bin/python benchmarks/searcher_quality.py --seeds 5 --only mcts,local

Runs use ``--jobs`` processes (one seed at a time each). Multi-fidelity wrappers (sha, hyperband)
are not benchmarked: the tables hold one fidelity, so they would reduce to their base searcher.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

# one BLAS thread per process: the runs are parallel processes already, and multi-threaded BLAS
# on small matrices on a busy CPU is many times slower than one thread
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tabular import NB101SampleSpace, nb101_rows, nb201_rows  # noqa: E402

from storage.records import TrialState  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.searchers import Objective, Result, get_searcher  # noqa: E402
from workbench.spaces import get_space  # noqa: E402

# label -> (registry name, options, seeds cap by default (None: --seeds),
#           multi-objective seeds cap by default (None: as the first cap; 0: no multi-objective run))
# The caps keep the default run near 15 minutes on a shared 2-core CPU: model-based searchers
# spend 20-100 ms per ask; --full lifts them.
CONFIGS = {
    "random": ("random", {}, None, None),
    "evolution": ("evolution", {}, None, None),
    "local": ("local", {}, None, None),
    "rl": ("rl", {}, None, None),
    "nevergrad": ("nevergrad", {}, None, None),
    "mcts": ("mcts", {}, 20, None),
    "mcts-rave": ("mcts", {"rollout": "rave"}, None, 0),
    "mcts-uct": ("mcts", {"rave_k": 0.0, "rollout": "random", "exploration": 0.7}, None, 0),
    "surrogate": ("surrogate", {}, 20, None),
    "tpe": ("tpe", {}, 20, None),
    "tpe-mv": ("tpe", {"multivariate": True}, 20, 0),
    "tpe-r0": ("tpe", {"retries": 0}, 20, 0),
    "nsga2": ("nsga2", {}, 20, None),
    # optuna's multi-objective GP costs ~0.6-1 s per ask at 200 trials (log EHVI per ask)
    "gp": ("gp", {}, 20, 4),
    # the surrogate with synflow as a feature: each candidate is compiled and scored once (about
    # 0.3 s per ask here), so 12 seeds by default; scored on a small NB201 network (C=8, N=1:
    # the cell is what is searched, the table is keyed by it)
    "surrogate-synflow": ("surrogate", {"proxy": "synflow"}, 12, 0),
}
SPACE_OPTIONS = {"surrogate-synflow": {"channels": 8, "cells_per_stage": 1}}
MARKS = (50, 100, 150)
TARGET = 94.0


def run_one(job):
    """One searcher x seed x benchmark; returns what the tables need."""
    label, bench, seed, evals, extra = job
    name, options, _, _ = CONFIGS[label]
    options = {**options, **extra}
    if bench == "nb101":
        space, rows = NB101SampleSpace(), nb101_rows()
        objectives = [Objective("val12", "maximize")]
    else:
        space, rows = get_space("nb201", **SPACE_OPTIONS.get(label, {})), nb201_rows()
        objectives = [Objective("val12", "maximize")]
        if bench == "mo":
            objectives.append(Objective("latency", "minimize"))
    searcher = get_searcher(name, space, objectives, seed=seed, **options)
    cache: dict[str, Result] = {}
    order: list[dict] = []
    asks = repeats = 0
    ask_time = 0.0
    while len(order) < evals and asks < 20 * evals:
        t0 = time.perf_counter()
        p = searcher.ask()
        ask_time += time.perf_counter() - t0
        asks += 1
        if p.arch.hash in cache:
            repeats += 1
            searcher.tell(p.arch, cache[p.arch.hash])
            continue
        row = rows[p.arch.text]
        values = tuple(row[o.name] for o in objectives)
        if any(v is None for v in values):
            result = Result(TrialState.FAILED, None, {"error": "not measured"})
        else:
            result = Result(TrialState.COMPLETE, values, {})
            order.append(row)
        cache[p.arch.hash] = result
        searcher.tell(p.arch, result)
    return label, bench, seed, order, 1000 * ask_time / max(asks, 1), repeats / max(asks, 1)


def selected(order: list[dict], m: int, report: str) -> float:
    best = max(order[:m], key=lambda r: r["val12"])
    return best[report]


def first_reach(order: list[dict], report: str, target: float) -> int | None:
    best = None
    for k, r in enumerate(order, start=1):
        if best is None or r["val12"] > best["val12"]:
            best = r
        if best[report] >= target:
            return k
    return None


def true_front_hv():
    """HV of the table's own front with the reference at the *median* cell (median accuracy,
    median latency) and both objectives normalised over the table's front: only points better
    than a typical cell in both objectives count, so the ratio measures the interesting part of
    the front rather than the easy bulk of the space (with the reference at the worst cell,
    random search scores 0.97)."""
    import statistics as st

    from workbench.pareto import hypervolume, non_dominated

    pts = [(r["val12"], r["latency"]) for r in nb201_rows().values() if r["latency"] is not None]
    dirs = ["maximize", "minimize"]
    front = [pts[i] for i in non_dominated(pts, dirs)]
    accs, lats = [p[0] for p in front], [p[1] for p in front]
    bounds = [(min(accs), max(accs)), (min(lats), max(lats))]
    reference = (st.median(p[0] for p in pts), st.median(p[1] for p in pts))
    return (hypervolume(front, dirs, reference, bounds=bounds), dirs, reference, bounds)


def mean_sd(xs) -> str:
    if not xs:
        return "n/a"
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{statistics.fmean(xs):.2f} ± {sd:.2f}"


def proxies_table(cells: int, seed: int, channels: int = 16, per_stage: int = 5,
                  batch_size: int = 32) -> str:
    import random

    import torch

    from workbench.proxies import PROXIES, compute_proxies, spearman, synthetic_batch

    torch.set_num_threads(1)

    space = get_space("nb201", (3, 32, 32), 10, channels=channels, cells_per_stage=per_stage)
    rows = nb201_rows()
    rng = random.Random(seed)
    batch = synthetic_batch((3, 32, 32), 10, batch_size, seed=seed)
    scores: dict[str, list[float]] = {p: [] for p in PROXIES}
    accs = []
    t0 = time.time()
    for _ in range(cells):
        arch = space.sample(rng)
        for k, v in compute_proxies(arch, batch, seed=seed).items():
            scores[k].append(v)
        accs.append(rows[arch.text]["test200"])
    secs = (time.time() - t0) / cells
    lines = [f"Zero-cost proxies vs NB201 200-epoch CIFAR-10 test accuracy: {cells} cells "
             f"(seed {seed}), network C={channels} N={per_stage}, synthetic batch {batch_size}x3x32x32, "
             f"{secs:.2f} s per cell (all four)"]
    lines += [f"  {p:<10} Spearman {spearman(scores[p], accs):+.3f}" for p in PROXIES]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds are first-seed .. first-seed+seeds-1 (tune options on seeds "
                         "other than the reported 0..49)")
    ap.add_argument("--evals", type=int, default=150)
    ap.add_argument("--mo-evals", type=int, default=200)
    ap.add_argument("--only", default="", help="comma-separated labels to run")
    ap.add_argument("--skip", default="", help="parts to skip: nb201,nb101,mo,proxies")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--set", default="", metavar="KEY=VALUE,...",
                    help="searcher options added to every label run (for tuning sweeps)")
    ap.add_argument("--full", action="store_true", help="every searcher gets --seeds seeds")
    ap.add_argument("--proxy-cells", type=int, default=200)
    ap.add_argument("--proxy-channels", type=int, default=8, help="NB201 C of the scored network")
    ap.add_argument("--proxy-cells-per-stage", type=int, default=1, help="NB201 N of it")
    ap.add_argument("--proxy-batch", type=int, default=16)
    args = ap.parse_args()
    labels = [x for x in args.only.split(",") if x] or list(CONFIGS)
    skip = set(filter(None, args.skip.split(",")))
    marks = [m for m in MARKS if m <= args.evals] or [args.evals]
    extra = dict(kv.split("=", 1) for kv in args.set.split(",") if kv)

    for label in labels:  # a bad label or option: one line, before any process starts
        try:
            name, options, _, _ = CONFIGS[label]
            get_searcher(name, get_space("nb201"), [Objective("val12", "maximize")],
                         **{**options, **extra})
        except (KeyError, WorkbenchError) as e:
            found = f"unknown label {label!r}; expected one of {', '.join(CONFIGS)}" \
                if isinstance(e, KeyError) else str(e)
            print(f"searcher_quality: {found}", file=sys.stderr)
            sys.exit(2)
    jobs = []
    for label in labels:
        _, _, cap, mo_cap = CONFIGS[label]
        n = min(args.seeds, cap) if cap and not args.full else args.seeds
        n_mo = 0 if mo_cap == 0 else n if mo_cap is None or args.full else min(n, mo_cap)
        for seed in range(args.first_seed, args.first_seed + n):
            if "nb201" not in skip:
                jobs.append((label, "nb201", seed, args.evals, extra))
            if "nb101" not in skip and label not in SPACE_OPTIONS:  # the sample compiles no cell
                jobs.append((label, "nb101", seed, args.evals, extra))
            if "mo" not in skip and seed < args.first_seed + n_mo:
                jobs.append((label, "mo", seed, args.mo_evals, extra))
    t0 = time.time()
    results: dict[tuple[str, str], list] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for out in pool.map(run_one, jobs, chunksize=1):
            results.setdefault(out[:2], []).append(out[2:])
    wall = time.time() - t0

    print(f"# {len(jobs)} runs in {wall:.0f} s with {args.jobs} processes, seeds from "
          f"{args.first_seed}" + (f", options {extra}" if extra else ""))
    head = "".join(f"{'@' + str(m):>15}" for m in marks)
    for bench, report, title in (
            ("nb201", "test200", "NAS-Bench-201 CIFAR-10: 200-epoch test accuracy of the cell "
                                 "selected on 12-epoch validation"),
            ("nb101", "val108", "NAS-Bench-101 1k sample: 108-epoch validation accuracy of the "
                                "cell selected on 12-epoch validation")):
        if bench in skip:
            continue
        print(f"\n{title} (mean ± sd over seeds)")
        print(f"{'searcher':<11}{'seeds':>6}{head}{'to94':>13}{'ms/ask':>8}{'rep':>6}  note")
        base = None
        for label in labels:
            runs = results.get((label, bench), [])
            if not runs:
                continue
            at = {m: [selected(o, m, report) for _, o, _, _ in runs] for m in marks}
            cells = "".join(f"{mean_sd(at[m]):>15}" for m in marks)
            reach = [first_reach(o, report, TARGET) for _, o, _, _ in runs]
            got = [r for r in reach if r is not None]
            to94 = f"{statistics.fmean(got):.0f} ({len(got)})" if got else "- (0)"
            ms = statistics.fmean(r[2] for r in runs)
            rep = statistics.fmean(r[3] for r in runs)
            mid = 100 if 100 in at else marks[-1]
            note = ""
            if label == "random":
                base = statistics.fmean(at[mid])
            elif base is not None:
                gain = statistics.fmean(at[mid]) - base
                note = f"{gain:+.2f} vs random @{mid}"
            print(f"{label:<11}{len(runs):>6}{cells}{to94:>13}{ms:>8.1f}{rep:>6.2f}  {note}")

    if "mo" not in skip:
        from workbench.pareto import hypervolume

        best_hv, dirs, reference, bounds = true_front_hv()
        print(f"\nHW-NAS-Bench (12-epoch val accuracy max, edge-GPU latency min), "
              f"{args.mo_evals} evaluations: hypervolume ratio to the table's front")
        for label in labels:
            runs = results.get((label, "mo"), [])
            if not runs:
                continue
            ratios = [hypervolume([(r["val12"], r["latency"]) for r in o], dirs, reference,
                                  bounds=bounds) / best_hv for _, o, _, _ in runs]
            sd = statistics.stdev(ratios) if len(ratios) > 1 else 0.0
            ms = statistics.fmean(r[2] for r in runs)
            print(f"{label:<11}{len(runs):>6}  {statistics.fmean(ratios):.4f} ± {sd:.4f}"
                  f"{ms:>9.1f} ms/ask")
    if "proxies" not in skip and args.proxy_cells > 0:
        print()
        print(proxies_table(args.proxy_cells, 0, args.proxy_channels, args.proxy_cells_per_stage,
                            args.proxy_batch))
    print(f"\n# total {time.time() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

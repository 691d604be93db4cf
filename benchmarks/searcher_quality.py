"""Search quality of every searcher on NAS-Bench-201 through the tabular lookup (no training).

For each searcher and seed: propose until ``--evals`` distinct architectures have been evaluated
(a proposal of an already evaluated architecture is told its stored result without counting, as
the study loop does), recording the best 12-epoch CIFAR-10 validation accuracy after 25, 50 and
100 evaluations. A second run per seed optimises (accuracy max, parameters min) and reports the
hypervolume of the front, normalised over the space's accuracy and parameter ranges.

    .venv/bin/python benchmarks/searcher_quality.py --seeds 20 --evals 100

Multi-fidelity wrappers (sha, hyperband) are not benchmarked here: the table holds one fidelity
(12 epochs) only, so they would reduce to their base searcher.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search_spaces.nb201 import (  # noqa: E402
    EDGES,
    _table,
    arch_string,
    benchmarks_dir,
    nb201_lookup,
    params_count,  # noqa: E402
)
from workbench.pareto import hypervolume  # noqa: E402
from workbench.searchers import Objective, Result, get_searcher  # noqa: E402
from workbench.spaces import get_space  # noqa: E402

CONFIGS = {  # label -> (registry name, options)
    "random": ("random", {}),
    "evolution": ("evolution", {}),
    "evolution+x": ("evolution", {"crossover_prob": 0.5}),
    "mcts": ("mcts", {}),
    "mcts-bisect": ("mcts", {"bisect": 2}),
    "tpe": ("tpe", {}),
    "tpe-mv": ("tpe", {"multivariate": True}),
    "gp": ("gp", {}),
    "nsga2": ("nsga2", {}),
    "ng-NGOpt": ("nevergrad", {}),
    "ng-DE": ("nevergrad", {"optimizer": "DE"}),
    "ng-OnePlusOne": ("nevergrad", {"optimizer": "OnePlusOne"}),
}
MARKS = (25, 50, 100)


def run(space, name, options, objectives, seed, evals):
    searcher = get_searcher(name, space, objectives, seed=seed, **options)
    cache: dict[str, Result] = {}
    order: list[dict] = []
    idle = 0
    while len(order) < evals and idle < 500:
        p = searcher.ask()
        if p.arch.hash in cache:  # never evaluate twice
            searcher.tell(p.arch, cache[p.arch.hash])
            idle += 1
            continue
        idle = 0
        m = nb201_lookup(p.arch)
        result = Result("complete", tuple(m[o.name] for o in objectives), m, 12)
        cache[p.arch.hash] = result
        searcher.tell(p.arch, result)
        order.append(m)
    return order


def mean_std(xs):
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--only", default="", help="comma-separated labels to run")
    args = ap.parse_args()
    space = get_space("nb201")
    table = _table(str(benchmarks_dir()))
    best_possible = max(r["val_accuracy"] for r in table.values())
    accs = [r["val_accuracy"] for r in table.values()]
    p_lo = params_count(space.parse(arch_string(["none"] * len(EDGES))))
    p_hi = params_count(space.parse(arch_string(["nor_conv_3x3"] * len(EDGES))))
    bounds = [(min(accs), max(accs)), (p_lo, p_hi)]
    reference = (min(accs), p_hi)
    one = [Objective("val_accuracy", "maximize")]
    two = [Objective("val_accuracy", "maximize"), Objective("params", "minimize")]
    labels = [x for x in args.only.split(",") if x] or list(CONFIGS)
    marks = [m for m in MARKS if m <= args.evals]

    rows = {}
    for label in labels:
        name, options = CONFIGS[label]
        t0 = time.time()
        bests = {m: [] for m in marks}
        hvs = []
        for seed in range(args.seeds):
            hist = run(space, name, options, one, seed, args.evals)
            for m in marks:
                bests[m].append(max(h["val_accuracy"] for h in hist[:m]))
            hist2 = run(space, name, options, two, seed, args.evals)
            pts = [(h["val_accuracy"], h["params"]) for h in hist2]
            hvs.append(hypervolume(pts, ["maximize", "minimize"], reference, bounds=bounds))
        rows[label] = (bests, hvs, time.time() - t0)
        print(f"# {label}: {time.time() - t0:.0f}s", file=sys.stderr, flush=True)

    print(f"NAS-Bench-201, CIFAR-10 valid accuracy after 12 epochs (best in table "
          f"{best_possible:.2f}); {args.seeds} seeds; mean ± std of the best found")
    head = "".join(f"{'@' + str(m):>16}" for m in marks)
    print(f"{'searcher':<15}{head}{'HV(acc,params)':>20}{'time':>8}  note")
    base = rows.get("random")
    for label, (bests, hvs, secs) in rows.items():
        cells = "".join("{:>16}".format("{:.2f} ± {:.2f}".format(*mean_std(bests[m])))
                        for m in marks)
        hv = "{:.4f} ± {:.4f}".format(*mean_std(hvs))
        note = ""
        if base is not None and label != "random":
            last = marks[-1]
            worse = statistics.fmean(bests[last]) <= statistics.fmean(base[0][last])
            worse_hv = statistics.fmean(hvs) <= statistics.fmean(base[1])
            note = ", ".join(x for x in ("does not beat random (acc)" if worse else "",
                                          "does not beat random (HV)" if worse_hv else "") if x)
        print(f"{label:<15}{cells}{hv:>20}{secs:>7.0f}s  {note}")


if __name__ == "__main__":
    main()

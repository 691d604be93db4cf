"""Ray executor scaling and overhead: trials per minute with 1, 2 and 4 workers, against the local
process pool on the same candidates.

    python benchmarks/ray_scaling.py [--workers 1,2,4] [--short 2] [--long 6] [--executors ray,process]

Every candidate is the custom evaluator ``tests.ray_evaluators:sleep_half``: a fixed 0.5 s sleep,
no training. Sleep-bound on purpose: this machine may have only two cores, so CPU-bound trials
could not scale past two workers whatever the executor does; sleeping trials measure what the
executor itself costs (dispatch, result transfer, the study loop's writes) and how well it keeps
N trials in flight.

Each (executor, workers) pair runs one fresh study of ``per_worker * workers`` trials. The
steady state is read from the trials' stored finish times, after the first wave (``workers``
trials) has finished, so start-up (Ray worker processes or pool processes importing torch) is
left out of the rate and reported on its own:

* trials/min: steady state, (N - workers) / (last finish - workers-th finish);
* scaling: trials/min over the same executor's 1-worker figure (ideal: the worker count);
* overhead/trial: slot-seconds per trial (workers / rate) minus the 0.5 s sleep;
* first result: seconds from starting the study to the first finished trial, minus the sleep.

Ray runs on one local instance with 4 logical CPUs (started here, shared by every Ray run), so
4 sleeping trials fit at once on a 2-core machine.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # Ray workers get the driver's sys.path: they import tests.* too
from storage import Storage  # noqa: E402
from workbench.study import StudyConfig, create_study, run_study  # noqa: E402

SLEEP = 0.5
EVALUATOR = "tests.ray_evaluators:sleep_half"


def timed_study(db: Storage, name: str, executor: str, workers: int,
                trials: int) -> tuple[float, float, float]:
    """(steady-state trials per minute, seconds to the first result, wall seconds) of a study."""
    cfg = StudyConfig(space="mlp", input_shape=(64,), num_classes=10, trials=trials,
                      workers=workers, executor=executor, evaluator=EVALUATOR, seed=workers,
                      ray={"cpus_per_trial": 1} if executor == "ray" else {})
    create_study(db, name, cfg)
    t0 = time.perf_counter()
    summary = run_study(db, name)
    elapsed = time.perf_counter() - t0
    if summary.complete != trials:
        raise SystemExit(f"{name}: expected {trials} complete trials, found {summary}")
    ends = sorted(t.finished_at.timestamp() for t in db.trials(name))
    start = db.get_study(name).created_at.timestamp()  # just before t0
    rate = 60 * (trials - workers) / (ends[-1] - ends[workers - 1])
    return rate, ends[0] - start - SLEEP, elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--per-worker", type=int, default=8, help="trials per worker (>= 2)")
    ap.add_argument("--executors", default="ray,process")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    counts = [int(w) for w in args.workers.split(",")]
    kinds = args.executors.split(",")
    db = Storage(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
    console = Console(width=110)

    ray_start = None
    if "ray" in kinds:
        import ray

        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        t0 = time.perf_counter()
        ray.init(num_cpus=max(4, max(counts)), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
        ray_start = time.perf_counter() - t0
        # warm the worker pool once so the first measured configuration is not penalised
        timed_study(db, "warm-up", "ray", max(counts), 2 * max(counts))

    rows = []
    for kind in kinds:
        for w in counts:
            rate, first, wall = timed_study(db, f"{kind}-{w}", kind, w, args.per_worker * w)
            rows.append((kind, w, rate, 60 * w / rate - SLEEP, first, wall))
            console.print(f"{kind} x{w}: {rate:.0f} trials/min", style="dim")

    table = Table(title=f"{EVALUATOR} ({SLEEP}s sleep per trial), {os.cpu_count()} cores")
    for col in ("executor", "workers", "trials/min", "scaling vs 1", "overhead/trial",
                "first result", "study wall"):
        table.add_column(col, justify="right")
    base = {kind: rate for kind, w, rate, *_ in rows if w == 1}
    for kind, w, rate, overhead, first, wall in rows:
        scale = f"{rate / base[kind]:.2f}x" if kind in base else "-"
        table.add_row(kind, str(w), f"{rate:.0f}", scale, f"{overhead * 1000:.0f} ms",
                      f"{first:.1f} s", f"{wall:.1f} s")
    console.print(table)
    if ray_start is not None:
        console.print(f"Ray local instance start: {ray_start:.1f} s (once per driver; "
                      f"not in the table). Ideal rate: {60 / SLEEP:.0f} trials/min per worker.")
        import ray

        ray.shutdown()


if __name__ == "__main__":
    main()

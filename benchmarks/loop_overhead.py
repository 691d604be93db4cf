"""Study-loop overhead per trial (ask + dedupe lookup + store + tell; training excluded) with
100, 1,000 and 10,000 trials already stored, on SQLite and on a throwaway PostgreSQL server.

    python benchmarks/loop_overhead.py [--sizes 100,1000,10000] [--measure 200] [--no-postgres]

Target: <= 5 ms per trial at 10,000 stored trials. Also prints the one-off resume cost
(replaying every stored trial into a fresh searcher).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from storage import Storage  # noqa: E402
from workbench.searchers import Objective, Result, get_searcher  # noqa: E402
from workbench.spaces import get_space  # noqa: E402
from workbench.study import StudyConfig, StudyRunner, create_study  # noqa: E402

OBJ = [Objective("val_accuracy", "maximize")]


def fill(db: Storage, name: str, space, n: int, rng: random.Random) -> None:
    """Store n finished trials through the public API (what a search would have written)."""
    start = sum(db.count_trials(name).values())
    for i in range(start, n):
        a = space.sample(rng)
        t = db.create_trial(name, arch_hash=f"{a.hash}-{i}", arch_text=a.text,
                            arch_decisions=[[d.path, d.choice] for d in a.decisions],
                            space=a.space)
        db.finish_trial(name, t.number, state="complete",
                        metrics={"val_accuracy": rng.random(), "params": rng.randint(1, 10**6)},
                        curve=[{"epoch": 1, "val_accuracy": 0.5}])


def measure(db: Storage, name: str, space, count: int, seed: int) -> list[float]:
    searcher = get_searcher("random", space, OBJ, seed=seed)  # fresh proposals per round
    out = []
    for _ in range(count):
        t = time.perf_counter()
        p = searcher.ask()
        if db.find_trial(name, p.arch.hash, None) is None:
            trial = db.create_trial(name, arch_hash=p.arch.hash, arch_text=p.arch.text,
                                    arch_decisions=[[d.path, d.choice] for d in p.arch.decisions],
                                    space=p.arch.space)
            metrics = {"val_accuracy": 0.5, "params": 10}
            db.finish_trial(name, trial.number, state="complete", metrics=metrics,
                            curve=[{"epoch": 1, "val_accuracy": 0.5}])
            searcher.tell(p.arch, Result("complete", (0.5,), metrics))
        out.append(1000 * (time.perf_counter() - t))
    return out


def resume_cost(db: Storage, name: str) -> float:
    t = time.perf_counter()
    StudyRunner(db, name, executor=object()).recover()
    return time.perf_counter() - t


def bench(label: str, url: str, sizes: list[int], count: int, table: Table) -> None:
    db = Storage(url)
    space = get_space("einspace", (1, 8, 8), 10)
    cfg = StudyConfig(space="einspace", task="digits", trials=10**6, executor="inline",
                      input_shape=(1, 8, 8), num_classes=10)
    create_study(db, "bench", cfg)
    rng = random.Random(0)
    for n in sizes:
        t = time.perf_counter()
        fill(db, "bench", space, n, rng)
        fill_s = time.perf_counter() - t
        ms = measure(db, "bench", space, count, seed=n)
        table.add_row(label, f"{n:,}", f"{statistics.median(ms):.2f}",
                      f"{sorted(ms)[int(0.9 * len(ms))]:.2f}", f"{statistics.mean(ms):.2f}",
                      f"{resume_cost(db, 'bench'):.2f}", f"{fill_s:.1f}")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--measure", type=int, default=200)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    table = Table(title="study loop overhead per trial (ask + dedupe + store + tell)")
    for col in ("backend", "stored trials", "median ms", "p90 ms", "mean ms", "resume s",
                "fill s"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{tmp}/bench.db", sizes, args.measure, table)
        if not args.no_postgres:
            from storage.testing import start_postgres

            server = start_postgres(tmp)
            try:
                bench("postgresql", server.url, sizes, args.measure, table)
            finally:
                server.stop()
    Console().print(table)


if __name__ == "__main__":
    main()

"""Study-loop overhead per trial with training excluded, with 100, 1,000 and 10,000 trials
already stored, on SQLite and on a throwaway PostgreSQL server.

    python benchmarks/loop_overhead.py [--sizes 100,1000,10000] [--measure 200] [--no-postgres]

It runs the real driver (:class:`workbench.study.StudyRunner`: stop poll, queue claim, ask,
dedupe lookup, trial insert, result write with its learning curve, tell) over an executor
that answers every job at once, and times the gap between consecutive finished trials, so
everything the loop does except training is counted. Target: <= 5 ms per trial at 10,000
stored trials. Also prints the one-off resume cost (replaying every stored trial into a fresh
searcher).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from storage import Storage  # noqa: E402
from workbench.jobs import Job, Outcome  # noqa: E402
from workbench.spaces import get_space  # noqa: E402
from workbench.study import StudyConfig, StudyRunner, create_study, load_config  # noqa: E402


class InstantExecutor:
    """An executor whose jobs finish the moment they are submitted (no training)."""

    name = "instant"

    def __init__(self) -> None:
        self._done: list[tuple[Job, Outcome]] = []

    def free_slots(self) -> int:
        return 0 if self._done else 1

    def submit(self, job: Job) -> None:
        metrics = {"val_accuracy": 0.5 + (job.number % 97) / 1000, "params": 10 + job.number}
        self._done.append((job, Outcome("complete", metrics, [{"epoch": 1, **metrics}],
                                        worker="bench")))

    def wait(self, timeout: float | None = None) -> list[tuple[Job, Outcome]]:
        done, self._done = self._done, []
        return done

    def running(self) -> list[Job]:
        return [j for j, _ in self._done]

    def shutdown(self) -> None:
        self._done = []


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


def measure(db: Storage, name: str, count: int, seed: int) -> tuple[list[float], float]:
    """Run the driver for ``count`` more trials; per-trial gaps (ms) and the resume time (s)."""
    cfg = load_config(db, name)
    stored = sum(db.count_trials(name).values())
    db.update_study_config(name, replace(cfg, trials=stored + count + 1, seed=seed).to_dict())
    stamps: list[float] = []

    def on_event(kind: str, data: dict) -> None:
        if kind == "trial_finished":
            stamps.append(time.perf_counter())

    runner = StudyRunner(db, name, executor=InstantExecutor(), on_event=on_event)
    t = time.perf_counter()
    runner.recover()
    resume_s = time.perf_counter() - t
    runner.recover = lambda: None  # already done, and timed apart
    runner.run()
    gaps = [1000 * (b - a) for a, b in zip(stamps, stamps[1:])]
    return gaps, resume_s


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
        ms, resume_s = measure(db, "bench", count, seed=n)
        table.add_row(label, f"{n:,}", f"{statistics.median(ms):.2f}",
                      f"{sorted(ms)[int(0.9 * len(ms))]:.2f}", f"{statistics.mean(ms):.2f}",
                      f"{resume_s:.2f}", f"{fill_s:.1f}")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--measure", type=int, default=200)
    ap.add_argument("--no-postgres", action="store_true")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    table = Table(title="study loop overhead per trial (the driver with training excluded)")
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

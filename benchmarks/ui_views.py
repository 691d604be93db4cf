"""Time the UI's refresh path and analysis views on a synthetic study and print a table.

Targets (issue 17): at 10,000 trials the first load of the live view <= 1 s, a timer tick with
nothing new <= 5 ms, a refresh after a new trial <= 200 ms, each analysis view <= 1 s.

The study is written straight through ``Storage.create_trial`` / ``finish_trial`` (no training):
real quickstart architectures, two objectives, lineage links, 1% failures, learning curves on
every 50th trial. Usage: ``python benchmarks/ui_views.py [N_TRIALS]``. Writing 10,000 trials one
transaction each takes a minute or two, so the database is kept in the temp folder and reused.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from storage import Storage  # noqa: E402
from ui import analysis, panels  # noqa: E402
from ui import arch_views as av  # noqa: E402
from ui.panels import LiveState  # noqa: E402
from ui.snapshot import Snapshots, signature  # noqa: E402
from workbench.spaces import get_space  # noqa: E402

OBJECTIVES = [{"name": "val_accuracy", "direction": "maximize"},
              {"name": "params", "direction": "minimize"}]


def build(db: Storage, n: int) -> None:
    space = get_space("quickstart", (1, 8, 8), 10)
    rng = random.Random(0)
    archs = {a.hash: a for a in (space.sample(rng) for _ in range(400))}
    archs = list(archs.values())
    config = {"space": "quickstart", "task": "digits", "searcher": "evolution", "trials": n,
              "input_shape": [1, 8, 8], "num_classes": 10, "space_options": {},
              "objectives": OBJECTIVES, "budget": {"epochs": 3}}
    db.create_study("big", space="quickstart", task="digits", searcher="evolution",
                    objectives=OBJECTIVES, config=config, seed=0)
    for i in range(n):
        a = archs[i % len(archs)]
        common = dict(arch_hash=a.hash, arch_text=a.text, space=a.space,
                      arch_decisions=[[d.path, d.choice] for d in a.decisions],
                      parent_numbers=[rng.randrange(i)] if i > 20 else [])
        metrics = {"val_accuracy": min(1.0, rng.betavariate(2 + i / n * 8, 2)),
                   "params": rng.randint(300, 200_000), "flops": rng.randint(10_000, 10**7)}
        if i % 100 == 99:
            t = db.create_trial("big", **common)
            db.finish_trial("big", t.number, state="failed", error="NaN loss at epoch 2")
        elif i % 50 == 0:
            t = db.create_trial("big", **common)
            curve = [{"epoch": e + 1, "val_accuracy": metrics["val_accuracy"] * (e + 1) / 3}
                     for e in range(3)]
            db.finish_trial("big", t.number, state="complete", metrics=metrics, curve=curve)
        else:
            db.create_trial("big", state="complete", metrics=metrics, **common)


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def live(snaps: Snapshots, sel: LiveState):
    """What one live refresh does: read the snapshot, render every view, serialise the plots."""
    snap = snaps.get("big")
    v = panels.live_view(snap, "running", sel, x=None, y=None, depth=3, view="dataflow",
                         sort="number", descending=False, states=None, page=1)
    return len(v.pareto.to_json()) + len(v.best.to_json())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    path = os.path.join(tempfile.gettempdir(), f"workbench-ui-bench-{n}.db")
    db = Storage(f"sqlite:///{path}")
    if not any(r.name == "big" and sum(db.count_trials("big").values()) in range(n, n + 1000)
               for r in db.list_studies()):
        if db.list_studies():
            db.delete_study("big")
        t0 = time.perf_counter()
        build(db, n)
        print(f"built a study of {n:,} trials in {time.perf_counter() - t0:.1f} s ({path})")
    else:
        print(f"reusing the study of {n:,} trials in {path}")

    rows: list[tuple[str, float, str, str]] = []
    # a running app has imported torch and the space builders at its first replay: warm them
    # up on another architecture so the first load measures the page, not the process start
    av.space_for("quickstart", (1, 8, 8), 10).sample(random.Random(1))
    av._SVG_CACHE.clear()
    snaps = Snapshots(db)
    sel = LiveState("big", 5)
    first, size = timed(lambda: live(snaps, sel), repeat=1)
    rows.append(("first load of the live view (read + render + JSON)", first, "<= 1 s",
                 f"{size:,} bytes of plot JSON"))
    cold = Snapshots(db)
    read, snap = timed(lambda: cold.get("big"), repeat=1)
    rows.append(("  of which: read the snapshot (cold)", read, "", f"{len(snap.trials):,} trials"))
    sig = signature(db, "big")
    tick, _ = timed(lambda: signature(db, "big") == sig, repeat=20)
    rows.append(("timer tick, nothing new (signature)", tick, "<= 5 ms", ""))
    last = snap.trials[-1]
    made = []

    def new_trial():
        t = db.create_trial("big", arch_hash=last.arch_hash, arch_text=last.arch_text,
                            arch_decisions=last.arch_decisions, space=last.space,
                            state="complete", metrics=dict(last.metrics))
        made.append(t.number)

    def refresh_after_new():
        new_trial()
        t0 = time.perf_counter()
        live(snaps, sel)
        return time.perf_counter() - t0

    after = min(refresh_after_new() for _ in range(3))
    rows.append(("refresh after a new trial (incremental read + render)", after, "<= 200 ms", ""))
    snap = snaps.get("big")
    paths = analysis.varied_paths(snap.complete, limit=40)
    other = Snapshots(db).get("big")
    cases = [
        ("parallel coordinates", lambda: analysis.parallel_coordinates(snap).to_json()),
        ("decision importance (forest, val_accuracy)",
         lambda: analysis.importance_figure(snap, "val_accuracy").to_json()),
        ("slice plot", lambda: analysis.slice_figure(snap, paths[0], "val_accuracy").to_json()),
        ("hypervolume history", lambda: analysis.hypervolume_figure(snap).to_json()),
        ("timeline per worker", lambda: analysis.timeline_figure(snap).to_json()),
        ("compare: best so far (2 studies)",
         lambda: analysis.compare_best_figure([snap, other], "val_accuracy").to_json()),
        ("compare: Pareto fronts (2 studies)",
         lambda: analysis.compare_fronts_figure([snap, other], "params",
                                                "val_accuracy").to_json()),
        ("lineage view (chain + 2 diagrams)",
         lambda: av.lineage_view(snap, next(t.number for t in reversed(snap.trials)
                                            if t.parent_numbers))),
    ]
    for label, fn in cases:
        seconds, _ = timed(fn, repeat=2)
        rows.append((label, seconds, "<= 1 s", ""))
    # the new trials stay: the next run sees a different count and rebuilds the study
    width = max(len(r[0]) for r in rows)
    print(f"\n{'step':<{width}}  {'ms':>8}  {'target':>9}  notes")
    print("-" * (width + 40))
    for label, seconds, target, note in rows:
        print(f"{label:<{width}}  {seconds * 1000:8.1f}  {target:>9}  {note}")
    db.close()


if __name__ == "__main__":
    main()

"""Time every UI view function on a synthetic study of 10,000 trials and print a table.

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
from ui import arch_views as av  # noqa: E402
from ui import views  # noqa: E402
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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    path = os.path.join(tempfile.gettempdir(), f"workbench-ui-bench-{n}.db")
    db = Storage(f"sqlite:///{path}")
    if not any(r.name == "big" and sum(db.count_trials("big").values()) == n
               for r in db.list_studies()):
        if db.list_studies():
            db.delete_study("big")
        t0 = time.perf_counter()
        build(db, n)
        print(f"built a study of {n:,} trials in {time.perf_counter() - t0:.1f} s ({path})")
    else:
        print(f"reusing the study of {n:,} trials in {path}")

    views._CACHE.clear()
    cold, trials = timed(lambda: views.complete_trials(db, "big"), repeat=1)
    newest, best = views.newest_and_best(db, "big")
    arch, _ = av.trial_arch(db, "big", best)
    child = max(t.number for t in trials[-50:] if t.parent_numbers)
    rows: list[tuple[str, float, str]] = [("complete_trials (cold: load once per change)", cold,
                                           f"{len(trials):,} trials")]
    cases = [
        ("signature (timer tick, nothing changed)", lambda: views.signature(db, "big"), ""),
        ("complete_trials (warm, cached)", lambda: views.complete_trials(db, "big"), ""),
        ("studies_table", lambda: views.studies_table(db), ""),
        ("progress_text (counts, ETA, best)", lambda: views.progress_text(db, "big"), ""),
        ("newest_and_best", lambda: views.newest_and_best(db, "big"), ""),
        ("metric_names", lambda: views.metric_names(trials, OBJECTIVES), ""),
        ("pareto_figure (scattergl, thinned)",
         lambda: views.pareto_figure(trials, OBJECTIVES, "params", "val_accuracy"), "front"),
        ("best_so_far_figure", lambda: views.best_so_far_figure(trials, OBJECTIVES), ""),
        ("trials_table page 1, by val_accuracy",
         lambda: views.trials_table(db, "big", sort="val_accuracy"), ""),
        ("trials_table last page, by number",
         lambda: views.trials_table(db, "big", page=10**6), ""),
        ("trials_table failed only", lambda: views.trials_table(db, "big", states=["failed"]),
         ""),
        ("curves_figure (12 trials)",
         lambda: views.curves_figure(db, "big", range(0, 600, 50)), ""),
        ("trial_arch (replay decisions)", lambda: av.trial_arch(db, "big", best), ""),
        ("diagram_html (cached render)", lambda: av.diagram_html(arch), ""),
        ("lineage_view (chain + 2 diagrams)", lambda: av.lineage_view(db, "big", child), ""),
    ]
    av._SVG_CACHE.clear()
    first, _ = timed(lambda: av.diagram_html(arch), repeat=1)
    rows.append(("diagram_html (first render, graphviz dot)", first, ""))
    for label, fn, note in cases:
        seconds, out = timed(fn)
        if note == "front":
            note = f"{len(out[1])} on the front, {len(out[0].data[0].x):,} dominated drawn"
        rows.append((label, seconds, note))
    width = max(len(r[0]) for r in rows)
    print(f"\n{'view function':<{width}}  {'ms':>8}  notes")
    print("-" * (width + 30))
    for label, seconds, note in rows:
        print(f"{label:<{width}}  {seconds * 1000:8.1f}  {note}")
    db.close()


if __name__ == "__main__":
    main()

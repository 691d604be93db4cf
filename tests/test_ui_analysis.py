"""Analysis views, study management, the two kinds of stop and the study report, on real stored
studies (SQLite files; synthetic metrics where the test needs to know the answer)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

pytest.importorskip("plotly")

from storage import Storage, TrialState  # noqa: E402
from storage.errors import ConflictError  # noqa: E402
from ui import analysis, control  # noqa: E402
from ui.snapshot import read_snapshot  # noqa: E402
from workbench.errors import ConfigError  # noqa: E402
from workbench.pareto import hypervolume, non_dominated  # noqa: E402
from workbench.stopping import StopMode, request_stop, stop_mode  # noqa: E402
from workbench.study import StudyConfig, create_study, parse_objectives, run_study  # noqa: E402

OBJECTIVES = [{"name": "val_accuracy", "direction": "maximize"},
              {"name": "params", "direction": "minimize"}]
OPS = ["relu", "gelu", "tanh", "identity"]


@pytest.fixture
def decided(tmp_path):
    """200 trials whose accuracy is decided by ``root/op`` (relu best) plus noise; ``root/width``
    is noise only; params grow with width. Two workers, timed one after another."""
    db = Storage(f"sqlite:///{tmp_path / 'd.db'}")
    db.create_study("d", space="toy", task="t", searcher="random", objectives=OBJECTIVES,
                    config={}, seed=0)
    rng = random.Random(0)
    for i in range(200):
        op, width = rng.choice(OPS), rng.choice([16, 32, 64])
        acc = {"relu": 0.9, "gelu": 0.7, "tanh": 0.5, "identity": 0.2}[op] + rng.gauss(0, 0.02)
        decisions = [["root", "net"], ["root/op", op], ["root/width", width]]
        t = db.create_trial("d", arch_hash=f"h{i}", arch_text=f"{op}-{width}",
                            arch_decisions=decisions, space="toy", state=TrialState.QUEUED)
        db.start_trial("d", t.number, worker=f"w{i % 2}")
        db.finish_trial("d", t.number, state=TrialState.COMPLETE,
                        metrics={"val_accuracy": acc, "params": width * 100 + rng.randint(0, 9)})
    yield db
    db.close()


def test_parallel_coordinates_and_the_brush(decided):
    snap = read_snapshot(decided, "d")
    dims = analysis.parcoords_dimensions(snap)
    labels = [d["label"] for d in dims]
    assert labels == ["trial #", "root/op", "root/width", "val_accuracy", "params"]
    op = dims[1]
    assert op["ticktext"] == sorted(OPS) and len(op["values"]) == 200
    fig = analysis.parallel_coordinates(snap)
    assert fig.data[0].type == "parcoords" and fig.layout.uirevision
    # brushing the accuracy axis above 0.8 keeps exactly the relu trials
    picked = analysis.brushed_numbers(dims, {"val_accuracy": [0.8, 1.2]})
    relu = {t.number for t in snap.complete if t.arch_text.startswith("relu")}
    assert set(picked) == relu
    relu_tick = op["ticktext"].index("relu")
    both = analysis.brushed_numbers(dims, {"root/op": [[relu_tick - 0.1, relu_tick + 0.1]],
                                           "root/width": [[-0.1, 0.1]]})
    assert both and all(snap.trial(n).arch_text == "relu-16" for n in both)
    assert analysis.brushed_numbers(dims, {}) is None


def test_importance_finds_the_decision_that_matters(decided):
    snap = read_snapshot(decided, "d")
    ranked = analysis.decision_importance(snap, "val_accuracy", seed=0)
    assert ranked[0][0] == "root/op" and ranked[0][1] > 0.8
    assert abs(sum(w for _, w in ranked) - 1) < 1e-9
    # params depend on the width only
    assert analysis.decision_importance(snap, "params", seed=0)[0][0] == "root/width"
    assert analysis.decision_importance(snap, "val_accuracy", seed=0) == ranked  # seeded
    fig = analysis.importance_figure(snap, "val_accuracy")
    assert list(fig.data[0].y)[-1] == "root/op"  # drawn bottom-up: the top bar is the first
    sl = analysis.slice_figure(snap, "root/op", "val_accuracy")
    assert [tr.name for tr in sl.data] == sorted(OPS)
    assert sum(len(tr.y) for tr in sl.data) == 200


def test_hypervolume_history_is_monotone_and_exact(decided):
    snap = read_snapshot(decided, "d")
    hist = analysis.hypervolume_history(snap, checkpoints=20)
    values = [v for _, v in hist]
    assert values == sorted(values) and hist[-1][0] == snap.complete[-1].number
    pts = [(t.metrics["val_accuracy"], t.metrics["params"]) for t in snap.complete]
    dirs = ["maximize", "minimize"]
    bounds = [(min(p[0] for p in pts), max(p[0] for p in pts)),
              (min(p[1] for p in pts), max(p[1] for p in pts))]
    ref = (bounds[0][0] - 0.1 * (bounds[0][1] - bounds[0][0]),
           bounds[1][1] + 0.1 * (bounds[1][1] - bounds[1][0]))
    front = [pts[i] for i in non_dominated(pts, dirs)]
    assert values[-1] == pytest.approx(hypervolume(front, dirs, ref, bounds=bounds))
    assert 0 < values[-1] <= 1.21
    single = replace(snap, study=replace(snap.study, objectives=OBJECTIVES[:1]))
    assert "two or more" in analysis.hypervolume_figure(single).layout.annotations[0].text


def test_timeline_has_a_row_per_worker(decided):
    snap = read_snapshot(decided, "d")
    fig = analysis.timeline_figure(snap)
    assert [tr.name for tr in fig.data] == ["complete"]
    assert set(fig.data[0].y) == {"w0", "w1"} and len(fig.data[0].x) == 200
    assert fig.layout.xaxis.type == "date"


def edge_score(arch, budget):
    """No training: NB201 cells score by their count of 3x3 convolutions (learnable)."""
    return {"val_accuracy": arch.text.count("conv_3x3") + 0.1 * arch.text.count("conv_1x1")}


def test_rank_quality_of_a_surrogate_study_is_stored_and_plotted(tmp_path):
    """The surrogate searcher's held-out rank quality travels with each trial (its proposal's
    info) and the analysis page plots it; a searcher without a predictor gets a message."""
    db = Storage(f"sqlite:///{tmp_path / 's.db'}")
    for name, searcher, opts in (("sur", "surrogate", {"n_init": 3, "holdout": 3,
                                                        "candidates": 10}),
                                 ("rnd", "random", {})):
        cfg = StudyConfig(space="nb201", task="digits", searcher=searcher,
                          searcher_options=opts, objectives=parse_objectives("val_accuracy"),
                          trials=12, executor="inline",
                          evaluator="tests.test_ui_analysis:edge_score")
        create_study(db, name, cfg)
        run_study(db, name)
    rows = analysis.rank_quality(read_snapshot(db, "sur"))
    stored = [t.info.get("surrogate_kendall_tau") for t in db.trials("sur")]
    assert [n for n, *_ in rows] == [i for i, tau in enumerate(stored) if tau is not None]
    assert len(rows) >= 5 and all(-1 <= tau <= 1 and h == 3 for _, tau, _, h in rows)
    fig = analysis.rank_quality_figure(read_snapshot(db, "sur"))
    assert [tr.name for tr in fig.data] == ["Kendall τ", "Spearman ρ"]
    assert list(fig.data[0].x) == [n for n, *_ in rows]
    empty = analysis.rank_quality_figure(read_snapshot(db, "rnd"))
    assert "no predictor rank quality" in empty.layout.annotations[0].text
    db.close()


def test_compare_studies_overlays_curves_and_fronts(decided):
    decided.create_study("e", space="toy", task="t", searcher="evolution", objectives=OBJECTIVES,
                         config={}, seed=0)
    for i, acc in enumerate([0.3, 0.6, 0.5, 0.95]):
        decided.create_trial("e", arch_hash=f"e{i}", arch_text="x", arch_decisions=[],
                             space="toy", state="complete",
                             metrics={"val_accuracy": acc, "params": 100 * (i + 1)})
    snaps = [read_snapshot(decided, "d"), read_snapshot(decided, "e")]
    best = analysis.compare_best_figure(snaps, "val_accuracy")
    assert [tr.name for tr in best.data] == ["d (random)", "e (evolution)"]
    assert list(best.data[1].y) == [0.3, 0.6, 0.95, 0.95]
    fronts = analysis.compare_fronts_figure(snaps, "params", "val_accuracy")
    assert len(fronts.data) == 2 and fronts.data[1].name == "e (3 of 4)"  # 0.5 at 300: dominated
    assert list(fronts.data[1].x) == [100, 200, 400]


def test_log_tail():
    text = "\n".join(f"line {i}" for i in range(100))
    tail = analysis.log_tail(text, 3)
    assert tail == "```\nline 97\nline 98\nline 99\n```"


# -- management and notes ------------------------------------------------------------------------
def test_notes_rename_duplicate_delete(tmp_path):
    db = Storage(f"sqlite:///{tmp_path / 'm.db'}")
    cfg = StudyConfig(space="quickstart", task="digits", objectives=parse_objectives("acc"),
                      trials=2, executor="inline", evaluator="tests.evaluators:param_score")
    create_study(db, "a", cfg)
    run_study(db, "a")
    db.set_note("a", "baseline")
    db.set_note("a", "odd one", trial=1)
    assert db.notes("a") == {None: "baseline", 1: "odd one"}
    db.set_note("a", "", trial=1)  # blank deletes
    assert db.notes("a") == {None: "baseline"}
    assert "renamed study a to b" == control.rename(db, "a", "b")
    assert db.notes("b") == {None: "baseline"} and len(db.trials("b")) == 2
    with pytest.raises(ConflictError, match="already exists"):
        db.rename_study("b", "b")
    assert "created study c" in control.duplicate(db, "b", "c")
    dup = db.get_study("c")
    assert dup.config["trials"] == 2 and db.trials("c") == [] and dup.status == "created"
    db.set_study_status("c", "running")
    with pytest.raises(ConfigError, match="expected a stopped study, found it (running|driver gone)"):
        control.delete(db, "c")
    db.set_study_status("c", "stopped")
    assert control.delete(db, "c") == "deleted study c"
    assert [s.name for s in db.list_studies()] == ["b"]
    db.delete_study("b")
    db.close()


def test_two_kinds_of_stop(tmp_path):
    db = Storage(f"sqlite:///{tmp_path / 's.db'}")
    db.create_study("s", space="q", task="t", searcher="random", objectives=OBJECTIVES,
                    config={}, seed=0)
    db.set_study_status("s", "running")
    assert "after its 0 trial(s) in flight: they finish and are recorded" in control.stop(db, "s")
    assert stop_mode(db.get_study("s").status) is StopMode.AFTER_RUNNING
    assert "cancelled and re-queued" in control.stop(db, "s", now=True)
    assert db.get_study("s").status == "cancelling"
    assert request_stop(db, "s") is StopMode.NOW  # a pending stop-now is never downgraded
    assert stop_mode("running") is None
    db.close()


# -- report ------------------------------------------------------------------------------------------
def test_study_report_is_self_contained(tmp_path):
    from typer.testing import CliRunner

    from workbench.cli import _load_commands, app

    url = f"sqlite:///{tmp_path / 'r.db'}"
    db = Storage(url)
    cfg = StudyConfig(space="quickstart", task="digits", objectives=parse_objectives("acc,params"),
                      trials=4, executor="inline", evaluator="tests.evaluators:param_score")
    create_study(db, "r", cfg)
    run_study(db, "r")
    db.close()
    _load_commands()
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "r", "--out", str(out), "--storage", url])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert html.count("<div class='diagram'><svg") == 3 and "Pareto front" in html and "best val_accuracy" in html
    assert "Top 4 by val_accuracy" in html and '"trials": 4' in html
    assert "Plotly" in html and "cdn.plot.ly" not in html.split("<body>")[1][:2000]
    assert "<script src=" not in html  # nothing fetched: plotly.js is inlined
    assert json.loads(html.split("<pre>")[1].split("</pre>")[0])["space"] == "quickstart"
    bad = CliRunner().invoke(app, ["report", "r", "--out", str(out), "--storage", url,
                                   "--view", "flat"])
    # a user error (workbench.cli.main prints it as one line, exit code 2)
    assert isinstance(bad.exception, ConfigError)
    assert "expected one of dataflow, macro, tree, found 'flat'" in str(bad.exception)


@pytest.mark.slow
def test_notes_rename_and_bulk_read_on_postgresql(postgres_db_url):
    db = Storage(postgres_db_url)
    db.create_study("p", space="toy", task="t", searcher="random", objectives=OBJECTIVES,
                    config={}, seed=0)
    for i in range(3):
        db.create_trial("p", arch_hash=f"h{i % 2}", arch_text=f"a{i % 2}", space="toy",
                        arch_decisions=[["root/op", OPS[i % 2]]], state="complete",
                        metrics={"val_accuracy": i / 10, "params": i})
    assert db.trials_from("p") == db.trials("p") and db.trials_from("p", 2) == db.trials("p")[2:]
    db.set_note("p", "on postgres")
    db.set_note("p", "third", trial=2)
    db.rename_study("p", "q")
    assert db.notes("q") == {None: "on postgres", 2: "third"}
    snap = read_snapshot(db, "q")
    assert [t.number for t in snap.complete] == [0, 1, 2] and snap.notes[2] == "third"
    db.delete_study("q")
    db.close()


def two_second_score(arch, budget):
    """param_score after 2 s: a stop request lands while the trial is in flight."""
    import time

    from tests.evaluators import param_score

    time.sleep(2.0)
    return param_score(arch, budget)


@pytest.mark.slow
@pytest.mark.parametrize("now", [False, True])
def test_the_driver_honours_each_kind_of_stop(tmp_path, now):
    """Stop after running trials records the trial in flight; stop now re-queues it."""
    import threading
    import time

    db = Storage(f"sqlite:///{tmp_path / 'd.db'}")
    cfg = StudyConfig(space="quickstart", task="digits", objectives=parse_objectives("acc"),
                      trials=6, executor="process", workers=1,
                      evaluator="tests.test_ui_analysis:two_second_score")
    create_study(db, "d", cfg)
    thread = threading.Thread(target=run_study, args=(db, "d"), daemon=True)
    thread.start()
    end = time.monotonic() + 60
    while not db.trials("d", states=[TrialState.RUNNING]):
        assert time.monotonic() < end, "the driver did not get going"
        time.sleep(0.05)
    in_flight = db.trials("d", states=[TrialState.RUNNING])[0].number
    time.sleep(0.3)  # well inside the 2 s trial
    request_stop(db, "d", now=now)
    thread.join(60)
    assert db.get_study("d").status == "stopped"
    state = db.get_trial("d", in_flight, with_curve=False).state
    assert state is (TrialState.QUEUED if now else TrialState.COMPLETE)
    assert db.count_trials("d")["running"] == 0
    assert db.count_trials("d")["complete"] + db.count_trials("d")["failed"] < 6
    db.close()

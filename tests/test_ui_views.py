"""The UI's view functions on real stored studies (SQLite files, real searches, real renders)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

pytest.importorskip("gradio")
pytest.importorskip("plotly")

from storage import Storage  # noqa: E402
from ui import arch_views as av  # noqa: E402
from ui import control, figures, panels, views  # noqa: E402
from ui.panels import LiveState  # noqa: E402
from ui.snapshot import Snapshots, read_snapshot  # noqa: E402
from workbench.errors import ConfigError  # noqa: E402
from workbench.pareto import non_dominated, nondominated_ranks  # noqa: E402
from workbench.study import StudyConfig, create_study, parse_objectives, run_study  # noqa: E402

pytestmark = pytest.mark.usefixtures("ui_allows_test_evaluators")

OBJECTIVES = [{"name": "val_accuracy", "direction": "maximize"},
              {"name": "params", "direction": "minimize"}]
EVAL = "tests.evaluators:param_score"


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    """A finished evolution study of 14 trials on quickstart (custom evaluator, no training)."""
    db = Storage(f"sqlite:///{tmp_path_factory.mktemp('ui') / 'ui.db'}")
    cfg = StudyConfig(space="quickstart", task="digits", searcher="evolution",
                      searcher_options={"population": 4, "sample_size": 2},
                      objectives=parse_objectives("acc,params"),
                      trials=14, executor="inline", evaluator=EVAL, budget={"epochs": 2})
    create_study(db, "evo", cfg)
    run_study(db, "evo")
    yield db
    db.close()


@pytest.fixture
def synthetic(tmp_path):
    """A study of 300 complete trials with spread-out metrics and one failure."""
    db = Storage(f"sqlite:///{tmp_path / 'syn.db'}")
    db.create_study("syn", space="quickstart", task="digits", searcher="random",
                    objectives=OBJECTIVES, config={"trials": 400}, seed=0)
    for i in range(300):
        acc, params = ((i * 37) % 101) / 100, 1000 + (i * 53) % 977
        db.create_trial("syn", arch_hash=f"h{i}", arch_text=f"arch {i}",
                        arch_decisions=[["x", i]], space="quickstart", state="complete",
                        metrics={"val_accuracy": acc, "params": params})
    t = db.create_trial("syn", arch_hash="bad", arch_text="bad arch", arch_decisions=[],
                        space="quickstart")
    db.finish_trial("syn", t.number, state="failed", error="shape mismatch at root/x")
    yield db
    db.close()


# -- studies and tables ------------------------------------------------------------------------------
def _snap(db, name):
    return read_snapshot(db, name)


def test_studies_table_counts_and_best(evolved):
    summaries, configs, states = control.ui_states(evolved)
    df = views.studies_table(summaries, configs, states, {"evo": "first try"})
    assert list(df.columns) == views.STUDY_COLUMNS
    row = df[df.study == "evo"].iloc[0]
    assert row.state == "finished" and row.searcher == "evolution" and row.space == "quickstart"
    assert row.done + row.failed == 14
    best = max(t.metrics["val_accuracy"] for t in evolved.trials("evo", states=["complete"]))
    assert row.best == views.fmt(best)
    assert row.objectives == "val_accuracy ↑, params ↓" and row.note == "first try"


def test_trials_table_pages_sorts_and_filters(synthetic):
    snap = _snap(synthetic, "syn")
    df, caption, pages = views.trials_table(snap, page=2, page_size=50)
    assert pages == 7 and "page 2 of 7" in caption and len(df) == 50
    assert df["#"].tolist() == list(range(50, 100))
    df, _, _ = views.trials_table(snap, sort="val_accuracy", page_size=5)
    assert df["val_accuracy"].tolist()[0] == "1"  # best first for a maximised objective
    df, _, _ = views.trials_table(snap, sort="params", page_size=5)
    assert df["params"].tolist()[0] == "1,000"  # smallest first for a minimised one
    df, caption, pages = views.trials_table(snap, states=["failed"])
    assert len(df) == 1 and pages == 1 and "(failed)" in caption
    assert df.iloc[0, -1] == "✗ shape mismatch at root/x"


def test_progress_text(evolved, synthetic):
    text = views.progress_text(_snap(evolved, "evo"), "finished")
    assert "14 / 14 trials (100%)" in text and "state **finished**" in text
    assert "best: trial #" in text
    assert "301 / 400 trials" in views.progress_text(_snap(synthetic, "syn"), "created")


# -- figures ---------------------------------------------------------------------------------------
def test_pareto_highlights_exactly_the_non_dominated(synthetic):
    trials = list(_snap(synthetic, "syn").complete)
    fig, front = figures.pareto_figure(trials, OBJECTIVES, "params", "val_accuracy")
    pts = [(t.metrics["params"], t.metrics["val_accuracy"]) for t in trials]
    expected = {trials[i].number for i in non_dominated(pts, ["minimize", "maximize"])}
    assert set(front) == expected and len(front) >= 2
    dominated, front_trace = fig.data[0], fig.data[1]
    assert set(front_trace.customdata) == expected
    assert not expected & set(dominated.customdata)
    assert len(dominated.customdata) + len(front_trace.customdata) == 300
    assert fig.layout.xaxis.title.text.startswith("params")
    assert fig.layout.yaxis.title.text.startswith("val_accuracy")
    assert "trial #" in front_trace.hovertext[0]


def test_front_2d_matches_the_reference_with_ties():
    import random

    rng = random.Random(1)
    for dirs in (["maximize", "minimize"], ["minimize", "minimize"], ["maximize", "maximize"]):
        pts = [(rng.randint(0, 12), rng.randint(0, 12)) for _ in range(150)]
        pairwise = [i for i, r in enumerate(nondominated_ranks(pts, dirs)) if r == 0]
        assert figures.front_2d(pts, dirs) == non_dominated(pts, dirs) == pairwise


def test_pareto_axis_choice_and_direction(synthetic):
    trials = list(_snap(synthetic, "syn").complete)
    _, front_a = figures.pareto_figure(trials, OBJECTIVES, "params", "val_accuracy")
    fig, front_b = figures.pareto_figure(trials, OBJECTIVES, "val_accuracy", "params")
    assert set(front_a) == set(front_b)  # same front whichever way round it is drawn
    assert fig.layout.xaxis.title.text.startswith("val_accuracy")
    # Both maximised: a different front (the best accuracy with the *most* params).
    flipped = [{"name": "val_accuracy", "direction": "maximize"},
               {"name": "params", "direction": "maximize"}]
    _, front_c = figures.pareto_figure(trials, flipped, "params", "val_accuracy")
    assert set(front_c) != set(front_a)
    fig, front = figures.pareto_figure(trials, OBJECTIVES, "params", "latency_ms")
    assert front == [] and "no complete trial has both" in fig.layout.annotations[0].text


def test_pareto_thins_dominated_points_but_keeps_the_front(synthetic):
    trials = list(_snap(synthetic, "syn").complete)
    fig, front = figures.pareto_figure(trials, OBJECTIVES, "params", "val_accuracy",
                                     max_points=40, selected=trials[5].number)
    assert len(fig.data[0].customdata) == 40 and len(fig.data[1].customdata) == len(front)
    assert fig.data[2].customdata == (trials[5].number,)  # the selected star


def test_best_so_far_is_monotone_and_exact(synthetic):
    trials = list(_snap(synthetic, "syn").complete)
    steps = figures.best_so_far(trials, "val_accuracy", "maximize")
    values = [v for _, v in steps]
    assert values == sorted(values) and values[-1] == 1.0
    running, expected = -1.0, []
    for t in trials:
        if t.metrics["val_accuracy"] > running:
            running = t.metrics["val_accuracy"]
            expected.append((t.number, running))
    assert steps == expected
    fig = figures.best_so_far_figure(trials, OBJECTIVES, max_points=50)
    assert len(fig.data[0].x) == 50 and fig.data[1].y[-1] == 1.0
    assert fig.data[1].x[-1] == trials[-1].number


def test_curves_of_selected_trials(evolved):
    numbers = [t.number for t in evolved.trials("evo", states=["complete"], limit=3)]
    fig = figures.curves_figure(evolved.curves("evo", numbers), numbers)
    assert [tr.name for tr in fig.data] == [f"#{n}" for n in numbers]
    assert all(list(tr.x) == [1, 2] for tr in fig.data)  # 2 epochs each
    fig = figures.curves_figure(evolved.curves("evo", numbers), numbers, metric="nothing")
    assert "no nothing curve" in fig.layout.annotations[0].text
    with pytest.raises(ConfigError, match="found 'x'"):
        views.parse_numbers("3, x")
    assert views.parse_numbers("#3, 7 12") == [3, 7, 12]


def test_snapshot_rereads_only_from_the_first_unfinished_trial(synthetic):
    snaps = Snapshots(synthetic)
    first = snaps.get("syn")
    assert snaps.get("syn") is first  # unchanged study: the same snapshot
    running = synthetic.create_trial("syn", arch_hash="run", arch_text="run", space="quickstart",
                                     arch_decisions=[])
    second = snaps.get("syn")
    assert len(second.trials) == len(first.trials) + 1
    assert all(a is b for a, b in zip(first.trials, second.trials))  # finished: kept, not read
    synthetic.finish_trial("syn", running.number, state="complete",
                           metrics={"val_accuracy": 0.5, "params": 5})
    third = snaps.get("syn")
    assert third.trial(running.number).state.value == "complete"
    assert third.trials[0] is first.trials[0] and len(third.complete) == len(first.complete) + 1
    synthetic.delete_study("syn")  # the same name again is another study: read whole
    synthetic.create_study("syn", space="quickstart", task="digits", searcher="random",
                           objectives=OBJECTIVES, config={}, seed=0)
    assert snaps.get("syn").trials == ()


def test_figures_keep_zoom_across_refreshes(synthetic):
    trials = list(_snap(synthetic, "syn").complete)
    a, _ = figures.pareto_figure(trials, OBJECTIVES, "params", "val_accuracy", revision="syn")
    b, _ = figures.pareto_figure(trials[:-5], OBJECTIVES, "params", "val_accuracy",
                                 revision="syn")
    c, _ = figures.pareto_figure(trials, OBJECTIVES, "val_accuracy", "params", revision="syn")
    assert a.layout.uirevision == b.layout.uirevision != c.layout.uirevision  # new axes: reset
    assert figures.best_so_far_figure(trials, OBJECTIVES, revision="syn").layout.uirevision


# -- live page state and panels ------------------------------------------------------------------
def test_selection_is_tied_to_its_study(evolved):
    sel = LiveState("evo", None).select("evo", 5)
    assert sel.on_study("evo") is sel and sel.on_study("cli1") == LiveState("cli1", None)
    snap = _snap(evolved, "evo")
    assert views.trial_header(snap, 5).startswith("**evo · trial #5** · ")
    view = panels.live_view(snap, "finished", LiveState("other", 5), x=None, y=None, depth=3,
                            view="dataflow", sort=None, descending=False, states=None, page=1)
    names = [tr.name for tr in view.pareto.data]
    assert not any(n.startswith("selected") for n in names)  # another study's selection
    assert "click a point" in view.card
    view = panels.live_view(snap, "finished", LiveState("evo", 5), x=None, y=None, depth=3,
                            view="dataflow", sort=None, descending=False, states=None, page=1)
    assert "evo · trial #5" in view.card and "<svg" in view.card_html
    assert [tr.name for tr in view.pareto.data][-1] == "selected #5"
    assert (view.y, view.x) == ("val_accuracy", "params")


def test_a_bad_curve_box_blocks_nothing(evolved):
    snap = _snap(evolved, "evo")
    v = panels.trial_view(snap, 3, view="dataflow", depth=3, curve_text="0, x9")
    assert "found 'x9'" in v.curve_message and v.curve_numbers[0] == 3
    assert "evo · trial #3" in v.info and "<svg" in v.diagram
    assert views.curve_numbers("2 4", 3, 1) == ([2, 4], "")
    with pytest.raises(ConfigError, match="trial #: expected a trial number"):
        views.parse_trial_number("x9")


@pytest.fixture(scope="module")
def resnets(tmp_path_factory):
    """An einspace study: resnet18 (#0) and a child of it with one decision changed (#1)."""
    from workbench.architecture import Decision

    db = Storage(f"sqlite:///{tmp_path_factory.mktemp('rn') / 'rn.db'}")
    cfg = StudyConfig(space="einspace", task="synthetic-cifar", objectives=parse_objectives(
        "acc,params"), trials=2, executor="inline", evaluator=EVAL)
    create_study(db, "rn", cfg)
    space = av.space_for("einspace", (3, 32, 32), 10)
    parent = space.seed("resnet18")
    decisions = list(parent.decisions)
    i = next(k for k, d in enumerate(decisions) if d.choice == "relu")
    child = space.replay([*decisions[:i], Decision(decisions[i].path, "identity"),
                          *decisions[i + 1:]])
    for n, arch in enumerate((parent, child)):
        db.create_trial("rn", arch_hash=arch.hash, arch_text=arch.text, space=arch.space,
                        arch_decisions=[[d.path, d.choice] for d in arch.decisions],
                        parent_numbers=[0] if n else [], state="complete",
                        metrics={"val_accuracy": 0.5 + n / 10, "params": 1000 - n})
    yield db
    db.close()


def test_depth_redraws_every_diagram(resnets):
    snap = _snap(resnets, "rn")
    sel = LiveState("rn", 1)
    shallow = panels.diagrams(snap, sel, "dataflow", 1)
    deep = panels.diagrams(snap, sel, "dataflow", 0)
    for key in ("newest", "best", "trial", "lineage", "card"):
        assert "<svg" in deep[key] and "<svg" in shallow[key], key
    for key in ("newest", "best", "trial", "lineage"):
        assert len(shallow[key]) < len(deep[key]), key  # depth 1 collapses the stages
    assert panels.diagrams(snap, LiveState("other", 1), "dataflow", 1)["trial"] == ""
    text, _ = av.lineage_view(snap, 1)
    assert "→ identity" in text and "relu → identity" in text


# -- architectures ---------------------------------------------------------------------------------
def test_trial_diagrams_embed_svg(evolved):
    arch, trial = av.snapshot_arch(_snap(evolved, "evo"), 0)
    assert arch.hash == trial.arch_hash
    html = av.diagram_html(arch, caption="trial #0")
    assert "<svg" in html and "<?xml" not in html and "trial #0" in html
    tree = av.diagram_html(arch, view="tree")
    assert "<svg" in tree and tree != html
    assert "no best trial yet" in av.diagram_html(None, caption="no best trial yet")


def test_lineage_highlights_the_mutation(evolved):
    children = [t for t in evolved.trials("evo") if t.parent_numbers]
    assert children, "evolution produced no child"
    child = children[-1]
    snap = _snap(evolved, "evo")
    chain = av.lineage(snap, child.number)
    assert chain[0].number == child.number and chain[1].number == child.parent_numbers[0]
    text, html = av.lineage_view(snap, child.number)
    assert " → " in text.split("changed")[-1]  # the change in words: path: before → after
    assert f"#{child.number}" in text and f"#{child.parent_numbers[0]}" in text
    assert f"parent #{child.parent_numbers[0]}" in html and "changed: " in html
    assert "#e41a1c" in html.lower()  # the diagram's highlight colour
    orphan = next(t for t in evolved.trials("evo") if not t.parent_numbers)
    assert "has no parent" in av.lineage_view(snap, orphan.number)[0]


def test_explorer_messages():
    arch, msg = av.explore("einspace", "3,8,8", 10,
                           "sequential[computation[linear(16)], computation[relu]]")
    assert arch is not None and msg.startswith("✓")
    arch, msg = av.explore("einspace", "3,8,8", 10, "sequential[computation[linear(16)],")
    assert arch is None and "line 1, column" in msg and "^" in msg
    arch, msg = av.explore("einspace", "3,8,8", 10, "sequential[computation[bogus]]")
    assert arch is None and "expected" in msg
    arch, msg = av.explore("nosuchspace", "3,8,8", 10, "x")
    assert arch is None and "expected a search space" in msg and "einspace" in msg
    arch, msg = av.explore("einspace", "3,a,8", 10, "x")
    assert arch is None and "input shape: expected positive integers" in msg
    arch, msg = av.explore("einspace", "3,32,32", 10, "resnet18")
    assert arch is not None
    info = av.summary_markdown(arch)
    assert "parameters" in info and "FLOPs" in info and "3×32×32" in info
    # the explorer's view control offers the macro view: ResNet-18's stages drawn once each
    macro = av.explorer_view(arch, "macro", 3)[2]
    assert "×3 [residual block" in macro and "×3 [residual block" not in \
        av.explorer_view(arch, "dataflow", 3)[2]


def test_sampling_is_seeded():
    a = av.sample("quickstart", "1,8,8", 10, seed=3, n=2)
    b = av.sample("quickstart", "1,8,8", 10, seed=3, n=2)
    assert [x.hash for x in a] == [x.hash for x in b]


def test_export_trial_bytes(evolved, tmp_path):
    from safetensors.torch import load_file

    from workbench.export import export_bytes

    path = av.export_trial(evolved, "evo", 1, "json", tmp_path)
    data = json.loads(path.read_bytes())
    assert path.name == "evo-trial1.json" and data["decisions"]
    py = av.export_trial(evolved, "evo", 1, "py", tmp_path)
    compile(py.read_text(), str(py), "exec")
    assert av.export_trial(evolved, "evo", 1, "svg", tmp_path).read_text().lstrip().startswith(
        "<?xml")
    arch, _ = av.snapshot_arch(_snap(evolved, "evo"), 1)
    trained = export_bytes(arch, "weights", seed=12345)  # stands in for trained weights
    evolved.put_artifact("evo", 1, "weights.safetensors", trained)
    out = load_file(av.export_trial(evolved, "evo", 1, "weights", tmp_path))
    ref = load_file(_write(tmp_path / "ref.safetensors", trained))
    assert out.keys() == ref.keys() and all((out[k] == ref[k]).all() for k in ref)
    with pytest.raises(ConfigError, match="format"):
        av.export_trial(evolved, "evo", 1, "zip", tmp_path)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


# -- control -----------------------------------------------------------------------------------------
def test_form_validation_messages(tmp_path):
    db = Storage(f"sqlite:///{tmp_path / 'f.db'}")
    common = dict(name="s", space="quickstart", task="digits", searcher="evolution", seeds=[],
                  objectives="acc", trials=3, epochs=1, workers=1, seed=0)
    with pytest.raises(ConfigError, match="option population expected a whole number in 0..1000000, found 'many'"):
        control.create(db, option_table=[["population", "many", ""]], **common)
    with pytest.raises(ConfigError, match="expected options .* found 'nope'"):
        control.create(db, option_table=[["nope", "1", ""]], **common)
    with pytest.raises(ConfigError, match="trials: expected an integer >= 1"):
        control.create(db, option_table=[], **{**common, "trials": 0})
    with pytest.raises(ConfigError, match="objectives"):
        control.create(db, option_table=[], **{**common, "objectives": "acc,,bogus"})
    rows = control.option_rows("evolution")
    assert [r[0] for r in rows][:2] == ["population", "sample_size"]
    assert control.create(db, option_table=rows, **common) == "s"
    assert db.get_study("s").config["searcher_options"] == {}  # defaults are not stored


def test_the_ui_imports_no_user_code_and_reads_only_its_data_root(tmp_path, monkeypatch):
    from ui.policy import ServePolicy, set_policy

    db = Storage(f"sqlite:///{tmp_path / 'p.db'}")
    common = dict(name="s", space="quickstart", task="digits", searcher="random", seeds=[],
                  objectives="acc", trials=2, epochs=1, workers=1, seed=0, option_table=[])
    set_policy(ServePolicy(frozenset(), tmp_path))
    try:
        imported = set(sys.modules)
        with pytest.raises(ConfigError, match="imports no module 'this'"):
            control.create(db, **{**common, "evaluator": "this:s"})
        assert "this" not in set(sys.modules) - imported  # the Zen of Python stays unprinted
        with pytest.raises(ConfigError, match="imports no module 'tests.evaluators'"):
            control.create(db, **{**common, "evaluator": EVAL})
        with pytest.raises(ConfigError, match="imports no module"):
            control.create(db, **{**common, "space": "os:system"})
        for outside in ("folder:/etc", "npz:../../secret.npz", "folder:/nonexistent/x"):
            with pytest.raises(ConfigError, match="^task .*: expected a path inside the UI's "
                                                  "data root$"):
                control.create(db, **{**common, "task": outside})
        set_policy(ServePolicy(frozenset({"tests"}), tmp_path))
        assert control.create(db, **{**common, "evaluator": EVAL}) == "s"
    finally:
        set_policy(ServePolicy())


def test_seed_architectures_are_queued_for_non_evolution(tmp_path):
    db = Storage(f"sqlite:///{tmp_path / 's.db'}")
    seeds = list(av.space_for("einspace", (3, 32, 32), 10).seeds())[:2]
    name = control.create(db, name="", space="einspace", task="synthetic-cifar",
                          searcher="random", option_table=[], seeds=seeds, objectives="acc",
                          trials=3, epochs=1, workers=1, seed=0)
    queued = db.trials(name, states=["queued"])
    assert len(queued) == 2 and name.startswith("einspace-random-")


@pytest.mark.slow
def test_background_driver_kill_resume_stop(tmp_path):
    """A real detached driver: killed -> 'driver gone'; resumed -> finishes in the background."""
    db = Storage(f"sqlite:///{tmp_path / 'bg.db'}")
    name = control.create(db, name="bg", space="quickstart", task="digits", searcher="random",
                          option_table=[], seeds=[], objectives="acc,params", trials=4,
                          epochs=1, workers=1, seed=0, evaluator=EVAL)
    os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests importable
    assert "started" in control.start(db, name)
    _wait(lambda: control.driver_alive(db.lease(name)), 60)  # it holds the study's lease
    pid = db.lease(name).pid
    assert pid == db.get_study(name).config["driver"]["pid"]
    assert "is being driven by pid" in control.start(db, name)  # one driver per study
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: control.driver_alive(db.lease(name)) is False, 10)
    db.set_study_status(name, "running")  # what a driver killed mid-run leaves behind
    rec = db.get_study(name)
    assert control.study_state(rec.status, db.lease(name)) == "driver gone"
    assert "driver was gone" in control.stop(db, name)
    assert db.get_study(name).status == "stopped"
    assert "started" in control.resume(db, name, extra_trials=2)
    _wait(lambda: db.get_study(name).status == "finished", 90)
    counts = db.count_trials(name)
    assert counts["complete"] + counts["failed"] == 6
    log = control.log_path(db.url, name)
    assert log.is_file() and log.parent.name == "bg.db-logs"
    _wait(lambda: not control.driver_alive(db.lease(name)), 30)
    assert "not running" in control.stop(db, name)
    with pytest.raises(ConfigError, match="in-memory"):
        mem = Storage("sqlite://")
        mem.create_study("m", space="q", task="t", searcher="random", objectives=OBJECTIVES,
                         config={}, seed=0)
        control.start(mem, "m")


def _wait(cond, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s ({sys.argv[0]})")


def test_the_ui_exposes_no_api_endpoints():
    from ui.app import build_app

    app = build_app(Storage("sqlite://"))
    info = app.get_api_info()
    assert info["named_endpoints"] == {} and info["unnamed_endpoints"] == {}
    assert app.fns and all(fn.api_visibility == "private" for fn in app.fns.values())


def test_searcher_form_says_what_to_expect_against_random():
    from ui.wiring import searcher_form

    text, rows = searcher_form("hyperband")
    assert text.startswith("**hyperband**") and "*Versus random:* not meant to beat random" in text
    assert {r[0] for r in rows} >= {"base", "eta"}
    text, _ = searcher_form("random")
    assert "*Versus random:* the baseline" in text

"""Searcher info stored per trial, zero-cost proxies as metrics, the pre-filter and proxy
constraints, through the real study loop (inline executor, tiny spaces and tasks)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Storage, TrialState
from workbench.errors import ConfigError
from workbench.proposing import MAX_INFO_BYTES, storable_info
from workbench.searchers import Objective
from workbench.study import StudyConfig, create_study, parse_objectives, run_study

ROOT = Path(__file__).resolve().parents[1]


def cli(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300)


@pytest.fixture
def db(tmp_path):
    st = Storage(f"sqlite:///{tmp_path / 'w.db'}")
    yield st
    st.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request, tmp_path):
    """The study database on each backend (the PostgreSQL one skipped where not installed)."""
    url = (f"sqlite:///{tmp_path / 'b.db'}" if request.param == "sqlite"
           else request.getfixturevalue("postgres_db_url"))
    st = Storage(url)
    yield st
    st.close()


# -- searcher info ------------------------------------------------------------------------------
def test_surrogate_rank_quality_is_stored_with_each_trial(any_db):
    db = any_db
    cfg = StudyConfig(space="mlp", task="digits", trials=10, executor="inline", seed=1,
                      searcher="surrogate",
                      searcher_options={"n_init": 3, "candidates": 6, "holdout": 3},
                      objectives=(Objective("val_accuracy"),),
                      evaluator="tests.evaluators:param_score")
    create_study(db, "s", cfg)
    run_study(db, "s")
    trials = db.trials("s")
    assert len(trials) == 10
    modelled = [t.info for t in trials if t.info.get("origin") == "surrogate"]
    assert modelled, [t.info for t in trials]
    assert all(info["screened"] > 0 and "surrogate_spearman" in info for info in modelled)
    measured = [info for info in modelled if info["surrogate_kendall_tau"] is not None]
    assert measured, modelled
    assert all(-1 <= i["surrogate_kendall_tau"] <= 1 and i["surrogate_holdout"] == 3
               for i in measured)


def test_info_that_cannot_be_stored_is_dropped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="workbench.proposing"):
        assert storable_info({"blob": "x" * MAX_INFO_BYTES}, "study s ask 3") is None
        assert storable_info({"model": object()}, "study s ask 4") is None
    assert "study s ask 3: searcher info not stored: expected at most 65,536" in caplog.text
    assert "study s ask 4: searcher info not stored: cannot store info['model']" in caplog.text
    assert storable_info({}, "x") is None and storable_info({"rung": 1}, "x") == {"rung": 1}


# -- proxies as trial metrics ------------------------------------------------------------------
RELU = "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]"
NO_RELU = ("sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], "
           "computation[identity]]")
TINY = {"epochs": 1, "batch_size": 64, "steps": 5}


def _queued_study(db, name, objectives, texts, **kw):
    from workbench.study import enqueue, load_config, study_space

    cfg = StudyConfig(space="einspace", task="digits", trials=len(texts), executor="inline",
                      seed=2, proxies=("synflow", "naswot"), objectives=parse_objectives(objectives),
                      budget=TINY, **kw)
    create_study(db, name, cfg)
    space = study_space(load_config(db, name))
    for text in texts:
        enqueue(db, name, space.parse(text))
    return run_study(db, name), space


def test_proxies_are_metrics_computed_on_the_trials_own_batch_and_weights(db):
    import math

    from workbench.proxies import compute_proxies, task_batch
    from workbench.seeds import derive_seed
    from workbench.study import trial_architecture
    from workbench.tasks import get_task

    summary, space = _queued_study(db, "p", "val_accuracy:max,naswot:max", [RELU, NO_RELU])
    ok, no_relu = db.trials("p")
    assert ok.state is TrialState.COMPLETE and summary.complete == 1
    assert math.isfinite(ok.metrics["naswot"]) and math.isfinite(ok.metrics["synflow"])
    assert "val_accuracy" in ok.metrics  # trained as well
    # the worker scores the network its training starts from, on a batch drawn from the job seed
    seed = derive_seed(2, "trial", ok.number)
    batch = task_batch(get_task("digits", seed=2), 32, seed=derive_seed(seed, "proxies"))
    expected = compute_proxies(trial_architecture(space, ok), batch, seed, ("synflow", "naswot"))
    assert {k: ok.metrics[k] for k in expected} == expected
    # an objective proxy that cannot be computed fails the trial before training, with why
    assert no_relu.state is TrialState.FAILED and no_relu.metrics["naswot"] is None
    assert no_relu.error.startswith("objective naswot: expected a finite zero-cost proxy")
    assert "val_accuracy" not in no_relu.metrics and no_relu.metrics["synflow"] is not None


def test_a_proxy_that_cannot_be_computed_is_stored_as_none_and_breaks_nothing(db):
    summary, _ = _queued_study(db, "p", "val_accuracy:max", [NO_RELU])
    (t,) = db.trials("p")
    assert t.state is TrialState.COMPLETE and summary.complete == 1, t.error
    assert t.metrics["naswot"] is None and t.metrics["val_accuracy"] is not None


def test_proxies_with_a_custom_evaluator_use_a_synthetic_batch(db):
    cfg = StudyConfig(space="mlp", task="digits", trials=2, executor="inline", seed=1,
                      proxies=("grad_norm", "snip"), evaluator="tests.evaluators:param_score")
    create_study(db, "e", cfg)
    run_study(db, "e")
    assert all(t.metrics["grad_norm"] > 0 and t.metrics["snip"] > 0 for t in db.trials("e"))


@pytest.mark.parametrize("kw, message", [
    ({"proxies": ("naswot", "zen")}, "--proxies: expected names among synflow, naswot, snip, "
                                     "grad_norm, found 'zen'"),
    ({"proxies": ("naswot", "naswot")}, "--proxies: expected a tuple of distinct names"),
    ({"proxies": "naswot"}, "--proxies: expected a tuple of distinct names"),
])
def test_proxy_config_errors_are_one_line(kw, message):
    with pytest.raises(ConfigError) as err:
        StudyConfig(**kw)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.slow
def test_cli_proxies_objective_and_a_bad_name(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    out = cli("search", "--space", "mlp", "--trials", "2", "--executor", "inline",
              "--evaluator", "tests.evaluators:param_score", "--proxies", "synflow,naswot",
              "--objectives", "val_accuracy:max,naswot:max", "--storage", url, "--study", "c")
    assert out.returncode == 0, out.stderr
    with Storage(url) as st:
        assert st.get_study("c").config["proxies"] == ["synflow", "naswot"]
        for t in st.trials("c"):  # an mlp without a ReLU has no naswot: failed, saying so
            assert (t.state is TrialState.COMPLETE) == (t.metrics["naswot"] is not None)
            assert t.state is TrialState.COMPLETE or "objective naswot" in t.error
    for args, line in [
            (["--proxies", "synflow,zen"], "error: --proxies: expected names among synflow, "
                                           "naswot, snip, grad_norm, found 'zen'"),
            (["--prefilter", "naswot:top2"], "error: --prefilter: expected PROXY:topF"),
            (["--constraint", "naswot>400"], "error: --constraint: expected PROXY>=X")]:
        bad = cli("search", *args, "--storage", url)
        lines = bad.stderr.strip().splitlines()
        assert bad.returncode == 2 and len(lines) == 1 and lines[0].startswith(line), bad.stderr
    out = cli("search", "--space", "mlp", "--trials", "2", "--executor", "inline", "--seed", "3",
              "--evaluator", "tests.evaluators:param_score", "--prefilter", "synflow:top0.5",
              "--constraint", "synflow>=1", "--constraint", "params<=100000", "--storage", url,
              "--study", "f")
    assert out.returncode == 0, out.stderr
    assert "pruned in" in out.stdout  # "finished: 2 complete, 0 failed, 2 pruned in 0.3s"
    with Storage(url) as st:
        assert st.get_study("f").config["constraints"] == {"min_synflow": 1.0,
                                                           "max_params": 100000}
        assert st.count_trials("f").get("pruned", 0) >= 1


# -- the pre-filter -----------------------------------------------------------------------------
def _prefiltered(db, name="f", **kw):
    cfg = StudyConfig(space="mlp", space_options={"depth_bias": 0.0}, task="digits", trials=4,
                      executor="inline", seed=3, evaluator="tests.evaluators:param_score",
                      prefilter="synflow:top0.25", **kw)
    create_study(db, name, cfg)
    return run_study(db, name)


def test_the_prefilter_trains_the_best_of_each_pool_and_prunes_the_rest(any_db):
    import re

    db = any_db

    summary = _prefiltered(db)
    trials = db.trials("f")
    kept = [t for t in trials if t.state is TrialState.COMPLETE]
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert summary.complete == len(kept) == 4  # --trials counts trained trials only
    assert summary.pruned == len(pruned) > 0 and len(trials) == len(kept) + len(pruned)
    assert all("val_accuracy" in t.metrics and "synflow" in t.metrics for t in kept)
    by_number = {t.number: t for t in trials}
    for t in pruned:  # never trained; the reason names the proxy, the pool and its best
        assert "val_accuracy" not in t.metrics and t.tell_index is not None
        m = re.fullmatch(r"pre-filter: synflow (\S+) (below|not above) the best of ([1-4]) "
                         r"\((\S+), trial (\d+)\)", t.error)
        assert m, t.error
        best = by_number[int(m.group(5))]
        assert best.state is TrialState.COMPLETE
        assert t.metrics["synflow"] <= best.metrics["synflow"]
        assert m.group(1) == f"{t.metrics['synflow']:.4g}"
        assert m.group(4) == f"{best.metrics['synflow']:.4g}"
    # asks go in pools of 4: every ask is a trial or a logged repeat, none lost
    repeats = db.repeats("f")
    asks = sorted([t.ask_index for t in trials] + [a for _, a, _ in repeats])
    assert asks == list(range(len(asks))) and len(asks) % 4 == 0
    # a proposal repeating one made earlier in its own pool is logged, not told (it runs)
    assert any(tell is None for _, _, tell in repeats), repeats


def test_the_kept_proxy_is_the_drivers_value_and_not_computed_again(db):
    from workbench.proxies import compute_proxies, synthetic_batch
    from workbench.seeds import derive_seed
    from workbench.study import load_config, study_space, trial_architecture

    _prefiltered(db, proxies=("synflow", "naswot"))
    space = study_space(load_config(db, "f"))
    seed = derive_seed(3, "prefilter")
    batch = synthetic_batch((1, 8, 8), 10, 32, seed=seed)  # custom evaluator: synthetic
    for t in db.trials("f", states=[TrialState.COMPLETE]):
        arch = trial_architecture(space, t)
        assert t.metrics["synflow"] == compute_proxies(arch, batch, seed, ("synflow",))["synflow"]
        assert "naswot" in t.metrics  # the worker's, on the trial's own batch


def test_prefilter_config_errors_are_one_line():
    for bad in ("naswot:top0", "naswot", "zen:top0.5", "naswot:top1.5"):
        with pytest.raises(ConfigError, match=r"^--prefilter: expected PROXY:topF") as err:
            StudyConfig(prefilter=bad)
        assert "\n" not in str(err.value)


# -- proxy constraints --------------------------------------------------------------------------
def test_a_proxy_constraint_fails_a_trial_before_training(db):
    cfg = StudyConfig(space="mlp", task="digits", trials=6, executor="inline", seed=5,
                      evaluator="tests.evaluators:param_score",
                      constraints={"min_synflow": 5.0, "max_params": 10**9})
    create_study(db, "c", cfg)
    summary = run_study(db, "c")
    trials = db.trials("c")
    failed = [t for t in trials if t.state is TrialState.FAILED]
    assert summary.failed == len(failed) > 0 and summary.complete == 6 - len(failed)
    for t in failed:
        assert t.metrics["synflow"] < 5.0 and "val_accuracy" not in t.metrics
        assert t.error == f"constraint min_synflow=5 violated: found synflow {t.metrics['synflow']:.4g}"
    assert all(t.metrics["synflow"] >= 5.0 for t in trials if t.state is TrialState.COMPLETE)


def test_a_constraint_on_a_proxy_that_cannot_be_computed_is_violated(db):
    # proposals only: a trial queued by hand is trained as queued
    cfg = StudyConfig(space="mlp", task="digits", trials=8, executor="inline", seed=5,
                      evaluator="tests.evaluators:param_score", constraints={"max_naswot": 1e9})
    create_study(db, "q", cfg)
    run_study(db, "q")
    trials = db.trials("q")
    assert {t.state for t in trials} == {TrialState.COMPLETE, TrialState.FAILED}
    for t in trials:  # an mlp without a ReLU has no naswot
        assert (t.metrics["naswot"] is None) == ("relu" not in t.arch_text)
        if t.metrics["naswot"] is None:
            assert t.state is TrialState.FAILED and t.error.startswith(
                "constraint max_naswot=1e+09 violated: found no finite naswot")


@pytest.mark.parametrize("text, expected", [
    ("naswot>=400", ("min_naswot", 400.0)), ("synflow <= 2.5", ("max_synflow", 2.5)),
    ("params<=5000", ("max_params", 5000)), ("flops<=1e6", ("max_flops", 1_000_000)),
])
def test_parse_constraint(text, expected):
    from workbench.proposing import parse_constraint

    assert parse_constraint(text) == expected


@pytest.mark.parametrize("kw, message", [
    ({"constraints": {"min_zen": 1}}, "constraints: expected max_params, max_flops, min_PROXY"),
    ({"constraints": {"min_params": 1}}, "constraints: expected max_params, max_flops"),
    ({"constraints": {"min_naswot": "big"}}, "constraint min_naswot: expected a finite number, "
                                             "found 'big'"),
    ({"constraints": {"max_params": -1}}, "constraint max_params: expected a positive number"),
])
def test_constraint_config_errors_are_one_line(kw, message):
    with pytest.raises(ConfigError) as err:
        StudyConfig(**kw)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


# -- the UI's new-study form ---------------------------------------------------------------------
FORM = dict(space="mlp", task="digits", searcher="random", seeds=[], option_table=[],
            objectives="acc", trials=2, epochs=1, workers=1, seed=0)


def test_the_form_maps_proxies_prefilter_and_constraints_to_the_config(db):
    from ui import control

    name = control.create(db, name="u", proxies="synflow, naswot", prefilter=" naswot:top25% ",
                          constraints="naswot>=400, params<=100000", **FORM)
    cfg = db.get_study(name).config
    assert cfg["proxies"] == ["synflow", "naswot"] and cfg["prefilter"] == "naswot:top25%"
    assert cfg["constraints"] == {"min_naswot": 400.0, "max_params": 100000}
    plain = db.get_study(control.create(db, name="p", **FORM)).config
    assert (plain["proxies"], plain["prefilter"], plain["constraints"]) == ([], None, {})


@pytest.mark.parametrize("field, value, message", [
    ("proxies", "naswot,zen", "proxies: expected names among synflow, naswot, snip, grad_norm, "
                              "found 'zen'"),
    ("prefilter", "naswot:half", "prefilter: expected PROXY:topF"),
    ("constraints", "naswot=400", "constraint: expected PROXY>=X, PROXY<=X"),
])
def test_bad_form_values_give_one_line_beside_the_create_button(db, field, value, message):
    # through the wired handler of the real app, as a click would run it (no browser)
    from ui.app import build_app

    app = build_app(db)
    ids = {f"wb-f-{f}" for f in ("proxies", "prefilter", "constraints")}
    (fn,) = [f for f in app.fns.values()
             if ids <= {getattr(b, "elem_id", None) for b in f.inputs}]
    args = [getattr(b, "value", None) for b in fn.inputs]
    for i, b in enumerate(fn.inputs):
        if b.elem_id == f"wb-f-{field}":
            args[i] = value
        elif getattr(b, "label", "") == "task (name or name:PATH)":
            args[i] = "digits"
        elif b.elem_id == "wb-f-options" or type(b).__name__ == "Dataframe":
            args[i] = []  # the option table as the handler receives it: rows
    out = fn.fn(*args)
    assert fn.outputs[-1].elem_id == "wb-create-msg"
    assert out[-1].startswith(f"⚠ {message}") and "\n" not in out[-1], out[-1]
    assert db.list_studies() == []  # nothing stored

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


# -- searcher info ------------------------------------------------------------------------------
def test_surrogate_rank_quality_is_stored_with_each_trial(db):
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
    bad = cli("search", "--proxies", "synflow,zen", "--storage", url)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: --proxies: expected names among synflow, naswot, snip, grad_norm, found 'zen'"]

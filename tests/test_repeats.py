"""--repeats K: K training seeds of one architecture in one trial, mean as the objective, mean
and sd and the values stored in the trial's metrics; the CLI's --steps and --repeats."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage import Storage
from storage.records import TrialState
from workbench.errors import ConfigError
from workbench.jobs import Job, run_job
from workbench.repeats import check_repeats, combine, repeat_seed
from workbench.spaces import get_space
from workbench.study import StudyConfig, create_study, enqueue, run_study
from workbench.trainer import EvalResult

pytestmark = pytest.mark.usefixtures("ui_allows_test_evaluators")

ROOT = Path(__file__).resolve().parents[1]
CONV = "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]"


def _job(repeats: int, **kw) -> Job:
    arch = get_space("einspace", (3, 8, 8), 4).parse(CONV)
    fields = dict(study="s", number=0, space="einspace", space_options={}, input_shape=(3, 8, 8),
                  num_classes=4, decisions=[[d.path, d.choice] for d in arch.decisions],
                  task="synthetic", task_options={"n": 128}, budget={"steps": 8, "batch_size": 32},
                  seed=3, device="cpu", repeats=repeats)
    fields.update(kw)
    return Job(**fields)


def test_repeats_train_different_seeds_and_store_mean_sd_and_values():
    one = run_job(_job(1))
    three = run_job(_job(3))
    assert one.state == three.state == TrialState.COMPLETE
    m = three.metrics
    values = m["val_accuracy_repeats"]
    assert len(values) == 3 and m["repeats"] == 3
    assert values[0] == one.metrics["val_accuracy"]  # repeat 0 is the trial's own seed
    assert len(set(m["train_loss_repeats"])) == 3  # three seeds, three trainings
    assert m["val_accuracy"] == m["val_accuracy_mean"] == pytest.approx(sum(values) / 3)
    assert m["val_accuracy_sd"] >= 0 and m["test_accuracy_sd"] >= 0
    assert m["params"] == one.metrics["params"] and "params_sd" not in m  # equal in every repeat
    assert len(three.curve) == len(one.curve) and "val_accuracy_sd" in three.curve[0]
    assert "repeats" not in one.metrics  # K = 1 trains exactly as before


def test_a_failed_repeat_fails_the_trial_with_its_error():
    runs = [EvalResult(TrialState.COMPLETE, {"val_accuracy": 0.5}),
            EvalResult(TrialState.FAILED, {"steps": 3}, error="loss became nan at epoch 1 step 3")]
    out = combine(runs)
    assert out.state == TrialState.FAILED and out.error == "repeat 2 of 2: loss became nan at " \
                                                           "epoch 1 step 3"
    assert out.metrics["failed_repeat"] == 1


def test_repeat_seeds_and_bounds():
    assert repeat_seed(11, 0) == 11 and len({repeat_seed(11, r) for r in range(50)}) == 50
    assert check_repeats(4) == 4
    for bad in (0, 101, 2.5, True):
        with pytest.raises(ConfigError, match=f"--repeats: expected an int in .1, 100., found "
                                              f"{bad!r}"):
            check_repeats(bad)


def test_custom_evaluators_are_repeated_with_their_seed(tmp_path):
    job = _job(2, evaluator="tests.evaluators:param_score")
    out = run_job(job)
    assert out.state == TrialState.COMPLETE and out.metrics["repeats"] == 2
    assert out.metrics["val_accuracy_sd"] == 0.0  # a deterministic evaluator: no noise


def test_study_with_repeats_stores_them_per_trial(tmp_path):
    db = Storage(f"sqlite:///{tmp_path / 'r.db'}")
    cfg = StudyConfig(space="einspace", task="synthetic", task_options={"n": 128}, trials=1,
                      executor="inline", budget={"steps": 6, "batch_size": 32}, repeats=2,
                      device="cpu")
    create_study(db, "rep", cfg)
    enqueue(db, "rep", get_space("einspace", (3, 8, 8), 4).parse(CONV))
    summary = run_study(db, "rep")
    assert summary.complete == 1
    (trial,) = db.trials("rep")
    assert trial.metrics["repeats"] == 2 and len(trial.metrics["val_accuracy_repeats"]) == 2
    assert trial.metrics["steps"] == 6


@pytest.mark.slow
def test_cli_search_with_steps_repeats_and_task_options(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "search", "--space", "quickstart", "--task", "mnist1d",
         "--task-opt", "num_samples=300", "--trials", "2", "--steps", "5", "--repeats", "2",
         "--executor", "inline", "--storage", f"sqlite:///{tmp_path / 'c.db'}", "--study", "q",
         "--quiet"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    db = Storage(f"sqlite:///{tmp_path / 'c.db'}")
    trials = db.trials("q")
    assert len(trials) == 2 and all(t.metrics["repeats"] == 2 and t.metrics["steps"] == 5
                                    for t in trials)
    assert db.get_study("q").config["task_options"] == {"num_samples": 300}
    bad = subprocess.run([sys.executable, "-m", "workbench", "search", "--repeats", "0"],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert bad.returncode != 0 and "--repeats" in bad.stderr


def test_ui_form_passes_steps_repeats_and_task_options(tmp_path):
    from ui import control

    db = Storage(f"sqlite:///{tmp_path / 'u.db'}")
    common = dict(space="quickstart", task="digits", searcher="random", option_table=[],
                  seeds=[], objectives="acc", trials=2, epochs=1, workers=1, seed=0)
    name = control.create(db, name="u", steps=40, repeats=3, task_options="augment=crop+flip, "
                          "crop_padding=2", **common)
    config = db.get_study(name).config
    assert config["budget"] == {"epochs": 1, "steps": 40} and config["repeats"] == 3
    assert config["task_options"] == {"augment": "crop+flip", "crop_padding": 2}
    plain = db.get_study(control.create(db, name="p", steps=0, **common)).config
    assert plain["budget"] == {"epochs": 1} and plain["repeats"] == 1
    with pytest.raises(ConfigError, match="repeats: expected an integer >= 1, found 0"):
        control.create(db, name="r", repeats=0, **common)
    with pytest.raises(ConfigError, match="--repeats: expected an int in .1, 100., found 101"):
        control.create(db, name="r", repeats=101, **common)
    with pytest.raises(ConfigError, match="task options: expected key=value, found 'augment'"):
        control.create(db, name="t", task_options="augment", **common)

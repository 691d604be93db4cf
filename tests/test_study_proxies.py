"""Searcher info stored per trial, zero-cost proxies as metrics, the pre-filter and proxy
constraints, through the real study loop (inline executor, tiny spaces and tasks)."""

from __future__ import annotations

import logging

import pytest

from storage import Storage
from workbench.proposing import MAX_INFO_BYTES, storable_info
from workbench.searchers import Objective
from workbench.study import StudyConfig, create_study, run_study


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

"""A resumed search continues exactly where it stopped.

The searcher's ask/tell sequence is stored (each trial's ask and tell positions, and every
proposal that repeated an existing trial), so a study stopped and resumed -- or killed with
kill -9 in the middle of a trial -- proposes the same architectures, in the same order, as one
that ran without interruption. Checked for every registered searcher, on a small space where
repeated proposals are common.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import Storage, TrialState
from storage.engine import parse_url
from workbench.searchers import Objective, list_searchers
from workbench.study import StudyConfig, create_study, request_stop, run_study

ROOT = Path(__file__).resolve().parents[1]
OBJ = [{"name": "val_accuracy", "direction": "maximize"}]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    return request.getfixturevalue("postgres_db_url")


# -- storage: the log round-trips on both backends --------------------------------------------
def _add(st: Storage, h: str, **kw):
    return st.create_trial("s", arch_hash=h, arch_text=h, arch_decisions=[["p", h]],
                           space="toy", **kw)


def test_ask_and_tell_positions_and_repeats_are_stored(url):
    with Storage(url) as st:
        st.create_study("s", space="toy", task="t", searcher="random", objectives=OBJ,
                        config={}, seed=0)
        a = _add(st, "a", ask_index=0)
        b = _add(st, "b", ask_index=2)
        q = _add(st, "q", state="queued")  # queued by hand: no ask
        assert (a.ask_index, b.ask_index, q.ask_index) == (0, 2, None)
        done = st.finish_trial("s", b.number, state="complete", metrics={"val_accuracy": 1},
                               tell_index=0)
        assert done.tell_index == 0
        st.finish_trial("s", a.number, state="failed", error="x", tell_index=1)
        st.add_repeat("s", b.number, ask_index=1, tell_index=2)
        st.add_repeat("s", a.number, ask_index=3)  # repeated while running: not told
        got = {t.number: (t.ask_index, t.tell_index) for t in st.trials("s")}
        assert got == {a.number: (0, 1), b.number: (2, 0), q.number: (None, None)}
        assert st.repeats("s") == [(b.number, 1, 2), (a.number, 3, None)]
        st.delete_study("s")
        engine = sa.create_engine(parse_url(url))
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM repeats")).scalar() == 0
        finally:
            engine.dispose()


def test_a_database_from_before_the_log_upgrades_and_resumes(tmp_path):
    # A study written under the first schema (no ask/tell log) upgrades in place, keeps its
    # trials, and resumes as it always did (tells replayed by finish time); the trials it adds
    # from then on are logged.
    from alembic import command

    from storage.engine import _alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Storage(url) as st:
        create_study(st, "old", StudyConfig(space="mlp", task="digits", trials=3,
                                            executor="inline", seed=5,
                                            evaluator="tests.evaluators:param_score"))
        run_study(st, "old")
    engine = sa.create_engine(parse_url(url))
    try:
        with engine.begin() as conn:  # back to the first schema, data kept
            cfg = _alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0001")
            assert "ask_index" not in {c["name"] for c in sa.inspect(conn).get_columns("trials")}
    finally:
        engine.dispose()
    with Storage(url) as st:
        from storage.engine import head_revision

        assert st.revision == head_revision()
        before = [(t.number, t.arch_hash) for t in st.trials("old")]
        assert len(before) == 3
        assert all((t.ask_index, t.tell_index) == (None, None) for t in st.trials("old"))
        st.update_study_config("old", {**st.get_study("old").config, "trials": 6})
        assert run_study(st, "old").status == "finished"
        after = st.trials("old")
        assert [(t.number, t.arch_hash) for t in after[:3]] == before
        assert len(after) == 6
        assert [t.tell_index for t in after[3:]] == [3, 4, 5]
        assert all(t.ask_index is not None and t.ask_index >= 3 for t in after[3:])


# -- the study loop: stop/resume and kill -9 continue the same sequence ------------------------
SEARCHERS = sorted(cls.name for cls in list_searchers())


def _config(searcher: str, trials: int = 24) -> StudyConfig:
    objectives = [Objective("val_accuracy")]
    if searcher == "nsga2":  # multi-objective only
        objectives.append(Objective("params", "minimize"))
    return StudyConfig(space="mlp", task="digits", trials=trials, executor="inline",
                       searcher=searcher, objectives=objectives, seed=3,
                       evaluator="tests.evaluators:param_score")


def _sequence(st: Storage, name: str) -> list[tuple[str, float | None]]:
    return [(t.arch_hash, t.fidelity) for t in st.trials(name)]


def _stop_after(st, name: str, counts) -> None:
    """Run the study once per count, asking it to stop after that many finished trials."""
    for stop_after in counts:
        finished: list[int] = []

        def on_event(kind, data, finished=finished, stop_after=stop_after):
            if kind == "trial_finished":
                finished.append(data["number"])
                if len(finished) == stop_after:
                    request_stop(st, name)

        assert run_study(st, name, on_event=on_event).status == "stopped"


@pytest.mark.parametrize("searcher", SEARCHERS)
def test_stopped_and_resumed_twice_proposes_what_an_uninterrupted_search_does(
        tmp_path, prompt_stops, searcher):
    trials = 14 if searcher == "gp" else 24  # a GP refit per ask grows with the history
    st = Storage(f"sqlite:///{tmp_path / 'r.db'}")
    create_study(st, "straight", _config(searcher, trials))
    run_study(st, "straight")
    create_study(st, "resumed", _config(searcher, trials))
    _stop_after(st, "resumed", (5, 6))
    assert run_study(st, "resumed").status == "finished"
    assert _sequence(st, "resumed") == _sequence(st, "straight")
    assert st.repeats("resumed") == st.repeats("straight")
    st.close()


@pytest.mark.parametrize("searcher", ["random", "evolution", "local", "sha"])
def test_a_prefiltered_search_stopped_and_resumed_proposes_the_same(tmp_path, prompt_stops,
                                                                    searcher):
    # each evaluation asks 3 proposals and trains the best by synflow; the other two are pruned
    # trials told to the searcher, so its ask/tell sequence replays exactly on resume
    from dataclasses import replace

    def config() -> StudyConfig:
        return replace(_config(searcher, 10), prefilter="synflow:top0.34")

    st = Storage(f"sqlite:///{tmp_path / 'p.db'}")
    create_study(st, "straight", config())
    run_study(st, "straight")
    create_study(st, "resumed", config())
    _stop_after(st, "resumed", (3, 4))
    summary = run_study(st, "resumed")
    assert summary.status == "finished" and summary.complete + summary.failed == 10
    states = [(t.arch_hash, t.fidelity, t.state, t.error) for t in st.trials("resumed")]
    assert states == [(t.arch_hash, t.fidelity, t.state, t.error) for t in st.trials("straight")]
    assert st.repeats("resumed") == st.repeats("straight")
    pruned = [t for t in st.trials("resumed") if t.state is TrialState.PRUNED]
    assert summary.pruned == len(pruned) >= 10
    assert all(t.error.startswith("pre-filter: synflow ") and "synflow" in t.metrics
               for t in pruned)
    st.close()


def test_the_check_above_sees_repeats():
    # On this space and budget the searchers propose architectures they have already
    # evaluated, so the resumes above replay repeats, not just trials.
    st = Storage("sqlite://")
    create_study(st, "e", _config("evolution"))
    run_study(st, "e")
    told = [r for r in st.repeats("e") if r[2] is not None]
    assert told, "expected evolution to re-propose evaluated architectures on mlp"


def test_kill_minus_9_mid_trial_then_resume_continues_the_same_sequence(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("WORKBENCH_STORAGE", None)

    def search(url: str, name: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "workbench", "search", "--space", "mlp", "--trials", "16",
             "--searcher", "random", "--seed", "4", "--executor", "inline", "--quiet",
             "--evaluator", "tests.evaluators:paced_score", "--storage", url, "--study", name],
            cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)

    straight_url = f"sqlite:///{tmp_path / 'straight.db'}"
    killed_url = f"sqlite:///{tmp_path / 'killed.db'}"
    straight, killed = search(straight_url, "k"), search(killed_url, "k")
    db = Storage(killed_url)
    deadline, counts = time.time() + 120, {}
    while time.time() < deadline:
        try:
            counts = db.count_trials("k")
        except Exception:  # noqa: BLE001 - the database or study may not exist yet
            counts = {}
        if counts.get("complete", 0) >= 10 and counts.get("running", 0) == 1:
            break
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    assert counts.get("running") == 1, counts  # killed in the middle of a trial
    assert straight.wait(timeout=240) == 0, straight.stderr.read()
    resumed = subprocess.run(
        [sys.executable, "-m", "workbench", "resume", "k", "--storage", killed_url, "--quiet"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    with Storage(straight_url) as reference:
        assert _sequence(db, "k") == _sequence(reference, "k")
        assert db.repeats("k") == reference.repeats("k") != []
    db.close()

"""Several study drivers on one real PostgreSQL database at once, with readers polling it.

Three ``workbench search`` processes start together on a fresh database (so they also race to
create the schema). A gated evaluator holds each at its first trial until all three studies are
running, then releases them together. They run different studies with the same seed, so they
propose the same architectures and race to insert the shared, hash-deduplicated rows, and they
write as fast as a no-training evaluator lets them. Meanwhile a UI-like reader polls the
database in-process, and ``workbench studies --json`` runs over and over in another thread.
Afterwards every study must hold exactly its trials: dense numbers, all complete, metrics and
curves present, no duplicates, no errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy

pytest.importorskip("psycopg")

from storage import Storage  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[1]
TRIALS = {"s1": 25, "s2": 30, "s3": 35}


def _workbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench", *args]


class CliReader(threading.Thread):
    """Runs ``workbench studies --json`` over and over (a separate reader process each time)."""

    def __init__(self, url: str, env: dict):
        super().__init__(daemon=True)
        self.url, self.env, self.stop = url, env, threading.Event()
        self.runs: list[subprocess.CompletedProcess] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.runs.append(subprocess.run(
                _workbench("studies", "--json", "--storage", self.url), cwd=ROOT, env=self.env,
                capture_output=True, text=True, timeout=120))


def test_three_drivers_and_readers_on_one_postgres_database(postgres_db_url, tmp_path):
    gate = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=str(ROOT), WB_GATE=str(gate))
    env.pop("WORKBENCH_STORAGE", None)
    drivers = {
        name: subprocess.Popen(
            _workbench("search", "--space", "mlp", "--input", "64", "--classes", "10",
                       "--trials", str(n), "--executor", "inline", "--seed", "7",
                       "--evaluator", "tests.ray_evaluators:gated_score", "--epochs", "2",
                       "--storage", postgres_db_url, "--study", name, "-q"),
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, n in TRIALS.items()}
    cli = CliReader(postgres_db_url, env)
    polls = 0
    seen_counts: dict[str, int] = {}
    deadline = time.monotonic() + 180
    try:
        reader = None
        cli.start()
        while any(p.poll() is None for p in drivers.values()):
            assert time.monotonic() < deadline, "the drivers did not finish in time"
            # in-process reads, as the UI does: summaries and a page of trials, never an error
            try:
                reader = reader or Storage(postgres_db_url)
            except Exception as exc:  # the schema may not exist yet in the first instants
                if "relation" not in str(exc) and "revision" not in str(exc):
                    raise
                time.sleep(0.1)
                continue
            rows = reader.study_summaries()
            if not gate.exists() and sum(r["status"] == "running" for r in rows) == 3:
                gate.touch()  # all three drivers are in their loops: let them write at once
            for row in rows:
                done = row["n_complete"] + row["n_failed"]
                # counts only grow: a reader never sees a write disappear
                assert done >= seen_counts.get(row["name"], 0), row
                seen_counts[row["name"]] = done
                reader.trials(row["name"], limit=5, order_by="finished_at", descending=True)
            polls += 1
            time.sleep(0.02)
        results = {name: p.communicate(timeout=120) for name, p in drivers.items()}
    finally:
        cli.stop.set()
        for p in drivers.values():
            if p.poll() is None:
                p.kill()
    cli.join(120)
    assert gate.exists(), {name: p.communicate() for name, p in drivers.items()}
    for name, (out, err) in results.items():
        assert drivers[name].returncode == 0, f"{name}: {err}"
        assert "error" not in err.lower() and "lock" not in err.lower(), f"{name}: {err}"
        assert f"finished: {TRIALS[name]} complete, 0 failed" in out, out
    assert polls > 0 and cli.runs
    for run in cli.runs:
        assert run.returncode == 0, run.stderr
        assert isinstance(json.loads(run.stdout), list)

    db = Storage(postgres_db_url)
    summaries = {r["name"]: r for r in db.study_summaries()}
    assert set(summaries) == set(TRIALS)
    shared: list[str] = []
    for name, n in TRIALS.items():
        assert summaries[name]["status"] == "finished"
        assert summaries[name]["n_complete"] == n and summaries[name]["n_running"] == 0
        trials = db.trials(name, with_curve=True)
        assert [t.number for t in trials] == list(range(n))  # dense, no gaps, no duplicates
        assert len({t.arch_hash for t in trials}) == n
        for t in trials:  # every finishing write landed: state, metrics and curve together
            assert t.state.value == "complete" and t.error is None
            assert t.metrics["val_accuracy"] == pytest.approx(1 / (1 + t.metrics["params"]))
            assert len(t.curve) == 2
        hashes = [t.arch_hash for t in trials]
        # same seed, same space: the studies proposed the same architectures in the same order
        assert hashes[:len(shared)] == shared[:len(hashes)]
        shared = max(shared, hashes, key=len)
    # ... and the three racing inserts stored each of them once
    engine = sqlalchemy.create_engine(postgres_db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(sqlalchemy.text("SELECT hash FROM architectures")).scalars()
            assert sorted(stored) == sorted(shared)
    finally:
        engine.dispose()


FLAKY = """
CREATE SEQUENCE tries;
CREATE FUNCTION flaky(code text, failures int) RETURNS int AS $$
BEGIN
    IF nextval('tries') <= failures THEN  -- sequences advance even when the statement aborts
        RAISE EXCEPTION 'simulated' USING ERRCODE = code;
    END IF;
    RETURN 7;
END $$ LANGUAGE plpgsql;
"""


@pytest.mark.parametrize("code", ["40P01", "40001"])  # deadlock, serialization failure
def test_a_deadlocked_statement_runs_again(postgres_db_url, code):
    from storage.errors import StorageUnavailable

    with Storage(postgres_db_url) as st:
        with st._engine.begin() as conn:
            conn.exec_driver_sql(FLAKY)
        call = sqlalchemy.text("SELECT flaky(:code, :failures)")
        assert st._pg_one(call, {"code": code, "failures": 2}) == (7,)
        with st._engine.begin() as conn:
            conn.exec_driver_sql("ALTER SEQUENCE tries RESTART")
        with pytest.raises(StorageUnavailable, match="simulated") as info:
            st._pg_one(call, {"code": code, "failures": 100})  # never clears: reported
        assert "\n" not in str(info.value)


def test_other_statement_errors_are_not_retried(postgres_db_url):
    from storage.errors import StorageError

    with Storage(postgres_db_url) as st:
        with st._engine.begin() as conn:
            conn.exec_driver_sql(FLAKY)
        with pytest.raises(StorageError, match="simulated"):
            st._pg_one(sqlalchemy.text("SELECT flaky('P0001', 100)"), {})
        with st._engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT last_value FROM tries").scalar() == 1

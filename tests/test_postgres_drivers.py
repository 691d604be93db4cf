"""Several study drivers on one real PostgreSQL database at once, with readers polling it.

Three ``workbench search`` processes start together on a fresh database (so they also race to
create the schema), run different studies with the same seed (so they propose the same
architectures and race to insert the shared, hash-deduplicated rows), and write as fast as a
no-training evaluator lets them. Meanwhile a UI-like reader polls the database in-process and
through ``workbench studies --json``. Afterwards every study must hold exactly its trials: dense
numbers, all complete, metrics and curves present, no duplicates, no errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def test_three_drivers_and_readers_on_one_postgres_database(postgres_db_url):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("WORKBENCH_STORAGE", None)
    drivers = {
        name: subprocess.Popen(
            _workbench("search", "--space", "mlp", "--input", "64", "--classes", "10",
                       "--trials", str(n), "--executor", "inline", "--seed", "7",
                       "--evaluator", "tests.evaluators:param_score", "--epochs", "2",
                       "--storage", postgres_db_url, "--study", name, "-q"),
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, n in TRIALS.items()}
    polls = cli_polls = overlap = 0
    seen_counts: dict[str, int] = {}
    try:
        reader = None
        while any(p.poll() is None for p in drivers.values()):
            # in-process reads, as the UI does: summaries and a page of trials, never an error
            try:
                reader = reader or Storage(postgres_db_url)
            except Exception as exc:  # the schema may not exist yet in the first instants
                if "relation" not in str(exc) and "revision" not in str(exc):
                    raise
                time.sleep(0.1)
                continue
            rows = reader.study_summaries()
            overlap = max(overlap, sum(r["status"] == "running" for r in rows))
            for row in rows:
                done = row["n_complete"] + row["n_failed"]
                # counts only grow: a reader never sees a write disappear
                assert done >= seen_counts.get(row["name"], 0), row
                seen_counts[row["name"]] = done
                reader.trials(row["name"], limit=5, order_by="finished_at", descending=True)
            polls += 1
            if cli_polls < 3:  # the command-line reader, a separate process
                out = subprocess.run(_workbench("studies", "--json", "--storage", postgres_db_url),
                                     cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
                assert out.returncode == 0, out.stderr
                assert isinstance(json.loads(out.stdout), list)
                cli_polls += 1
            time.sleep(0.05)
        results = {name: p.communicate(timeout=120) for name, p in drivers.items()}
    finally:
        for p in drivers.values():
            if p.poll() is None:
                p.kill()
    for name, (out, err) in results.items():
        assert drivers[name].returncode == 0, f"{name}: {err}"
        assert "error" not in err.lower() and "lock" not in err.lower(), f"{name}: {err}"
        assert f"finished: {TRIALS[name]} complete, 0 failed" in out, out
    assert polls > 0 and cli_polls > 0
    assert overlap >= 2, "the drivers never ran at the same time: the test proves nothing"

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

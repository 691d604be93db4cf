"""The study loop end to end: search, failures, dedupe, resume after kill -9, custom evaluators."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import Storage
from workbench.errors import ConfigError, NotFound
from workbench.spaces import get_space
from workbench.study import (
    StudyConfig,
    create_study,
    enqueue,
    parse_objectives,
    request_stop,
    run_study,
)

ROOT = Path(__file__).resolve().parents[1]
WB = [sys.executable, "-m", "workbench.cli.__main__"]
SQUARE = ("branching(2)[clone(2), computation[identity], "
          "routing[permute21, computation[identity], identity], dot_product]")


def _nan_arch() -> str:
    # x @ x^T five times over overflows float32: a real candidate whose loss becomes NaN
    body = SQUARE
    for _ in range(4):
        body = f"sequential[{SQUARE}, {body}]"
    return f"routing[im2col(1,1,0), sequential[computation[linear(16)], {body}], identity]"


NAN = _nan_arch()
GOOD = "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]"
SLOW = "resnet18"


@pytest.fixture
def db(tmp_path):
    return Storage(f"sqlite:///{tmp_path / 'w.db'}")


def cli(*args, **kw):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, env=env, cwd=kw.get("cwd", ROOT), timeout=kw.get("timeout", 300))


def test_search_end_to_end_with_process_workers(db):
    cfg = StudyConfig(space="einspace", task="digits", trials=4, workers=2,
                      objectives=parse_objectives("acc,params"),
                      budget={"epochs": 2, "batch_size": 64}, keep_weights="top:1")
    create_study(db, "e2e", cfg)
    summary = run_study(db, "e2e")
    assert summary.status == "finished" and summary.complete + summary.failed == 4
    trials = db.trials("e2e", with_curve=True)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    done = [t for t in trials if t.state.value == "complete"]
    assert done and all(len(t.curve) == 2 for t in done)
    assert all(t.worker and ":" in t.worker for t in done)  # host:pid of the worker process
    for t in done:
        for key in ("val_accuracy", "test_accuracy", "params", "flops", "latency_ms",
                    "peak_memory_mb", "wall_time_s", "train_loss"):
            assert key in t.metrics
    assert len({t.arch_hash for t in trials}) == 4
    kept = [t.number for t in trials if db.list_artifacts("e2e", t.number)]
    assert len(kept) == 1
    assert db.get_study("e2e").status == "finished"


def test_failures_are_recorded_and_the_study_completes(db):
    cfg = StudyConfig(space="einspace", task="digits", trials=3, workers=2, timeout=15,
                      budget={"epochs": 50, "batch_size": 64, "min_epoch_steps": 1})
    create_study(db, "fail", cfg)
    space = get_space("einspace", (1, 8, 8), 10)
    for text in (NAN, SLOW, GOOD):
        enqueue(db, "fail", space.resolve(text))
    summary = run_study(db, "fail")
    assert summary.complete + summary.failed == 3
    by_text = {t.arch_text: t for t in db.trials("fail")}
    nan = by_text[space.parse(NAN).text]
    assert nan.state.value == "failed" and "loss became nan" in nan.error
    slow = by_text[space.seed(SLOW).text]
    assert slow.state.value == "failed" and "timed out after 15s" in slow.error
    good = by_text[space.parse(GOOD).text]
    assert good.state.value in ("complete", "failed")
    if good.state.value == "failed":  # on a loaded machine 50 epochs may hit the limit
        assert "timed out" in good.error


def test_custom_evaluator_raising_and_missing_metrics(db):
    cfg = StudyConfig(space="einspace", task="digits", trials=12, executor="inline",
                      evaluator="tests.evaluators:explode", budget={"epochs": 1})
    create_study(db, "custom", cfg)
    summary = run_study(db, "custom")
    assert summary.complete + summary.failed == 12
    failed = [t for t in db.trials("custom") if t.state.value == "failed"]
    assert all("evaluator exploded" in t.error for t in failed)
    assert all("softmax" in t.arch_text for t in failed)
    cfg2 = StudyConfig(space="mlp", task="digits", trials=2, executor="inline",
                       evaluator="tests.evaluators:no_metrics")
    create_study(db, "nometric", cfg2)
    run_study(db, "nometric")
    assert all("objective val_accuracy: expected a finite number, found no value" in t.error
               for t in db.trials("nometric"))


def test_same_architecture_is_never_trained_twice(db):
    cfg = StudyConfig(space="mlp", task="digits", trials=30, executor="inline",
                      evaluator="tests.evaluators:param_score", budget={"epochs": 1})
    create_study(db, "dedupe", cfg)
    run_study(db, "dedupe")
    hashes = [t.arch_hash for t in db.trials("dedupe")]
    assert len(hashes) == len(set(hashes)) == 30


def test_a_failed_architecture_is_not_trained_again(db):
    # every trial fails (no objective); the mlp space's prior proposes small MLPs again and
    # again: each is trained once, and later proposals are told its failure (the repeats log)
    cfg = StudyConfig(space="mlp", task="digits", trials=30, executor="inline",
                      evaluator="tests.evaluators:no_metrics", budget={"epochs": 1})
    create_study(db, "fails", cfg)
    run_study(db, "fails")
    trials = db.trials("fails")
    hashes = [t.arch_hash for t in trials]
    assert len(hashes) == len(set(hashes)) == 30 and all(t.state.value == "failed" for t in trials)
    told_again = [r for r in db.repeats("fails") if r[2] is not None]
    assert told_again  # proposals of failed architectures happened, and were told, not trained


def test_constraint_rejects_big_candidates_before_training(db):
    cfg = StudyConfig(space="einspace", task="digits", trials=3, executor="inline",
                      evaluator="tests.evaluators:param_score", constraints={"max_params": 5000})
    create_study(db, "cap", cfg)
    space = get_space("einspace", (1, 8, 8), 10)
    enqueue(db, "cap", space.seed("resnet18"))
    run_study(db, "cap")
    # queued trials bypass the searcher but not the record; the cap applies to proposals
    assert db.count_trials("cap")["complete"] + db.count_trials("cap")["failed"] == 3
    cfg = StudyConfig(space="einspace", task="digits", trials=20, executor="inline",
                      evaluator="tests.evaluators:param_score", constraints={"max_params": 2000})
    create_study(db, "cap2", cfg)
    run_study(db, "cap2")
    failed = [t for t in db.trials("cap2") if t.state.value == "failed"]
    assert failed and all("constraint max_params=2,000 violated" in t.error for t in failed)


def test_stop_lands_within_the_poll_interval(db):
    import workbench.study

    cfg = StudyConfig(space="mlp", task="digits", trials=40, executor="inline",
                      evaluator="tests.evaluators:slow_score")
    create_study(db, "slow", cfg)
    asked = []

    def on_event(kind, data):
        if kind == "trial_finished" and not asked:
            asked.append(time.monotonic())
            request_stop(db, "slow")

    s = run_study(db, "slow", on_event=on_event)
    stopped = time.monotonic()
    assert s.status == "stopped" and 1 <= s.complete < 40
    # at most one poll interval plus the trial that was running when it was read
    assert stopped - asked[0] < workbench.study.STOP_POLL_S + 1.0


def test_stop_request_and_resume_keep_results(db, prompt_stops):
    cfg = StudyConfig(space="mlp", task="digits", trials=10, executor="inline",
                      evaluator="tests.evaluators:param_score")
    create_study(db, "stoppable", cfg)
    seen = []

    def on_event(kind, data):
        if kind == "trial_finished":
            seen.append(data["number"])
            if len(seen) == 3:
                request_stop(db, "stoppable")

    s = run_study(db, "stoppable", on_event=on_event)
    assert s.status == "stopped" and s.complete == 3
    before = {t.number: t.metrics for t in db.trials("stoppable")}
    s = run_study(db, "stoppable")
    assert s.status == "finished" and s.complete == 10
    after = {t.number: t.metrics for t in db.trials("stoppable")}
    assert all(after[n] == m for n, m in before.items())


def test_recovered_random_search_continues_the_same_sequence(tmp_path, prompt_stops):
    def run(name, db, stops):
        cfg = StudyConfig(space="einspace", task="digits", trials=8, executor="inline",
                          evaluator="tests.evaluators:param_score", seed=3)
        create_study(db, name, cfg)
        for _ in range(stops):
            calls = []

            def on_event(kind, data, calls=calls):
                if kind == "trial_finished":
                    calls.append(1)
                    if len(calls) == 3:
                        request_stop(db, name)
            run_study(db, name, on_event=on_event)
        run_study(db, name)
        return [t.arch_hash for t in db.trials(name)]

    a = run("a", Storage(f"sqlite:///{tmp_path / 'a.db'}"), 0)
    b = run("b", Storage(f"sqlite:///{tmp_path / 'b.db'}"), 2)
    assert a == b


def test_kill_minus_9_then_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 'k.db'}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "search", "--space", "mlp", "--task", "digits",
         "--trials", "8", "--epochs", "40", "--batch-size", "32", "--workers", "2",
         "--storage", url, "--study", "k", "--quiet"],
        cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    db = Storage(url)
    deadline = time.time() + 240
    counts = {}
    while time.time() < deadline:
        try:
            counts = db.count_trials("k")
        except NotFound:
            counts = {}
        except Exception:
            counts = {}
        if counts.get("complete", 0) >= 2 and counts.get("running", 0) >= 1:
            break
        time.sleep(0.2)
    assert counts.get("complete", 0) >= 2, (counts, proc.poll())
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = {t.number: (t.arch_hash, t.metrics) for t in db.trials("k", states=["complete"])}
    running = [t.number for t in db.trials("k", states=["running"])]
    assert running
    out = cli("resume", "k", "--storage", url, "--quiet", timeout=400)
    assert out.returncode == 0, out.stderr
    trials = db.trials("k")
    assert len(trials) == 8 and all(t.state.value in ("complete", "failed") for t in trials)
    for number, (h, metrics) in before.items():
        t = db.get_trial("k", number)
        assert t.arch_hash == h and t.metrics == metrics  # kept, not re-run
    assert len({t.arch_hash for t in trials}) == 8  # none duplicated
    for number in running:
        assert db.get_trial("k", number).state.value in ("complete", "failed")


def test_cli_search_trials_show_json(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    out = cli("search", "--space", "mlp", "--trials", "3", "--executor", "inline",
              "--evaluator", "tests.evaluators:param_score", "--storage", url, "--study", "c")
    assert out.returncode == 0, out.stderr
    assert "finished: 3 complete" in out.stdout
    rows = json.loads(cli("trials", "c", "--storage", url, "--json").stdout)
    assert [r["number"] for r in rows] == [0, 1, 2]
    assert {"number", "state", "metrics", "architecture"} <= set(rows[0])
    top = json.loads(cli("trials", "c", "--storage", url, "--json", "--top", "1").stdout)
    assert top[0]["metrics"]["val_accuracy"] == max(r["metrics"]["val_accuracy"] for r in rows)
    one = json.loads(cli("show", "c", "1", "--storage", url, "--json").stdout)
    assert one["number"] == 1 and len(one["curve"]) == 5
    studies = json.loads(cli("studies", "--storage", url, "--json").stdout)
    assert studies[0]["name"] == "c" and studies[0]["n_complete"] == 3


@pytest.mark.parametrize("args, message", [
    (["search", "--space", "nope"], "expected a search space"),
    (["search", "--task", "nope"], "expected a task name"),
    (["search", "--task", "npz:/no/such/file.npz"], "/no/such/file.npz"),
    (["search", "--searcher", "nope"], "expected a searcher"),
    (["search", "--objectives", "bogus"], "--objectives"),
    (["search", "--storage", "postgresql://u@127.0.0.1:1/x"], "cannot connect"),
    (["search", "--storage", "nosuch://x"], "nosuch"),
    (["resume", "missing"], "no study named 'missing'"),
    (["show", "missing", "0"], "no study named 'missing'"),
    (["search", "--keep-weights", "some"], "--keep-weights"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, args, message):
    if "--storage" not in args:
        from storage import Storage

        Storage(f"sqlite:///{tmp_path / 'e.db'}").close()  # an existing, empty database
        args = [*args, "--storage", f"sqlite:///{tmp_path / 'e.db'}"]
    out = cli(*args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_study_names_conflict_and_config_errors(db):
    cfg = StudyConfig(space="mlp", task="digits", trials=1, executor="inline",
                      evaluator="tests.evaluators:param_score")
    create_study(db, "x", cfg)
    with pytest.raises(Exception, match="exists"):
        create_study(db, "x", cfg)
    with pytest.raises(ConfigError):
        StudyConfig(trials=0)
    with pytest.raises(ConfigError, match="test_accuracy"):
        parse_objectives("test_accuracy")
    with pytest.raises(NotFound):
        create_study(db, "y", StudyConfig(evaluator="tests.nothing:here", space="mlp"))


def test_console_script_finds_an_evaluator_in_the_working_directory(tmp_path):
    (tmp_path / "my_eval.py").write_text(
        "def evaluate(arch, budget):\n    return {'val_accuracy': 1 / (1 + arch.nodes)}\n")
    script = Path(sys.executable).with_name("workbench")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(script), "search", "--space", "mlp", "--trials", "2",
                          "--evaluator", "my_eval:evaluate", "--storage",
                          f"sqlite:///{tmp_path / 'w.db'}", "--study", "cwd", "-q"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "finished: 2 complete" in out.stdout

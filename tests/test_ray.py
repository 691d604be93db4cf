"""The Ray executor on a real local Ray cluster: a study end to end, a worker killed mid-trial
(retried, then failed once retries run out), a time-out, a driver killed and resumed, a local
instance started and stopped by the executor, and the one-line error for a bad address.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from storage import Storage
from workbench.seeds import derive_seed
from workbench.study import StudyConfig, create_study, run_study

ray = pytest.importorskip("ray")

pytestmark = [pytest.mark.ray, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A two-CPU local Ray cluster shared by the module; yields (GCS address, exchange dir)."""
    exchange = tmp_path_factory.mktemp("ray-exchange")
    saved = {k: os.environ.get(k) for k in ("WB_RAY_TEST_DIR", "RAY_USAGE_STATS_ENABLED")}
    # set before ray.init: the raylet, and so every worker it starts, inherits the environment
    os.environ["WB_RAY_TEST_DIR"] = str(exchange)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray.get_runtime_context().gcs_address, exchange
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def exchange(cluster):
    """The evaluators' exchange directory, emptied for this test."""
    d = cluster[1]
    for f in d.iterdir():
        f.unlink()
    return d


@pytest.fixture
def db(tmp_path):
    return Storage(f"sqlite:///{tmp_path / 'w.db'}")


class Killer(threading.Thread):
    """SIGKILLs every Ray worker that announces a hanging attempt (a real process kill)."""

    def __init__(self, directory: Path):
        super().__init__(daemon=True)
        self.directory, self.killed, self.stop = directory, [], threading.Event()

    def run(self) -> None:
        seen: set[str] = set()
        while not self.stop.is_set():
            for f in sorted(self.directory.glob("pid-*")):
                if f.name not in seen:
                    seen.add(f.name)
                    pid = int(f.read_text())
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
            time.sleep(0.05)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _attempts(directory: Path, seed: int) -> list[int]:
    return [int(p) for p in (directory / f"attempts-{seed}").read_text().split()]


def test_study_end_to_end_on_ray(cluster, db):
    cfg = StudyConfig(space="mlp", task="digits", trials=3, workers=2, executor="ray",
                      ray={"cpus_per_trial": 1}, budget={"epochs": 1, "batch_size": 64},
                      keep_weights="top:1")
    create_study(db, "ray-e2e", cfg)
    summary = run_study(db, "ray-e2e")
    assert summary.status == "finished" and summary.complete == 3, summary
    trials = db.trials("ray-e2e", with_curve=True)
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state.value == "complete" and len(t.curve) == 1 for t in trials)
    assert all(0 <= t.metrics["val_accuracy"] <= 1 for t in trials)
    # weights came back from the Ray worker as safetensors bytes and were stored by the driver
    kept = [t.number for t in trials if db.list_artifacts("ray-e2e", t.number)]
    assert len(kept) == 1
    assert ray.is_initialized()  # the executor used the open connection and left it open


def test_killed_worker_is_retried_and_the_study_completes(cluster, exchange, db):
    (exchange / "hangs").write_text("1")
    cfg = StudyConfig(space="mlp", task="digits", trials=2, workers=2, executor="ray",
                      evaluator="tests.ray_evaluators:killable", seed=0,
                      ray={"max_retries": 2})
    create_study(db, "ray-kill", cfg)
    with Killer(exchange) as killer:
        summary = run_study(db, "ray-kill")
    assert summary.complete == 2 and summary.failed == 0, summary
    assert len(killer.killed) == 2 and not any(_alive(p) for p in killer.killed)
    for t in db.trials("ray-kill"):
        pids = _attempts(exchange, derive_seed(0, "trial", t.number))  # the job's seed
        assert len(pids) == 2 and pids[0] in killer.killed and pids[1] not in killer.killed
        assert t.state.value == "complete" and t.error is None


def test_exhausted_retries_record_a_failed_trial_with_the_reason(cluster, exchange, db):
    (exchange / "hangs").write_text("99")
    cfg = StudyConfig(space="mlp", task="digits", trials=1, executor="ray",
                      evaluator="tests.ray_evaluators:killable", ray={"max_retries": 1})
    create_study(db, "ray-dies", cfg)
    with Killer(exchange) as killer:
        summary = run_study(db, "ray-dies")
    assert summary.status == "finished" and summary.failed == 1, summary
    (trial,) = db.trials("ray-dies")
    assert trial.state.value == "failed"
    assert trial.error.startswith("worker died 2 times: ") and "\n" not in trial.error
    assert len(killer.killed) == 2 == len(_attempts(exchange, derive_seed(0, "trial", 0)))


def test_timeout_cancels_the_task_and_fails_the_trial(cluster, exchange, db):
    (exchange / "hangs").write_text("99")  # hangs, and nobody kills it: the time-out must
    cfg = StudyConfig(space="mlp", task="digits", trials=1, executor="ray", timeout=4,
                      evaluator="tests.ray_evaluators:killable")
    create_study(db, "ray-timeout", cfg)
    t0 = time.monotonic()
    summary = run_study(db, "ray-timeout")
    assert summary.failed == 1 and time.monotonic() - t0 < 60, summary
    (trial,) = db.trials("ray-timeout")
    assert trial.error.startswith("timed out after 4s"), trial.error
    assert trial.duration_s >= 4
    (pid,) = _attempts(exchange, derive_seed(0, "trial", 0))  # a time-out is not retried
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:  # force-cancel kills the worker
        time.sleep(0.1)
    assert not _alive(pid)


def _cli(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    return subprocess.Popen([sys.executable, "-m", "workbench", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_driver_killed_then_resumed_on_the_cluster(cluster, tmp_path):
    """A driver connected to the cluster is SIGKILLed mid-study; `workbench resume` finishes it:
    finished trials kept as they were, the interrupted ones re-run, numbers dense."""
    address = cluster[0]
    url = f"sqlite:///{tmp_path / 'w.db'}"
    search = _cli("search", "--space", "mlp", "--task", "digits", "--trials", "6",
                  "--workers", "2", "--executor", "ray", "--ray-address", address,
                  "--evaluator", "tests.ray_evaluators:slow_score", "--storage", url,
                  "--study", "r", "-q")
    db = Storage(url)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and search.poll() is None:
            try:
                if len(db.trials("r", states=["complete"])) >= 2:
                    break
            except Exception:  # the study is not created yet
                pass
            time.sleep(0.1)
        assert search.poll() is None, search.communicate()
        search.send_signal(signal.SIGKILL)
        search.wait(30)
    finally:
        if search.poll() is None:
            search.kill()
    before = {t.number: t for t in db.trials("r", states=["complete"])}
    assert 2 <= len(before) < 6
    assert any(t.state.value == "running" for t in db.trials("r"))
    resume = _cli("resume", "r", "--storage", url, "-q")
    out, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, err
    assert out.startswith("finished: 6 complete, 0 failed"), out
    trials = db.trials("r")
    assert [t.number for t in trials] == list(range(6))
    assert len({t.arch_hash for t in trials}) == 6
    for number, t in before.items():
        assert trials[number].finished_at == t.finished_at  # kept, not re-run


_LOCAL = """
import json, ray, sys
from storage import Storage
from workbench.executors import ExecutorError, RayExecutor
from workbench.study import StudyConfig, create_study, run_study
try:
    RayExecutor(workers=1, gpus_per_trial=64)
    sys.exit("expected an error for 64 GPUs per trial")
except ExecutorError as exc:
    error = str(exc)
assert not ray.is_initialized()
db = Storage("sqlite:///" + sys.argv[1])
create_study(db, "local", StudyConfig(space="mlp", task="digits", trials=2, executor="ray",
                                      evaluator="tests.evaluators:param_score"))
s = run_study(db, "local")
print(json.dumps({"complete": s.complete, "initialized": ray.is_initialized(), "error": error}))
"""


def test_executor_starts_and_stops_a_local_instance(tmp_path):
    """Without an address (and no open connection) the executor starts Ray and stops it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, "-c", _LOCAL, str(tmp_path / "w.db")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["complete"] == 2 and result["initialized"] is False
    assert result["error"].startswith("--cpus-per-trial/--gpus-per-trial: no Ray node has "
                                      "1 CPUs and 64 GPUs")


def test_unreachable_address_is_a_one_line_error(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = _cli("search", "--space", "mlp", "--trials", "1", "--executor", "ray",
                "--ray-address", f"127.0.0.1:{port}", "--evaluator",
                "tests.evaluators:param_score", "--storage", f"sqlite:///{tmp_path / 'w.db'}",
                "--study", "x", "-q")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"error: cannot connect to Ray at 127.0.0.1:{port}: Connection refused"], err

"""Results a researcher can trust: faulty evaluations fail their trial with a reason, the driver
goes on, resume never crashes on what is stored, and a study has at most one live driver."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage import ConflictError, Storage, StudyStatus, TrialState
from workbench.errors import ConfigError
from workbench.study import StudyConfig, create_study, run_study

ROOT = Path(__file__).resolve().parents[1]


def _study(st, name, evaluator, trials=3, **kw):
    cfg = StudyConfig(space="mlp", task="digits", trials=trials, executor="inline",
                      evaluator=f"tests.evaluators:{evaluator}", seed=1, **kw)
    create_study(st, name, cfg)
    return run_study(st, name)


@pytest.mark.parametrize("evaluator, reason", [
    ("nan_score", "objective val_accuracy: expected a finite number, found nan"),
    ("inf_score", "objective val_accuracy: expected a finite number, found inf"),
    ("string_score", "objective val_accuracy: expected a finite number, found '0.93'"),
    ("object_metric", "cannot store metrics['blob']: expected JSON data"),
    ("huge_metric", "metrics: expected at most 1,000,000 bytes of JSON"),
    ("bad_curve", "curve point 0: expected numbers, found 'high' for 'loss'"),
    ("exits", "the evaluation raised SystemExit: 3"),
    ("interrupts", "the evaluation raised KeyboardInterrupt"),
])
def test_a_faulty_result_fails_its_trial_with_the_reason(tmp_path, evaluator, reason):
    st = Storage(f"sqlite:///{tmp_path / 'f.db'}")
    summary = _study(st, "s", evaluator)
    assert summary.status is StudyStatus.FINISHED
    assert (summary.complete, summary.failed, summary.best) == (0, 3, None)
    trials = st.trials("s")
    assert len(trials) == 3
    for t in trials:
        assert t.state is TrialState.FAILED and reason in t.error
    # resume reads what was stored without crashing and trains nothing again
    again = run_study(st, "s")
    assert (again.complete, again.failed) == (0, 3)


def test_nan_results_are_never_best_nor_told_as_success(tmp_path):
    st = Storage(f"sqlite:///{tmp_path / 'f.db'}")
    summary = _study(st, "s", "alternating", trials=12)
    states = {t.number: t for t in st.trials("s")}
    assert summary.complete + summary.failed == 12 and summary.complete >= 1
    assert states[summary.best["number"]].state is TrialState.COMPLETE
    for t in states.values():
        if t.state is TrialState.COMPLETE:
            assert t.metrics["val_accuracy"] == t.metrics["val_accuracy"]  # not NaN


def test_inline_executor_refuses_a_timeout():
    with pytest.raises(ConfigError, match="inline executor .* cannot stop one"):
        StudyConfig(space="mlp", executor="inline", timeout=5)


@pytest.mark.parametrize("field, value, message", [
    ("num_classes", 1_000_000_000, "--classes: expected an integer in 1..100000, found 1000000000"),
    ("workers", 0, "--workers: expected an integer in 1..1024, found 0"),
    ("seed", -1, "--seed: expected an integer in 0..9223372036854775807, found -1"),
    ("seed", 2**64, "--seed: expected an integer"),
    ("trials", 2.5, "--trials: expected an integer in 1..10000000, found 2.5"),
    ("trials_per_gpu", 0, "--trials-per-gpu: expected an integer in 1..64, found 0"),
])
def test_config_values_are_range_checked(field, value, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        StudyConfig(space="mlp", **{field: value, **({"input_shape": (1, 8, 8)}
                                                     if field == "num_classes" else {})})


# -- one driver per study -------------------------------------------------------------------------
def test_a_second_driver_is_refused_with_the_holder_and_a_stale_lease_is_taken_over(tmp_path):
    st = Storage(f"sqlite:///{tmp_path / 'l.db'}")
    st.create_study("s", space="toy", task="t", searcher="random",
                    objectives=[{"name": "a", "direction": "maximize"}], config={}, seed=0)
    first = st.acquire_lease("s", driver_id="a", host="h1", pid=11, stale_after_s=30)
    assert st.lease("s") == first
    with pytest.raises(ConflictError, match=r"study s is being driven by pid 11 on host h1 "
                                            r"since \d\d:\d\d UTC; stop it or wait"):
        st.acquire_lease("s", driver_id="b", host="h2", pid=22, stale_after_s=30)
    assert st.renew_lease("s", "a") and not st.renew_lease("s", "b")
    time.sleep(0.05)
    taken = st.acquire_lease("s", driver_id="b", host="h2", pid=22, stale_after_s=0.01)
    assert taken.driver_id == "b" and not st.renew_lease("s", "a")
    st.release_lease("s", "a")  # not a's any more: nothing happens
    assert st.lease("s").driver_id == "b"
    st.release_lease("s", "b")
    assert st.lease("s") is None


def _drivers(url: str, name: str, n: int) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen([sys.executable, "-m", "workbench", "resume", name, "--storage",
                               url, "-q"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=300), *p.communicate())
            for p in procs]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql",
                                                            marks=pytest.mark.postgres)])
def test_four_concurrent_resumes_run_the_budget_once(tmp_path, request, backend):
    url = (f"sqlite:///{tmp_path / 'c.db'}" if backend == "sqlite"
           else request.getfixturevalue("postgres_db_url"))
    st = Storage(url)
    create_study(st, "c", StudyConfig(space="mlp", task="digits", trials=12, executor="inline",
                                      evaluator="tests.evaluators:slow_score", seed=2))
    results = _drivers(url, "c", 4)
    refused = [r for r in results if r.returncode == 2]
    ran = [r for r in results if r.returncode == 0]
    assert len(ran) >= 1 and len(ran) + len(refused) == 4, [r.stderr for r in results]
    for r in refused:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "is being driven by pid" in lines[0], r.stderr
    trials = st.trials("c")
    assert len(trials) == 12 and all(t.state.finished for t in trials)
    assert len({t.arch_hash for t in trials}) == 12  # nothing trained twice
    assert st.lease("c") is None


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_workers_die_with_their_driver_after_kill_9(tmp_path):
    import os
    import signal

    url = f"sqlite:///{tmp_path / 'k.db'}"
    st = Storage(url)
    create_study(st, "k", StudyConfig(space="mlp", task="digits", trials=40, executor="process",
                                      workers=2, evaluator="tests.evaluators:long_score",
                                      seed=4))
    driver = subprocess.Popen([sys.executable, "-m", "workbench", "resume", "k", "--storage",
                               url, "-q"], cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(st.trials("k")) < 2:  # both workers training
        time.sleep(0.2)
    workers = _children(driver.pid)
    assert workers, "the driver started no worker processes"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "workers outlived their driver"


@pytest.mark.postgres
@pytest.mark.slow
def test_a_driver_rides_out_a_postgresql_restart(tmp_path):
    import threading

    from storage.testing import start_postgres

    server = start_postgres(tmp_path / "pg")
    try:
        st = Storage(server.url)
        create_study(st, "r", StudyConfig(space="mlp", task="digits", trials=30,
                                          executor="inline", seed=5,
                                          evaluator="tests.evaluators:slow_score"))
        restarted = threading.Event()

        def on_event(kind, data):
            if kind == "trial_finished" and data["finished"] == 5 and not restarted.is_set():
                restarted.set()
                server.restart()  # every open connection dies under the driver

        summary = run_study(st, "r", on_event=on_event)
        assert restarted.is_set()
        assert summary.status is StudyStatus.FINISHED
        assert summary.complete + summary.failed == 30
        assert len(st.trials("r")) == 30 and all(t.state.finished for t in st.trials("r"))
    finally:
        server.stop()


def test_memory_limit_reaches_the_trials(tmp_path):
    from workbench.study import parse_memory

    assert parse_memory("4GB") == 4096 and parse_memory("512MB") == 512
    with pytest.raises(ConfigError, match="expected the process executor"):
        StudyConfig(space="mlp", executor="inline", memory_limit_mb=4096)
    st = Storage(f"sqlite:///{tmp_path / 'm.db'}")
    create_study(st, "m", StudyConfig(space="mlp", task="digits", trials=1, seed=1,
                                      memory_limit_mb=parse_memory("300MB"),
                                      evaluator="tests.evaluators:hog"))
    summary = run_study(st, "m")
    (trial,) = st.trials("m")
    assert summary.failed == 1 and trial.state is TrialState.FAILED
    assert "MemoryError" in trial.error or "memory" in trial.error.lower()

"""Several trials per GPU, OOM retry alone, torch.compile fallback — all testable without a GPU.

Out-of-memory is real, not mocked: the process executor's ``memory_limit_mb`` caps each CPU
worker's address space (``RLIMIT_AS``), so an allocation past the cap fails inside torch's CPU
allocator exactly as a full GPU fails inside CUDA's ("can't allocate memory"). The evaluators
below are importable as ``tests.test_gpu_sched:NAME`` by the spawned workers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from workbench import trainer
from workbench.errors import ConfigError
from workbench.executors import Executor, ProcessExecutor, make_executor, plan_slots
from workbench.gpu import is_oom_error
from workbench.jobs import Job
from workbench.spaces import get_space
from workbench.tasks import get_task
from workbench.trainer import Budget, evaluate

SHAPE = (3, 32, 32)
NO_GPU = not torch.cuda.is_available()
SMALL = "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]"
# linear(2048) on the last dim of [B, 3, 32, 32]: 768 KiB of activations per image, so a batch of
# 1024 needs a 768 MiB tensor for its first layer alone: over a 512 MiB cap, however it runs
HUGE = "sequential[computation[linear(2048)], computation[relu]]"


# -- evaluators run inside the workers -------------------------------------------------------------
def _stamp(fn):
    """Wrap an evaluator so its metrics carry the wall-clock interval it ran in."""
    def wrapped(arch, budget, seed):
        start = time.time()
        metrics = fn(arch, budget, seed)
        return {**metrics, "start": start, "end": time.time(), "seed": seed}
    return wrapped


@_stamp
def sleeper(arch, budget, seed):
    time.sleep(0.8)
    return {"val_accuracy": 0.5}


@_stamp
def oom_once(arch, budget, seed):
    """Allocates far past the worker's memory cap on its first attempt only (a marker file
    remembers the attempt): the retry fits, as a trial that failed only for sharing would."""
    marker = Path(os.environ["WB_GPU_TEST_DIR"]) / f"attempt-{seed}"
    if not marker.exists():
        marker.touch()
        torch.empty(16 * 2**30, dtype=torch.uint8)  # 16 GiB: a real allocation failure
    time.sleep(0.3)
    return {"val_accuracy": 0.9}


def _job(number: int, text: str = SMALL, *, evaluator: str | None = None, **over) -> Job:
    arch = get_space("einspace", SHAPE, 10).parse(text)
    fields = dict(study="gpu", number=number, space="einspace", space_options={},
                  input_shape=SHAPE, num_classes=10,
                  decisions=[[d.path, d.choice] for d in arch.decisions],
                  task="synthetic-cifar", task_options={"n": 1500},
                  budget={"epochs": 1, "batch_size": 1024}, seed=number, evaluator=evaluator)
    fields.update(over)
    return Job(**fields)


def _drive(executor, jobs: list[Job]) -> tuple[dict[int, object], int]:
    """Run ``jobs`` as the study loop does; returns outcomes by number and the most trials seen
    running at once while a retry was held back or running alone."""
    pending, results, crowd = list(jobs), {}, 0
    deadline = time.monotonic() + 240
    try:
        while len(results) < len(jobs):
            assert time.monotonic() < deadline, "executor stalled"
            while pending and executor.free_slots():
                executor.submit(pending.pop(0))
            for job, outcome in executor.wait(timeout=0.05):
                results[job.number] = outcome
            if executor._held or executor._retrying:
                busy = sum(s.job is not None for s in executor._slots)
                crowd = max(crowd, busy)
                if executor._held:
                    assert executor.free_slots() == 0, "a device held for a retry took new work"
    finally:
        executor.shutdown()
    return results, crowd


# -- slot planning --------------------------------------------------------------------------------
def test_plan_slots_cpu_gpu_and_errors():
    assert plan_slots(["cpu"], 2) == ["cpu", "cpu"]
    assert plan_slots(["cpu"], "auto") == ["cpu"]  # cores, not memory, limit CPU trials
    assert plan_slots(["cuda:0", "cuda:1"], 3, check=False) == ["cuda:0", "cuda:1"] * 3
    assert plan_slots(["cuda:0"], "2", check=False) == ["cuda:0", "cuda:0"]
    if NO_GPU:
        assert plan_slots(None, 2) == ["cpu", "cpu"]  # a CPU-only machine plans CPU slots
        with pytest.raises(ConfigError, match="available CUDA device"):
            plan_slots(["cuda:0"], 2)
    for bad in (0, -1, 1.5, "lots", True):
        with pytest.raises(ConfigError, match="--trials-per-gpu"):
            plan_slots(["cpu"], bad)
    with pytest.raises(ConfigError, match="expected a device"):
        plan_slots(["tpu"], 1)


def test_executor_slots_follow_the_plan_and_options_are_checked():
    ex = ProcessExecutor(4, devices=["cpu"], trials_per_gpu=3)  # trials_per_gpu wins over workers
    assert ex.slots == 3 and ex.devices == ["cpu"] * 3 and ex.free_slots() == 3
    assert isinstance(ex, Executor) and isinstance(make_executor("inline"), Executor)
    assert make_executor("process", workers=2, devices=["cpu"]).devices == ["cpu", "cpu"]
    with pytest.raises(ConfigError, match="CPU devices only"):
        ProcessExecutor(1, devices=["cuda:0"], memory_limit_mb=256)
    with pytest.raises(ConfigError, match="expected an integer with the ray executor"):
        make_executor("ray", trials_per_gpu="auto")
    assert is_oom_error("out of memory on cuda:0 (batch 128)")
    assert not is_oom_error("timed out after 5s (worker killed)")


# -- out of memory: retried once, alone ----------------------------------------------------------
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RLIMIT_AS cap needs Linux")
def test_oom_trial_is_retried_alone_then_fails_or_succeeds(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_GPU_TEST_DIR", str(tmp_path))  # inherited by the spawned workers
    ex = ProcessExecutor(devices=["cpu"], trials_per_gpu=2, memory_limit_mb=512,
                         threads_per_worker=1)
    ev = "tests.test_gpu_sched:"
    jobs = [_job(0, evaluator=ev + "sleeper"), _job(1, evaluator=ev + "oom_once"),
            _job(2, HUGE),  # the real trainer: too big even alone
            _job(3, evaluator=ev + "sleeper"), _job(4, evaluator=ev + "sleeper")]
    results, crowd = _drive(ex, jobs)

    assert crowd == 1, "a retry shared its device with another trial"
    once = results[1]
    assert once.state == "complete", once.error
    assert once.metrics["retried_alone"] is True
    assert "can't allocate memory" in once.metrics["first_error"]
    huge = results[2]
    assert huge.state == "failed"
    assert huge.error.startswith("out of memory (also when run alone): out of memory on cpu "
                                 "(batch 1024)"), huge.error
    assert huge.metrics["retried_alone"] is True
    for n in (0, 3, 4):
        assert results[n].state == "complete" and "retried_alone" not in results[n].metrics
        # the retry's interval overlaps no other trial's
        assert results[n].metrics["end"] <= once.metrics["start"] or \
            results[n].metrics["start"] >= once.metrics["end"]


def test_oom_on_an_unshared_device_is_not_retried(tmp_path, monkeypatch):
    monkeypatch.setenv("WB_GPU_TEST_DIR", str(tmp_path))
    ex = ProcessExecutor(devices=["cpu"], trials_per_gpu=1, memory_limit_mb=512,
                         threads_per_worker=1)
    results, _ = _drive(ex, [_job(0, evaluator="tests.test_gpu_sched:oom_once")])
    assert results[0].state == "failed" and "can't allocate memory" in results[0].error
    assert "retried_alone" not in results[0].metrics  # it already ran alone


# -- the trainer: device copy kept, torch.compile cached or falling back ---------------------------
@pytest.fixture
def fresh_compile_cache():
    import torch._dynamo

    torch._dynamo.reset()
    trainer._COMPILED.clear()
    trainer._COMPILE_FAILED.clear()
    yield
    trainer._COMPILED.clear()
    trainer._COMPILE_FAILED.clear()


def test_task_is_copied_to_a_device_once_per_task():
    task, other = get_task("synthetic", n=64), get_task("synthetic", n=64, seed=1)
    meta = torch.device("meta")  # a real second device on any machine: tensors without storage
    first = trainer._on_device(task, meta)
    assert first.x_train.device == meta and trainer._on_device(task, meta) is first
    assert trainer._on_device(task, torch.device("cpu")) is task
    second = trainer._on_device(other, meta)
    assert second is not first and trainer._on_device(other, meta) is second


def _small_run(text: str = SMALL, **kw):
    task = get_task("synthetic", n=256)
    arch = get_space("einspace", task.input_shape, task.num_classes).parse(text)
    return evaluate(arch, task, Budget(epochs=2, batch_size=32), device="cpu", **kw)


@pytest.mark.slow
def test_inductor_compiles_on_cpu(fresh_compile_cache):
    """The real default backend (needs a C++ compiler; about a minute on a small CPU)."""
    res = _small_run(compile=True)
    assert res.ok, res.error
    assert res.metrics["compiled"] is True and res.metrics["compile_backend"] == "inductor"
    assert abs(res.metrics["train_loss"] - _small_run().metrics["train_loss"]) < 1e-3


def test_compiled_training_matches_eager_and_is_cached(fresh_compile_cache):
    eager = _small_run()
    first = _small_run(compile="aot_eager")  # real torch.compile, no C compiler involved
    again = _small_run(compile="aot_eager")
    assert first.metrics["compiled"] is True and first.metrics["compile_cached"] is False
    assert first.metrics["compile_s"] > 0
    # the cache hit starts from this trial's initial weights, not the last trial's trained ones
    assert again.metrics["compile_cached"] is True and "compile_s" not in again.metrics
    for key in ("train_loss", "val_accuracy", "val_loss"):
        assert first.metrics[key] == pytest.approx(eager.metrics[key], abs=1e-5)
        assert again.metrics[key] == pytest.approx(first.metrics[key], abs=1e-6)


def test_compile_failure_falls_back_to_eager(fresh_compile_cache, monkeypatch, tmp_path):
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    # what a machine without a C++ compiler gives: inductor's CPU code cannot be built. No cache
    # may serve code built earlier: caches off, an empty cache folder, an architecture of its own
    monkeypatch.setattr(inductor_config.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(inductor_config, "fx_graph_cache", False)
    monkeypatch.setattr(functorch_config, "enable_autograd_cache", False)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    text = "sequential[computation[linear(32)], computation[relu]]"
    eager = _small_run(text)
    res = _small_run(text, compile=True)
    assert res.ok, res.error
    assert res.metrics["compiled"] is False
    assert "C++ compiler" in res.metrics["compile_error"]
    assert res.metrics["train_loss"] == pytest.approx(eager.metrics["train_loss"], abs=1e-6)
    again = _small_run(text, compile=True)  # the failure is remembered, not paid again
    assert again.metrics["compiled"] is False and again.metrics["compile_cached"] is True


def test_bad_compile_option_is_a_config_error():
    with pytest.raises(ConfigError, match="torch.compile backend"):
        _small_run(compile="no-such-backend")
    with pytest.raises(ConfigError, match="Budget.compile"):
        Budget(compile="")

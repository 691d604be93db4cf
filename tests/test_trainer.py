"""evaluate(): training within budgets, determinism, metrics, and failures captured as results."""

from __future__ import annotations

import time

import pytest
import torch

from workbench.compiler import compile_model
from workbench.errors import ConfigError
from workbench.metrics import count_flops
from workbench.spaces import get_space
from workbench.tasks import get_task
from workbench.trainer import Budget, EvalResult, _describe, _Progress, evaluate, select_device

CONV = "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]"
MLP = "sequential[routing[im2col(8,8,0), computation[linear(64)], col2im], computation[relu]]"
TIMING = {"wall_time_s", "latency_ms"}


def run(arch, task, budget, **kwargs) -> EvalResult:
    """evaluate() on the CPU unless a test says otherwise: exact comparisons need fp32 on CPU."""
    kwargs.setdefault("device", "cpu")
    return evaluate(arch, task, budget, **kwargs)


@pytest.fixture(scope="module")
def synthetic():
    return get_task("synthetic", seed=0)


@pytest.fixture(scope="module")
def digits():
    return get_task("digits", seed=0)


def arch_for(task, text=CONV):
    return get_space("einspace", task.input_shape, task.num_classes).parse(text)


def untimed(result: EvalResult):
    return ({k: v for k, v in result.metrics.items() if k not in TIMING},
            [{k: v for k, v in p.items() if k != "seconds"} for p in result.curve])


def test_learns_synthetic_above_chance_with_one_curve_point_per_epoch(synthetic):
    result = run(arch_for(synthetic), synthetic, Budget(epochs=3, batch_size=32, lr=1e-2))
    assert result.state == "complete" and result.error is None and result.ok
    assert result.metrics["val_accuracy"] > 0.5  # chance is 0.25
    assert [p["epoch"] for p in result.curve] == [1, 2, 3]
    assert set(result.curve[0]) == {"epoch", "step", "train_loss", "val_loss", "val_accuracy",
                                    "seconds"}
    assert result.curve[-1]["train_loss"] < result.curve[0]["train_loss"]
    m = result.metrics
    # an epoch is one pass or min_epoch_steps (50) steps, whichever is more
    assert m["epochs"] == 3 and m["steps"] == 3 * max(synthetic.sizes["train"] // 32, 50)
    assert m["best_val_accuracy"] == max(p["val_accuracy"] for p in result.curve)
    assert 0 <= m["test_accuracy"] <= 1 and m["device"] == "cpu" and m["precision"] == "fp32"
    assert m["latency_ms"] > 0 and m["peak_memory_mb"] > 0 and m["wall_time_s"] > 0
    assert m["params"] == 3 * 16 * 9 + 16 + 16 * 4 + 4 and m["params_backbone"] == 3 * 16 * 9 + 16
    assert m["flops"] == count_flops(compile_model(arch_for(synthetic)), synthetic.input_shape)


def test_learns_digits_with_sgd_and_step_schedule(digits):
    budget = Budget(epochs=2, batch_size=32, optimizer="sgd", schedule="step", lr=0.05,
                    label_smoothing=0.1)
    result = run(arch_for(digits, MLP), digits, budget)
    assert result.state == "complete" and result.metrics["val_accuracy"] > 0.6  # chance 0.1


def test_same_seed_same_metrics_and_curve_different_seed_differs(synthetic):
    arch, budget = arch_for(synthetic), Budget(epochs=2, batch_size=64)
    a, b = (run(arch, synthetic, budget, seed=7) for _ in range(2))
    c = run(arch, synthetic, budget, seed=8)
    assert untimed(a) == untimed(b)
    assert untimed(a)[1] != untimed(c)[1]


def test_steps_budget(synthetic):
    result = run(arch_for(synthetic), synthetic, Budget(epochs=50, max_steps=3, batch_size=16))
    assert result.state == "complete" and result.metrics["steps"] == 3
    assert result.metrics["epochs"] == 0 and len(result.curve) == 1
    assert result.curve[0]["step"] == 3 and result.metrics["val_accuracy"] is not None


def test_seconds_budget_stops_gracefully_and_still_evaluates(synthetic):
    start = time.perf_counter()
    result = run(arch_for(synthetic), synthetic,
                      Budget(epochs=100_000, max_seconds=0.3, batch_size=16))
    assert time.perf_counter() - start < 5
    m = result.metrics
    assert result.state == "complete" and m["steps"] >= 1 and m["epochs"] < 100_000
    assert len(result.curve) in (m["epochs"], m["epochs"] + 1)  # + the epoch it stopped in
    assert result.metrics["test_accuracy"] is not None and result.curve[-1]["val_accuracy"] >= 0


def test_keep_weights_gives_a_loadable_cpu_state_dict(digits):
    arch = arch_for(digits, MLP)
    result = run(arch, digits, Budget(epochs=1, batch_size=64), keep_weights=True)
    assert result.state_dict and all(t.device.type == "cpu" for t in result.state_dict.values())
    model = compile_model(arch, seed=123)
    model.load_state_dict(result.state_dict)
    model.eval()
    with torch.no_grad():
        acc = (model(digits.x_val).argmax(-1) == digits.y_val).float().mean().item()
    assert acc == pytest.approx(result.metrics["val_accuracy"])
    assert run(arch, digits, Budget(epochs=1, max_steps=1)).state_dict is None


def test_nan_loss_becomes_a_failed_result(digits):
    # x @ x^T squares magnitudes; five nested products overflow float32 in the forward pass
    square = ("branching(2)[clone(2), computation[identity], "
              "routing[permute21, computation[identity], identity], dot_product]")
    body = square
    for _ in range(4):
        body = f"sequential[{square}, {body}]"
    arch = arch_for(digits, f"routing[im2col(1,1,0), sequential[computation[linear(16)], {body}], "
                            "identity]")
    result = run(arch, digits, Budget(epochs=3, batch_size=256))
    assert result.state == "failed"
    assert result.error == "loss became nan at epoch 1 step 1"
    assert result.metrics["params"] > 0 and result.metrics["flops"] > 0
    assert result.curve == () and result.state_dict is None


def test_forward_error_becomes_a_failed_result():
    # BatchNorm over 1x1 maps cannot train on a batch of one: a real error inside forward
    task = get_task("synthetic", n=64)
    arch = arch_for(task, "sequential[routing[im2col(8,8,0), computation[linear(16)], col2im], "
                          "computation[norm]]")
    result = run(arch, task, Budget(epochs=1, batch_size=1))
    assert result.state == "failed"
    assert result.error.startswith("runtime error in forward (epoch 1 step 1): ValueError: "
                                   "Expected more than 1 value per channel")
    assert "\n" not in result.error and result.metrics["params"] > 0


def test_mismatched_task_becomes_a_failed_result(synthetic, digits):
    result = run(arch_for(digits), synthetic, Budget(epochs=1))
    assert result.state == "failed"
    assert result.error == ("input shape mismatch: architecture expects (1, 8, 8), "
                            "task 'synthetic' gives (3, 8, 8)")
    wrong_classes = get_space("einspace", (3, 8, 8), 10).parse(CONV)
    result = run(wrong_classes, synthetic, Budget(epochs=1))
    assert result.state == "failed" and "class count mismatch" in result.error


def test_out_of_memory_message():
    progress = _Progress()
    progress.batch_size = 128
    error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert _describe(error, progress, torch.device("cuda", 0)) == "out of memory on cuda:0 (batch 128)"
    assert _describe(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                                  "allocate 9 GB, out of memory"), progress,
                     torch.device("cpu")) == "out of memory on cpu (batch 128)"


def test_bf16_autocast_on_cpu(synthetic):
    result = run(arch_for(synthetic), synthetic, Budget(epochs=1, max_steps=2, batch_size=32),
                      amp="bf16")
    assert result.state == "complete" and result.metrics["precision"] == "bf16"


def test_select_device_and_config_errors(synthetic):
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert select_device("auto") == torch.device("cpu")
        with pytest.raises(ConfigError, match="expected an available CUDA device for 'cuda:1'"):
            select_device("cuda:1")
    with pytest.raises(ConfigError, match="amp='fp16'"):
        run(arch_for(synthetic), synthetic, Budget(epochs=1), amp="fp16")
    with pytest.raises(ConfigError, match="expected a device .* found 'gpu'"):
        select_device("gpu")
    with pytest.raises(ConfigError, match="expected amp"):
        run(arch_for(synthetic), synthetic, Budget(epochs=1), amp="half")
    with pytest.raises(ConfigError, match="expected Budget.optimizer in adamw, sgd, found 'adam'"):
        Budget(optimizer="adam")
    with pytest.raises(ConfigError, match="expected Budget.epochs >= 1, found 0"):
        Budget(epochs=0)


def test_result_to_dict_is_json_ready(synthetic):
    import json

    result = run(arch_for(synthetic), synthetic, Budget(epochs=1, max_steps=1))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["state"] == "complete" and len(data["curve"]) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("amp,precision", [("auto", None), ("fp16", "fp16"), ("off", "fp32")])
def test_cuda_training_with_mixed_precision(synthetic, amp, precision):
    result = run(arch_for(synthetic), synthetic, Budget(epochs=3, batch_size=32, lr=1e-2),
                 device="cuda", amp=amp, keep_weights=True)
    assert result.state == "complete", result.error
    assert result.metrics["device"] == "cuda:0" and result.metrics["val_accuracy"] > 0.5
    assert precision is None or result.metrics["precision"] == precision
    assert result.metrics["peak_memory_mb"] > 0 and result.metrics["latency_ms"] > 0
    assert all(t.device.type == "cpu" for t in result.state_dict.values())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_out_of_memory_becomes_a_failed_result():
    task = get_task("synthetic", n=20_000, shape=(3, 32, 32), classes=4)
    arch = arch_for(task, "sequential[routing[im2col(3,1,1), computation[linear(2048)], col2im], "
                          "computation[relu]]")
    # one batch of 14k images x 2048 channels x 32 x 32 needs ~120 GB of activations
    result = run(arch, task, Budget(epochs=1, batch_size=20_000), device="cuda", amp="off")
    batch = task.sizes["train"]  # the batch is capped at the training split (14000)
    assert result.state == "failed" and result.error == f"out of memory on cuda:0 (batch {batch})"
    assert run(arch_for(task, CONV), task, Budget(epochs=1, max_steps=2), device="cuda").ok

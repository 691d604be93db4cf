"""Budgets in steps and epochs, the per-epoch step floor, warm-up + schedule, augmentation."""

from __future__ import annotations

import pytest
import torch

from workbench.budget import Budget, lr_factor
from workbench.errors import ConfigError
from workbench.spaces import get_space
from workbench.tasks import get_task
from workbench.tasks.augment import augment_batch
from workbench.trainer import evaluate

CONV = "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]"


@pytest.fixture(scope="module")
def synthetic():
    return get_task("synthetic", n=128, seed=0)  # 90 training samples


def arch_for(task):
    return get_space("einspace", task.input_shape, task.num_classes).parse(CONV)


def test_step_budget_is_exact_and_spans_epochs_of_the_floor(synthetic):
    result = evaluate(arch_for(synthetic), synthetic, Budget(steps=23, batch_size=32,
                                                              min_epoch_steps=10), device="cpu")
    m = result.metrics
    assert result.ok and m["steps"] == m["planned_steps"] == 23
    assert [p["step"] for p in result.curve] == [10, 20, 23]  # last epoch partial
    assert m["epochs"] == 2 and m["passes"] == pytest.approx(23 * 32 / 90, abs=1e-3)


def test_epoch_floor_gives_tiny_datasets_enough_steps_and_leaves_large_ones_alone():
    assert Budget(epochs=3).planned_steps(1257) == 150  # digits: 9 batches -> 50 per epoch
    assert Budget(epochs=3).planned_steps(50_000) == 3 * 390  # CIFAR: true epochs
    assert Budget(epochs=3, min_epoch_steps=1).planned_steps(1257) == 27  # the floor off
    assert Budget(epochs=3, max_steps=40).planned_steps(1257) == 40
    assert Budget(steps=500, epochs=99).planned_steps(10) == 500  # steps win over epochs


def test_warmup_then_cosine_to_zero():
    b = Budget(steps=200)  # 5% warm-up: 10 steps
    f = [lr_factor(b, s, 200) for s in range(200)]
    assert b.warmup_steps(200) == 10
    assert all(x < y for x, y in zip(f[:10], f[1:11])) and f[10] == 1.0
    assert all(x >= y for x, y in zip(f[10:], f[11:])) and f[-1] == pytest.approx(0.0)
    assert lr_factor(Budget(warmup=0.0), 0, 200) == 1.0
    assert Budget(warmup=0.5).warmup_steps(1) == 0  # a one-step plan still takes its step
    step = [lr_factor(Budget(schedule="step", warmup=0.0), s, 101) for s in (0, 50, 75)]
    assert step == pytest.approx([1.0, 0.1, 0.01])


def test_the_trainer_follows_the_schedule(synthetic):
    arch = arch_for(synthetic)
    a = evaluate(arch, synthetic, Budget(steps=20, batch_size=32, lr=0.1, warmup=0.0,
                                         schedule="constant"), device="cpu")
    b = evaluate(arch, synthetic, Budget(steps=20, batch_size=32, lr=0.1, warmup=0.5),
                 device="cpu")
    assert a.metrics["warmup_steps"] == 0 and b.metrics["warmup_steps"] == 10
    assert a.metrics["train_loss"] != b.metrics["train_loss"]


@pytest.mark.parametrize("field,value,expected", [
    ("steps", 0, ">= 1 or None"), ("min_epoch_steps", 0, ">= 1"), ("warmup", 1.0, "in [0, 1)"),
    ("epochs", True, ">= 1")])
def test_budget_errors_say_expected_and_found(field, value, expected):
    with pytest.raises(ConfigError, match=rf"expected Budget.{field} {expected}, found {value!r}"
                       .replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        Budget(**{field: value})


def test_augment_crop_and_flip_are_seeded_and_keep_shapes():
    x = torch.randn(16, 3, 8, 8)
    a = augment_batch(x, ("crop", "flip"), 2, torch.Generator().manual_seed(1))
    b = augment_batch(x, ("crop", "flip"), 2, torch.Generator().manual_seed(1))
    c = augment_batch(x, ("crop", "flip"), 2, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    flipped = augment_batch(x, ("flip",), 0, torch.Generator().manual_seed(0))
    same = [torch.equal(f, s) for f, s in zip(flipped, x)]
    mirrored = [torch.equal(f, s.flip(2)) for f, s in zip(flipped, x)]
    assert all(s or m for s, m in zip(same, mirrored)) and any(mirrored) and any(same)
    one = torch.zeros(1, 1, 5, 5)
    one[0, 0, 2, 2] = 1.0  # a single lit pixel moves by at most the padding
    moved = augment_batch(one.repeat(32, 1, 1, 1), ("crop",), 1, torch.Generator().manual_seed(0))
    where = moved.flatten(1).argmax(1)
    rows, cols = where // 5, where % 5
    assert set(rows.tolist()) <= {1, 2, 3} and set(cols.tolist()) <= {1, 2, 3}
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1


def test_augmented_task_trains_differently_and_only_on_training_batches(synthetic):
    aug = get_task("synthetic", n=128, seed=0, augment="crop+flip")
    assert aug.augment == ("crop", "flip") and aug.crop_padding == 1
    assert torch.equal(aug.x_val, synthetic.x_val)  # the splits themselves are untouched
    budget = Budget(steps=10, batch_size=32)
    plain = evaluate(arch_for(synthetic), synthetic, budget, device="cpu")
    a = evaluate(arch_for(aug), aug, budget, device="cpu")
    b = evaluate(arch_for(aug), aug, budget, device="cpu")
    assert a.metrics["train_loss"] == b.metrics["train_loss"] != plain.metrics["train_loss"]


def test_augment_option_errors():
    with pytest.raises(ConfigError, match="expected augment crop, flip, crop.flip, true or none, "
                                          "found 'rotate'"):
        get_task("digits", augment="rotate")
    with pytest.raises(ConfigError, match=r"expected an image task .* found input shape "
                                          r"\(1, 1, 40\)"):
        get_task("mnist1d", num_samples=200, augment=True)
    with pytest.raises(ConfigError, match=r"expected crop_padding an int in \[0, 8\), found 9"):
        get_task("digits", augment="crop", crop_padding=9)

"""Custom evaluators used by the study tests (importable as ``tests.evaluators:NAME``)."""

from __future__ import annotations


def param_score(arch, budget):
    """A cheap deterministic evaluator: fewer nodes score higher; no training."""
    return {"val_accuracy": 1.0 / (1 + arch.nodes), "params": arch.nodes,
            "curve": [{"epoch": e + 1, "val_accuracy": 0.1 * e} for e in range(budget.epochs)]}


def slow_score(arch, budget):
    """param_score after 0.15 s of "training"."""
    import time

    time.sleep(0.15)
    return param_score(arch, budget)


def explode(arch, budget):
    """Raises for architectures with a softmax, else scores like param_score."""
    if "softmax" in arch.text:
        raise RuntimeError("evaluator exploded on a softmax")
    return param_score(arch, budget)


def no_metrics(arch, budget):
    return {"something_else": 1.0}


def paced_score(arch, budget):
    """param_score after 0.4 s: long enough to kill a driver in the middle of a trial."""
    import time

    time.sleep(0.4)
    return param_score(arch, budget)


# -- fault evaluators: each result must fail its trial with a reason, never pass as complete ----
def nan_score(arch, budget):
    return {"val_accuracy": float("nan"), "params": 1}


def inf_score(arch, budget):
    return {"val_accuracy": float("inf"), "params": 1}


def string_score(arch, budget):
    return {"val_accuracy": "0.93", "params": 1}


def object_metric(arch, budget):
    return {"val_accuracy": 0.5, "blob": object()}


def huge_metric(arch, budget):
    return {"val_accuracy": 0.5, "log": "x" * 50_000_000}


def bad_curve(arch, budget):
    return {"val_accuracy": 0.5, "curve": [{"epoch": 1, "loss": "high"}]}


def exits(arch, budget):
    raise SystemExit(3)


def interrupts(arch, budget):
    raise KeyboardInterrupt


def alternating(arch, budget):
    """NaN for every other architecture (by hash), a real score for the rest."""
    if int(arch.hash, 16) % 2:
        return {"val_accuracy": float("nan")}
    return param_score(arch, budget)


def long_score(arch, budget):
    """Sleeps a minute: a trial still running when its driver is killed."""
    import time

    time.sleep(60)
    return param_score(arch, budget)


def hog(arch, budget):
    """Allocates 2 GB: past a per-trial memory limit this fails as out of memory."""
    import numpy as np

    block = np.ones(2 * 1024**3 // 8)
    return {"val_accuracy": float(block[0]) / 2, "params": 1}

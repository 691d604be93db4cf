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

"""Custom evaluators for the Ray tests and benchmark (importable as ``tests.ray_evaluators:NAME``
by Ray worker processes, which get the driver's ``sys.path``).

Most talk to the test through files in ``$WB_RAY_TEST_DIR`` (set before the Ray cluster starts,
so every worker inherits it):

* ``hangs``: how many attempts of each trial hang (``killable``);
* ``attempts-<seed>``: one line per attempt, the worker's pid;
* ``pid-<seed>-<attempt>``: written by a hanging attempt, for the test to kill.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.evaluators import param_score


def _dir() -> Path:
    return Path(os.environ["WB_RAY_TEST_DIR"])


def killable(arch, budget, seed):
    """The first ``hangs`` attempts of each trial announce their pid and sleep (to be killed or
    timed out); later attempts score like ``param_score``."""
    d = _dir()
    hangs = int((d / "hangs").read_text())
    log = d / f"attempts-{seed}"
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    attempt = len(log.read_text().split())
    if attempt <= hangs:
        tmp = d / f".pid-{seed}-{attempt}"
        tmp.write_text(str(os.getpid()))
        tmp.rename(d / f"pid-{seed}-{attempt}")  # atomic: the test never reads half a pid
        time.sleep(300)
    return param_score(arch, budget)


def slow_score(arch, budget):
    """``param_score`` after 1.5 s: long enough to kill a driver mid-study."""
    time.sleep(1.5)
    return param_score(arch, budget)


def sleep_half(arch, budget):
    """``param_score`` after a fixed 0.5 s sleep: executor overhead without CPU contention."""
    time.sleep(0.5)
    return param_score(arch, budget)


def gated_score(arch, budget):
    """``param_score`` once the file named by ``$WB_GATE`` exists: lets a test hold several
    drivers at their first trial until all of them are running, then release them together."""
    gate = Path(os.environ["WB_GATE"])
    deadline = time.monotonic() + 180
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate} never opened")
        time.sleep(0.02)
    return param_score(arch, budget)

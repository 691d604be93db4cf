"""Policy-gradient search (REINFORCE with a moving-average baseline), define-by-run.

The controller is a table of logits, one per (decision path, option): at each decision point the
derivation meets, the policy is a softmax over the logits of the options *valid there* (options
that change with shapes simply have their own logits; a continuous range is left to the space's
own sampling). Zoph & Le's controller is an RNN that conditions each decision on the earlier ones;
a path here already names its position in the derivation, so the table conditions on where a
decision sits, not on what was chosen before it (documented trade-off: far fewer parameters to
learn from a hundred evaluations).

Each complete result gives a reward: its percentile rank among the results told so far (failures
0), so the learning rate means the same on any metric. The update is REINFORCE,
``theta[path, o] += lr * (R - b) * (1[o = chosen] - pi(o))`` for every decision of the
architecture, and the baseline ``b`` is an exponential moving average of the rewards
(``baseline_decay``). Told architectures that the controller did not propose (seeds, another
searcher's trials) are learned from the same way (off-policy, unweighted). State is the told
history, so ``recover`` (a tell for each) rebuilds the logits exactly. Several objectives: the mean
of the per-objective percentile ranks.

Percentile rewards and a high learning rate let the table learn from ~100 evaluations (on NB201
it beats random search by about 0.3 points at 100; see docs/searchers.md).

>>> from workbench.spaces import get_space
>>> from storage.records import TrialState
>>> from workbench.searchers import Objective, Result, get_searcher
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("rl", space, [Objective("acc")], seed=0)
>>> for _ in range(30):
...     p = s.ask()
...     s.tell(p.arch, Result(TrialState.COMPLETE, (p.arch.text.count("nor_conv_3x3"),)))
>>> probs = s.probabilities("root/edge_1_0", ("none", "skip_connect", "nor_conv_3x3"))
>>> max(probs, key=probs.get)
'nor_conv_3x3'
"""

from __future__ import annotations

import bisect
import math
import random

from workbench.architecture import Architecture, DecisionPoint
from workbench.errors import ConfigError, DerivationFailed
from workbench.searchers._common import record_points, signed_values
from workbench.searchers.base import Option, Proposal, Result, Searcher


class Reinforce(Searcher):
    name = "rl"
    summary = ("REINFORCE policy gradient over decision paths (softmax over the valid options at "
               "each path, moving-average baseline, percentile rewards).")
    options = {
        "lr": Option(1.0, "Learning rate of the logits.", float),
        "baseline_decay": Option(0.8, "Decay of the moving-average reward baseline.", float),
        "retries": Option(10, "Re-samples when an ask repeats a told or pending architecture.",
                          int),
    }

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        if self.opts["lr"] <= 0 or not 0 <= self.opts["baseline_decay"] < 1 \
                or self.opts["retries"] < 0:
            raise ConfigError(f"searcher rl: expected lr > 0, baseline_decay in [0, 1) and "
                              f"retries >= 0, found {self.opts['lr']}, "
                              f"{self.opts['baseline_decay']}, {self.opts['retries']}")
        self.logits: dict[tuple[str, str], float] = {}
        self.baseline: float | None = None
        self.sorted_values: list[list[float]] = [[] for _ in self.objectives]
        self.told: set[str] = set()
        self.pending: dict[str, int] = {}

    def probabilities(self, path: str, options) -> dict:
        """The controller's softmax over ``options`` at ``path``."""
        logits = [self.logits.get((path, repr(o)), 0.0) for o in options]
        top = max(logits)
        w = [math.exp(x - top) for x in logits]
        return {o: x / sum(w) for o, x in zip(options, w)}

    def propose(self, rng: random.Random) -> Proposal:
        def policy(point: DecisionPoint):
            if point.continuous or len(point.options) <= 1:
                return None
            probs = self.probabilities(point.path, point.options)
            return rng.choices(list(probs), weights=list(probs.values()))[0]

        arch = None
        for _ in range(self.opts["retries"] + 1):
            try:
                arch = self.space.derive(policy, rng)
            except DerivationFailed:
                continue
            if arch.hash not in self.told and arch.hash not in self.pending:
                break
        if arch is None:
            arch = self.space.sample(rng)
        self.pending[arch.hash] = self.pending.get(arch.hash, 0) + 1
        return Proposal(arch, info={"origin": "policy"})

    def _reward(self, result: Result) -> float:
        if not result.ok:
            return 0.0
        parts = []
        for col, v in zip(self.sorted_values, signed_values(result, self.objectives)):
            bisect.insort(col, v)
            if len(col) < 2:
                parts.append(0.5)
                continue
            lo, hi = bisect.bisect_left(col, v), bisect.bisect_right(col, v)
            parts.append((lo + hi - 1) / 2 / (len(col) - 1))
        return sum(parts) / len(parts)

    def observe(self, arch: Architecture, result: Result) -> None:
        if arch.hash in self.pending:
            self.pending[arch.hash] -= 1
            if not self.pending[arch.hash]:
                del self.pending[arch.hash]
        if arch.hash in self.told:
            return  # a repeat teaches nothing new
        self.told.add(arch.hash)
        reward = self._reward(result)
        if self.baseline is None:
            self.baseline = reward
            return
        advantage = reward - self.baseline
        d = self.opts["baseline_decay"]
        self.baseline = d * self.baseline + (1 - d) * reward
        lr = self.opts["lr"]
        for point, choice in record_points(self.space, arch):
            if point.continuous or len(point.options) <= 1:
                continue
            probs = self.probabilities(point.path, point.options)
            for o, pr in probs.items():
                key = (point.path, repr(o))
                grad = (1.0 if o == choice else 0.0) - pr
                self.logits[key] = self.logits.get(key, 0.0) + lr * advantage * grad

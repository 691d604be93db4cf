"""Monte-Carlo tree search (UCT) over decision paths.

A tree node is a prefix of the derivation: the sequence of ``(path, choice)`` tokens met so far.
Because derivation is define-by-run, a node's children are whatever options the space offers
at the next decision point given that prefix, so option sets that change with shapes need no
special care. Each ask descends from the root choosing children by UCT,

    score = Q + c * sqrt(ln N(parent) / N(child)),

with ``Q`` the child's mean reward normalised by the range of rewards seen so far (so the
exploration constant ``c`` means the same on any metric). At the first untried child it leaves
the tree and rolls out through the space's own probabilities (the policy answers ``None``).
Each tell backs the reward up along the architecture's prefix and adds one node (the first one
of the prefix not yet in the tree). Asked-but-untold proposals add a *virtual loss* (a visit with
the worst reward) along their prefix, so parallel workers spread over branches. Failed results
count as visits with the worst reward. With ``bisect=k`` a point with more than k options is
chosen by successive halving of its option list (virtual binary nodes), which lets statistics
be shared by neighbouring options of wide choices. Several objectives are scalarised: the
reward is the mean of the per-objective normalised values (documented in docs/searchers.md).

>>> from workbench.spaces import get_space
>>> from workbench.searchers import Objective, Result, get_searcher
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("mcts", space, [Objective("acc")], seed=1)
>>> for _ in range(8):
...     p = s.ask()
...     s.tell(p.arch, Result("complete", (p.arch.text.count("conv"),)))
>>> s.stats[()][0], len(s.stats)   # root visits, tree nodes
(8, 9)
"""

from __future__ import annotations

import math
import random
from collections import Counter

from workbench.architecture import Architecture, DecisionPoint
from workbench.errors import ConfigError
from workbench.searchers._common import record_points, signed_values
from workbench.searchers.base import Option, Proposal, Result, Searcher

Token = tuple  # (path, choice) or (path + "#", (lo, hi)) for a bisection step
Key = tuple  # a tuple of tokens; () is the root


class MCTS(Searcher):
    name = "mcts"
    summary = "UCT over decision paths with normalised rewards, virtual loss and random roll-outs."
    options = {
        "exploration": Option(0.7, "UCT exploration constant c (rewards are normalised to [0, 1]).",
                              float),
        "bisect": Option(0, "Bisect points with more options than this (0: never).", int),
    }

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        if self.opts["exploration"] < 0 or self.opts["bisect"] < 0 or self.opts["bisect"] == 1:
            raise ConfigError(f"searcher mcts: expected exploration >= 0 and bisect 0 or >= 2, "
                              f"found {self.opts['exploration']}, {self.opts['bisect']}")
        m = len(self.objectives)
        # key -> [visits, failures, per-objective sums of signed values over successful visits]
        self.stats: dict[Key, list] = {(): [0, 0, [0.0] * m]}
        self.lo = [math.inf] * m
        self.hi = [-math.inf] * m
        self.virtual: Counter = Counter()
        self.pending: dict[str, list[list[Key]]] = {}

    # -- statistics ----------------------------------------------------------------------------
    def _q(self, key: Key) -> float:
        n, fails, sums = self.stats[key]
        ok = n - fails
        if ok <= 0:
            return 0.0
        parts = []
        for s, lo, hi in zip(sums, self.lo, self.hi):
            parts.append((s / ok - lo) / (hi - lo) if hi > lo else 0.5)
        return ok * (sum(parts) / len(parts)) / n  # failures count as reward 0

    def _visits(self, key: Key) -> int:
        return (self.stats[key][0] if key in self.stats else 0) + self.virtual[key]

    def _select(self, prefix: Key, tokens: list[Token], weights: list[float],
                rng: random.Random) -> tuple[Token, bool]:
        """Pick a child token; returns it and whether the child is in the tree."""
        untried = [i for i, t in enumerate(tokens) if self._visits(prefix + (t,)) == 0]
        if untried:
            w = [weights[i] for i in untried]
            i = rng.choices(untried, weights=w if sum(w) > 0 else None)[0]
            return tokens[i], False
        log_n = math.log(max(self._visits(prefix), 1))
        c = self.opts["exploration"]
        best, best_score = [], -math.inf
        for t in tokens:
            key = prefix + (t,)
            n_eff = self._visits(key)
            q = self._q(key) * (self.stats[key][0] / n_eff) if key in self.stats else 0.0
            score = q + c * math.sqrt(log_n / n_eff)
            if score > best_score + 1e-12:
                best, best_score = [t], score
            elif abs(score - best_score) <= 1e-12:
                best.append(t)
        t = best[0] if len(best) == 1 else rng.choice(best)
        return t, (prefix + (t,)) in self.stats

    # -- tokens --------------------------------------------------------------------------------
    def _tokens(self, point: DecisionPoint, choice) -> list[Token]:
        """The token sequence that chooses ``choice`` at ``point``."""
        tokens: list[Token] = []
        k, n = self.opts["bisect"], len(point.options)
        lo, hi = 0, n
        idx = point.options.index(choice)
        while k and hi - lo > k:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if idx < mid else (mid, hi)
            tokens.append((point.path + "#", (lo, hi)))
        tokens.append((point.path, choice))
        return tokens

    def _keys(self, arch: Architecture) -> list[Key]:
        """Prefixes of ``arch`` that are in the tree, plus the first one that is not."""
        keys: list[Key] = [()]
        key: Key = ()
        for point, choice in record_points(self.space, arch):
            if point.continuous:
                break  # a continuous choice has no finite children: the tree ends here
            for t in self._tokens(point, choice):
                key = key + (t,)
                keys.append(key)
                if key not in self.stats:
                    return keys
        return keys

    # -- ask / tell ----------------------------------------------------------------------------
    def propose(self, rng: random.Random) -> Proposal:
        prefix: list[Token] = []
        state = {"in_tree": True}

        def policy(point: DecisionPoint):
            # A path asked again means the space backtracked: forget what followed it.
            for j, t in enumerate(prefix):
                if t[0] in (point.path, point.path + "#"):
                    del prefix[j:]
                    state["in_tree"] = tuple(prefix) in self.stats
                    break
            if not state["in_tree"] or point.continuous or not point.options:
                state["in_tree"] = False
                return None
            opts = list(point.options)
            weights = list(point.weights) if point.weights else [1.0] * len(opts)
            lo, hi = 0, len(opts)
            k = self.opts["bisect"]
            while k and hi - lo > k:
                mid = (lo + hi) // 2
                halves = [(lo, mid), (mid, hi)]
                tokens = [(point.path + "#", h) for h in halves]
                hw = [sum(weights[a:b]) for a, b in halves]
                t, inside = self._select(tuple(prefix), tokens, hw, rng)
                prefix.append(t)
                lo, hi = t[1]
                if not inside:
                    state["in_tree"] = False
                    sub = opts[lo:hi]
                    sw = weights[lo:hi]
                    return rng.choices(sub, weights=sw if sum(sw) > 0 else None)[0]
            leaves = [(point.path, o) for o in opts[lo:hi]]
            t, inside = self._select(tuple(prefix), leaves, weights[lo:hi], rng)
            prefix.append(t)
            state["in_tree"] = inside
            return t[1]

        arch = self._derive(policy, rng)
        keys = self._keys(arch)
        for key in keys:
            self.virtual[key] += 1
        self.pending.setdefault(arch.hash, []).append(keys)
        return Proposal(arch, info={"tree_depth": len(keys) - 1})

    def _derive(self, policy, rng: random.Random) -> Architecture:
        from workbench.errors import DerivationFailed

        last: Exception | None = None
        for _ in range(20):  # rare dead ends in grammar spaces: re-derive with fresh roll-outs
            try:
                return self.space.derive(policy, rng)
            except DerivationFailed as exc:
                last = exc
        raise DerivationFailed(f"searcher mcts: no valid derivation in 20 attempts ({last})")

    def observe(self, arch: Architecture, result: Result) -> None:
        stack = self.pending.get(arch.hash)
        if stack:
            for key in stack.pop(0):
                self.virtual[key] -= 1
                if self.virtual[key] <= 0:
                    del self.virtual[key]
            if not stack:
                del self.pending[arch.hash]
        values = signed_values(result, self.objectives) if result.ok else None
        if values is not None:
            self.lo = [min(a, v) for a, v in zip(self.lo, values)]
            self.hi = [max(a, v) for a, v in zip(self.hi, values)]
        for key in self._keys(arch):
            entry = self.stats.setdefault(key, [0, 0, [0.0] * len(self.objectives)])
            entry[0] += 1
            if values is None:
                entry[1] += 1
            else:
                entry[2] = [s + v for s, v in zip(entry[2], values)]

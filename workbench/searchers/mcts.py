"""Monte-Carlo tree search over decision paths, with statistics shared across prefixes (RAVE).

A tree node is a prefix of the derivation: the sequence of ``(path, choice)`` tokens met so far.
Because derivation is define-by-run, a node's children are whatever options the space offers at
the next decision point given that prefix, so option sets that change with shapes need no special
care. Plain UCT learns nothing about a child until it has visited it, which at 100 evaluations in
a tree of depth 6 x branching 5 is almost never. So every token also keeps *all-moves-as-first*
statistics shared by every prefix: the mean reward of every told architecture that made that
decision, wherever it sits (Gelly & Silver's RAVE with the root as reference). A child's score is

    score = (1 - b) * Q(child) + b * A(token) + c * sqrt(ln(N(parent) + 1) / (N(child) + 1)),
    b = sqrt(k / (3 * N(child) + k))          (the RAVE schedule; k = ``rave_k``)

so the shared statistic ``A`` decides while a node has few visits and its own mean ``Q`` takes
over as they grow. Below the tree the roll-out (``rollout=rave``) is not random either: each
decision goes to the token, among those some told architecture made, with the highest
``A + c * sqrt(ln(n_path + 1) / (n_token + 1))`` (ties at random; where no told architecture
decided the path, the space's own probabilities), so every evaluation teaches every later ask.
``rollout=elite`` instead follows the best told architecture through the node where the descent
left the tree, each decision mutated with probability ``deviate``. The default,
``rollout=surrogate``, descends ``rollouts`` times with random roll-outs below the tree and
proposes the one a Gaussian process on the told results (the ``surrogate`` searcher's model, on
its encoding) gives the highest expected improvement -- a surrogate roll-out policy; the
first 5 asks and any ask whose roll-outs are all known fall back to ``rave``. Rewards are *percentile ranks* among the told results (0 =
worst, 1 = best; failures 0), recomputed as results arrive, so the exploration constant means the
same on any metric and one very bad result does not flatten the differences among good ones.
Several objectives: the mean of the per-objective percentiles.

Each tell adds one node (the first prefix of the architecture not yet in the tree) and counts the
architecture in every node of its prefix and every token it contains. Pending proposals hold a
*virtual loss* (a visit with reward 0) along their prefix, so parallel workers spread over
branches. An ask that would repeat a told or pending architecture is re-derived, leaving the tree
one level earlier each time and rolling out from the space's own probabilities (at most
``retries`` times). With ``bisect=k`` a point with more than k options is chosen by successive
halving of its option list (virtual binary nodes). State is a function of the told history, so
``recover`` (a tell for each) rebuilds it exactly.

>>> from workbench.spaces import get_space
>>> from storage.records import TrialState
>>> from workbench.searchers import Objective, Result, get_searcher
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("mcts", space, [Objective("acc")], seed=1)
>>> for _ in range(8):
...     p = s.ask()
...     s.tell(p.arch, Result(TrialState.COMPLETE, (p.arch.text.count("conv"),)))
>>> len(s.nodes[()]), len(s.nodes)   # root visits, tree nodes
(8, 9)
"""

from __future__ import annotations

import bisect as _bisect
import math
import random
from collections import Counter
from typing import Any

from workbench.architecture import Architecture, DecisionPoint
from workbench.errors import ConfigError, DerivationFailed
from workbench.searchers._common import record_points, signed_values
from workbench.searchers.base import Option, Proposal, Result, Searcher

Token = tuple  # (path, choice) or (path + "#", (lo, hi)) for a bisection step
Key = tuple  # a tuple of tokens; () is the root


class MCTS(Searcher):
    name = "mcts"
    summary = ("MCTS over decision paths: UCT blended with per-decision statistics shared by "
               "every prefix (RAVE), roll-outs screened by a GP surrogate, virtual loss.")
    options = {
        "exploration": Option(0.5, "Exploration constant c (rewards are percentile ranks in "
                                   "[0, 1]).", float),
        "rave_k": Option(100.0, "RAVE schedule constant k: a node's own mean gets half the weight "
                               "after about k visits (0: plain UCT).", float),
        "bisect": Option(0, "Bisect points with more options than this (0: never).", int),
        "rollout": Option("surrogate", "Below the tree: surrogate (random roll-outs screened by a "
                                       "GP on the told results), rave (the best shared "
                                       "statistic), elite (the best architecture through the "
                                       "last tree node, mutated) or random (the space's own "
                                       "probabilities).", str),
        "deviate": Option(0.2, "Elite roll-out: probability of mutating each decision.", float),
        "backup": Option("mean", "Node value: mean or max of the rewards through it.", str),
        "rollouts": Option(64, "rollout=surrogate: descents screened by the surrogate per ask.",
                           int),
        "retries": Option(10, "Re-derivations when an ask repeats a told or pending "
                              "architecture.", int),
    }

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        o = self.opts
        if o["exploration"] < 0 or o["bisect"] < 0 or o["bisect"] == 1 or o["rave_k"] < 0 \
                or o["retries"] < 0:
            raise ConfigError(f"searcher mcts: expected exploration >= 0, rave_k >= 0, retries "
                              f">= 0 and bisect 0 or >= 2, found {o['exploration']}, "
                              f"{o['rave_k']}, {o['retries']}, {o['bisect']}")
        if o["rollout"] not in ("elite", "rave", "random", "surrogate") or o["rollouts"] < 1 or not 0 <= o["deviate"] <= 1 \
                or o["backup"] not in ("mean", "max"):
            raise ConfigError(f"searcher mcts: expected rollout elite, rave, random or surrogate, rollouts >= 1, deviate in "
                              f"[0, 1] and backup mean or max, found {o['rollout']!r}, "
                              f"{o['deviate']}, {o['backup']!r}")
        self.nodes: dict[Key, list[int]] = {(): []}  # tree node -> told indices through it
        self.amaf: dict[Token, list[int]] = {}  # token -> told indices that contain it
        self.path_n: Counter = Counter()  # path -> told architectures deciding it
        self.values: list[tuple[float, ...] | None] = []  # signed values per tell (None: failed)
        self.virtual: Counter = Counter()  # key or token -> pending proposals through it
        self.pending: dict[str, list[tuple[list[Key], list[Token]]]] = {}
        self.told: set[str] = set()
        self.choices: list[dict] = []  # decisions of each told architecture
        self.archs: list[Architecture] = []  # each told architecture, in order
        self._encoder: Any = None  # an Encoder, made on first use (imports numpy)
        self._rewards: list[float] = []

    # -- rewards ------------------------------------------------------------------------------
    def rewards(self) -> list[float]:
        """Percentile rank of each told result (mean over objectives; failures 0)."""
        if len(self._rewards) != len(self.values):
            m = len(self.objectives)
            ok = [v for v in self.values if v is not None]
            cols = [sorted(v[j] for v in ok) for j in range(m)]
            out = []
            for v in self.values:
                if v is None:
                    out.append(0.0)
                    continue
                parts = []
                for j, col in enumerate(cols):
                    if len(col) < 2:
                        parts.append(0.5)
                        continue
                    lo, hi = _bisect.bisect_left(col, v[j]), _bisect.bisect_right(col, v[j])
                    parts.append((lo + hi - 1) / 2 / (len(col) - 1))
                out.append(sum(parts) / m)
            self._rewards = out
        return self._rewards

    def _mean(self, members: list[int], rewards: list[float], prior: float = 0.5,
              weight: float = 0.0) -> float:
        total = sum(rewards[i] for i in members)
        n = len(members) + weight
        return (total + prior * weight) / n if n > 0 else prior

    # -- selection ----------------------------------------------------------------------------
    def _score(self, prefix: Key, token: Token, parent_n: int, rewards: list[float]) -> float:
        key = prefix + (token,)
        members = self.nodes.get(key, [])
        n = len(members) + self.virtual[key]
        k = self.opts["rave_k"]
        a_members = self.amaf.get(token, [])
        a = self._mean(a_members, rewards, weight=1.0)  # a prior of one 0.5 result
        if not n:
            q = a
        elif self.opts["backup"] == "max":
            q = max((rewards[i] for i in members), default=0.0) * len(members) / n
        else:
            q = sum(rewards[i] for i in members) / n  # virtual visits count as 0
        beta = math.sqrt(k / (3 * n + k)) if k > 0 else 0.0
        c = self.opts["exploration"]
        return (1 - beta) * q + beta * a + c * math.sqrt(math.log(parent_n + 1) / (n + 1))

    def _rollout_score(self, token: Token, path: str, rewards: list[float]) -> float:
        members = self.amaf.get(token, [])
        n = len(members) + self.virtual[token]
        a = self._mean(members, rewards, weight=1.0)
        c = self.opts["exploration"]
        return a + c * math.sqrt(math.log(self.path_n[path] + 1) / (n + 1))

    def _argmax(self, tokens: list[Token], scores: list[float], rng: random.Random) -> Token:
        top = max(scores)
        best = [t for t, s in zip(tokens, scores) if s >= top - 1e-12]
        return best[0] if len(best) == 1 else rng.choice(best)

    def _pick(self, prefix: Key, tokens: list[Token], weights: list[float], in_tree: bool,
              random_rollout: bool, rng: random.Random) -> Token:
        rewards = self.rewards()
        if in_tree:
            parent_n = len(self.nodes.get(prefix, [])) + self.virtual[prefix]
            return self._argmax(tokens, [self._score(prefix, t, parent_n, rewards)
                                         for t in tokens], rng)
        if random_rollout or self.opts["rollout"] == "random":
            return rng.choices(tokens, weights=weights if sum(weights) > 0 else None)[0]
        path = tokens[0][0]
        seen = [t for t in tokens if t in self.amaf]
        if not seen:  # nothing known here: the space's own probabilities (in recursive grammars
            # a uniform or optimistic choice can make derivations explode)
            return rng.choices(tokens, weights=weights if sum(weights) > 0 else None)[0]
        return self._argmax(seen, [self._rollout_score(t, path, rewards) for t in seen], rng)

    # -- tokens -------------------------------------------------------------------------------
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

    def _walk(self, arch: Architecture) -> tuple[list[Key], list[Token]]:
        """Prefixes of ``arch`` in the tree plus the first one that is not; all its tokens."""
        keys: list[Key] = [()]
        tokens: list[Token] = []
        key: Key = ()
        growing = True
        for point, choice in record_points(self.space, arch):
            if point.continuous or not point.options:
                growing = False  # a continuous choice has no finite children: the tree ends
                continue
            if len(point.options) == 1:
                continue  # a forced choice is no decision: no token (as in the descent)
            for t in self._tokens(point, choice):
                tokens.append(t)
                if growing:
                    key = key + (t,)
                    keys.append(key)
                    growing = key in self.nodes
        return keys, tokens

    # -- ask / tell ---------------------------------------------------------------------------
    def propose(self, rng: random.Random) -> Proposal:
        arch: Architecture | None = None
        info: dict = {}
        ok = [i for i, v in enumerate(self.values) if v is not None]
        if self.opts["rollout"] == "surrogate" and len(ok) >= 5:
            arch, info = self._surrogate_rollout(rng, ok)
        attempt = 0
        if arch is None:
            depth = None
            for attempt in range(self.opts["retries"] + 1):
                arch, depth = self._descend(rng, attempt, depth)
                if arch.hash not in self.told and arch.hash not in self.pending:
                    break
        assert arch is not None
        keys, tokens = self._walk(arch)
        for x in keys + tokens:
            self.virtual[x] += 1
        self.pending.setdefault(arch.hash, []).append((keys, tokens))
        return Proposal(arch, info={"tree_depth": len(keys) - 1, "attempts": attempt + 1, **info})

    def _surrogate_rollout(self, rng: random.Random, ok: list[int]):
        """``rollouts`` descents with random roll-outs below the tree; the surrogate's GP (fitted
        on the told results, see :mod:`workbench.searchers.surrogate`) picks the one with the
        highest expected improvement."""
        import numpy as np

        from workbench.searchers.surrogate import _GP, expected_improvement

        cands: dict[str, Architecture] = {}
        for _ in range(self.opts["rollouts"]):
            arch, _ = self._descend(rng, 0, None, random_rollout=True)
            if arch.hash not in self.told and arch.hash not in self.pending:
                cands.setdefault(arch.hash, arch)
        if not cands:
            return None, {}
        if self._encoder is None:
            from workbench.searchers.encoding import Encoder

            self._encoder = Encoder(self.space)
        rewards = self.rewards()
        X = self._encoder.fit([self.archs[i] for i in ok])
        gp = _GP.fit(X, np.asarray([rewards[i] for i in ok]))
        pool = list(cands.values())
        mean, sd = gp.predict(self._encoder.transform(pool))
        best = float(gp.z.max())
        scores = [expected_improvement(m, s_, best) for m, s_ in zip(mean, sd)]
        k = max(range(len(pool)), key=lambda i: (scores[i], mean[i], -i))
        return pool[k], {"screened": len(pool)}

    def _descend(self, rng: random.Random, attempt: int, first_depth: int | None,
                 random_rollout: bool = False):
        """One derivation; attempt ``j > 0`` leaves the tree ``j`` tokens earlier than the first
        attempt did and rolls out from the space's own probabilities."""
        limit = None if not attempt else max(0, (first_depth or 0) - attempt)
        deviate = 1 - (1 - self.opts["deviate"]) ** (attempt + 1)  # retries deviate more
        prefix: list[Token] = []
        state: dict[str, Any] = {"in_tree": True, "depth": 0}

        def policy(point: DecisionPoint):
            # A path asked again means the space backtracked: forget what followed it.
            for j, t in enumerate(prefix):
                if t[0] in (point.path, point.path + "#"):
                    del prefix[j:]
                    state["in_tree"] = tuple(prefix) in self.nodes
                    break
            if point.continuous or not point.options:
                state["in_tree"] = False
                return None
            if len(point.options) == 1:
                return point.options[0]
            opts = list(point.options)
            weights = list(point.weights) if point.weights else [1.0] * len(opts)
            lo, hi = 0, len(opts)
            k = self.opts["bisect"]
            while True:
                if k and hi - lo > k:
                    mid = (lo + hi) // 2
                    tokens: list[Token] = [(point.path + "#", h) for h in ((lo, mid), (mid, hi))]
                    tw = [sum(weights[a:b]) for a, b in ((lo, mid), (mid, hi))]
                else:
                    tokens, tw = [(point.path, o) for o in opts[lo:hi]], weights[lo:hi]
                if limit is not None and len(prefix) >= limit and state["in_tree"]:
                    state["in_tree"] = False
                    state["ref"] = self._elite(tuple(prefix))
                inside = state["in_tree"]
                ref = state.get("ref")
                if not inside and ref is not None and ref.get(point.path) in opts[lo:hi]:
                    c = ref[point.path]
                    others = [o for o in opts[lo:hi] if o != c]
                    if others and rng.random() < deviate:
                        c = rng.choice(others)  # a mutation of the elite
                    prefix.append((point.path, c))
                    return c
                t = self._pick(tuple(prefix), tokens, tw, inside,
                               random_rollout or (limit is not None and state.get("ref") is None),
                               rng)
                if inside:
                    state["depth"] = len(prefix) + 1
                prefix.append(t)
                state["in_tree"] = inside and tuple(prefix) in self.nodes
                if inside and not state["in_tree"]:
                    state["ref"] = self._elite(tuple(prefix[:-1]))
                if t[0] == point.path:
                    return t[1]
                lo, hi = t[1]

        last: Exception | None = None
        for _ in range(20):  # rare dead ends in grammar spaces: re-derive
            try:
                prefix.clear()
                state.clear()
                state.update(in_tree=True, depth=0)
                arch = self.space.derive(policy, rng)
                return arch, state["depth"] if first_depth is None else first_depth
            except DerivationFailed as exc:
                last = exc
        raise DerivationFailed(f"searcher mcts: no valid derivation in 20 attempts ({last})")

    def _elite(self, key: Key) -> dict | None:
        """Decisions of the best told architecture through tree node ``key`` (elite roll-out)."""
        if self.opts["rollout"] != "elite":
            return None
        rewards = self.rewards()
        members = [i for i in self.nodes.get(key, []) if self.values[i] is not None]
        if not members:
            return None
        return self.choices[max(members, key=lambda i: (rewards[i], -i))]

    def observe(self, arch: Architecture, result: Result) -> None:
        stack = self.pending.get(arch.hash)
        if stack:
            keys, tokens = stack.pop(0)
            for x in keys + tokens:
                self.virtual[x] -= 1
                if self.virtual[x] <= 0:
                    del self.virtual[x]
            if not stack:
                del self.pending[arch.hash]
        if arch.hash in self.told:
            return  # a repeat: each architecture counts once
        i = len(self.values)
        self.values.append(signed_values(result, self.objectives) if result.ok else None)
        self.told.add(arch.hash)
        self.choices.append(arch.choices)
        self.archs.append(arch)
        keys, tokens = self._walk(arch)
        for key in keys:
            self.nodes.setdefault(key, []).append(i)
        for t in tokens:
            self.amaf.setdefault(t, []).append(i)
        for path in {t[0] for t in tokens}:
            self.path_n[path] += 1

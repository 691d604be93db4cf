"""Local search: first-improvement hill climbing over one-decision neighbours, random restarts.

A climb starts from the best of ``n_init`` samples of the space's own probabilities. The
*neighbours* of the current architecture are the space's mutation with each alternative of one
decision: for every decision point it meets and every other option there, the architecture that
makes that choice, keeps every other decision where it is still valid and samples what becomes
new below it (in a grammar a changed decision can open a new subtree). Continuous decisions get
``steps`` neighbours spread over their range. The neighbours are tried in a random order; the
first one that is better becomes the current architecture and its neighbourhood is tried next
(first improvement). When a whole neighbourhood brings no improvement the climb is at a local
optimum and a new climb starts from fresh samples (random restart).

Neighbours that were already evaluated are not proposed again: their result is known and is
compared at once. The neighbourhood's order and any new subtree are drawn from a generator
seeded by (seed, current architecture), so the state is a function of the told history and
``recover`` rebuilds it exactly. With several pending asks, each takes the next untried
neighbour. Several objectives: a neighbour improves when it dominates the current one.

>>> from workbench.spaces import get_space
>>> from storage.records import TrialState
>>> from workbench.searchers import Objective, Result, get_searcher
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("local", space, [Objective("acc")], seed=0, n_init=3)
>>> for _ in range(10):
...     p = s.ask()
...     s.tell(p.arch, Result(TrialState.COMPLETE, (p.arch.text.count("conv_3x3"),)))
>>> len(s.neighbours(s.current)), s.climbs >= 1   # 6 edges x 4 other ops
(24, True)
"""

from __future__ import annotations

import random

from workbench.architecture import Architecture, DecisionPoint
from workbench.errors import ConfigError, DerivationFailed, InvalidArchitecture
from workbench.pareto import dominates
from workbench.searchers._common import record_points, signed_values
from workbench.searchers.base import Option, Proposal, Result, Searcher


class LocalSearch(Searcher):
    name = "local"
    summary = ("Local search: first-improvement hill climbing over one-decision neighbours with "
               "random restarts (a strong baseline on cell benchmarks).")
    options = {
        "n_init": Option(10, "Samples a climb starts from (it climbs from the best).", int),
        "steps": Option(4, "Neighbours per continuous decision (values spread over its range).",
                        int),
    }

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        if self.opts["n_init"] < 1 or self.opts["steps"] < 1:
            raise ConfigError(f"searcher local: expected n_init >= 1 and steps >= 1, found "
                              f"{self.opts['n_init']}, {self.opts['steps']}")
        self.results: dict[str, Result] = {}  # first result of each told architecture
        self.pending: dict[str, int] = {}
        self.current: Architecture | None = None
        self.queue: list[Architecture] = []  # untried neighbours of current, in order
        self._hood: set[str] = set()  # hashes of current's neighbours
        self.starts: list[tuple[Architecture, Result]] = []  # samples of the climb to come
        self.climbs = 0

    # -- neighbourhood ------------------------------------------------------------------------
    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one decision away from ``arch``, in a seeded random order."""
        rng = random.Random(f"local:{self.seed}:{arch.hash}")
        old = arch.choices
        out: dict[str, Architecture] = {}
        for point, choice in record_points(self.space, arch):
            for alt in self._alternatives(point, choice):
                prefix = point.path + "/"

                def policy(p: DecisionPoint, target=point.path, alt=alt, prefix=prefix):
                    if p.path == target:
                        return alt
                    if p.path.startswith(prefix):
                        return None  # a new subtree below the changed decision: sampled
                    c = old.get(p.path)
                    if c is None:
                        return None
                    return c if p.continuous or c in p.options else None

                try:
                    child = self.space.derive(policy, rng)
                except (DerivationFailed, InvalidArchitecture):
                    continue
                if child.text != arch.text:
                    out.setdefault(child.hash, child)
        items = list(out.values())
        rng.shuffle(items)
        return items

    def _alternatives(self, point: DecisionPoint, choice) -> list:
        if point.continuous:
            assert point.low is not None and point.high is not None  # continuous: has bounds
            lo, hi, k = float(point.low), float(point.high), self.opts["steps"]
            vals = [lo + (hi - lo) * (j + 0.5) / k for j in range(k)]
            if point.integer:
                vals = sorted({int(round(v)) for v in vals})
            return [v for v in vals if v != choice]
        return [o for o in point.options if o != choice]

    # -- ask / tell ---------------------------------------------------------------------------
    def _better(self, a: Result, b: Result) -> bool:
        va, vb = signed_values(a, self.objectives), signed_values(b, self.objectives)
        if len(va) == 1:
            return va[0] > vb[0]
        return dominates(va, vb, ["maximize"] * len(va))

    def propose(self, rng: random.Random) -> Proposal:
        while self.queue:
            cand = self.queue.pop(0)
            if cand.hash in self.results or cand.hash in self.pending:
                continue  # told meanwhile (compared in observe) or being evaluated
            return self._propose(cand, {"origin": "neighbour", "climb": self.climbs},
                                 (self.current.hash,) if self.current else ())
        arch = self.space.sample(rng)
        for _ in range(20):  # a restart sample that was evaluated already teaches nothing
            if arch.hash not in self.results and arch.hash not in self.pending:
                break
            arch = self.space.sample(rng)
        return self._propose(arch, {"origin": "restart", "climb": self.climbs + 1}, ())

    def _propose(self, arch: Architecture, info: dict, parents: tuple) -> Proposal:
        self.pending[arch.hash] = self.pending.get(arch.hash, 0) + 1
        return Proposal(arch, parents, info)

    def observe(self, arch: Architecture, result: Result) -> None:
        if arch.hash in self.pending:
            self.pending[arch.hash] -= 1
            if not self.pending[arch.hash]:
                del self.pending[arch.hash]
        if arch.hash in self.results:
            return  # a repeat: its result is known already
        self.results[arch.hash] = result
        if not result.ok:
            return
        cur = self.results.get(self.current.hash) if self.current is not None else None
        if cur is not None and self._better(result, cur):
            self._move(arch)  # first improvement (a neighbour or any better told result)
            return
        if arch.hash in self._hood:
            return  # a neighbour that does not improve: the climb goes on
        # a sample of the (re)start to come: climb from the best of n_init once the current
        # climb is exhausted (the history alone says which results are neighbours)
        self.starts.append((arch, result))
        if len(self.starts) >= self.opts["n_init"] and (self.current is None or not self.queue):
            best = self.starts[0]
            for a, r in self.starts[1:]:
                if self._better(r, best[1]):
                    best = (a, r)
            self.starts = []
            self.climbs += 1
            self._move(best[0])

    def _move(self, arch: Architecture) -> None:
        """Make ``arch`` current; a known better neighbour moves the climb on at once."""
        while True:
            self.current = arch
            cur = self.results[arch.hash]
            self.queue = []
            better = None
            hood = self.neighbours(arch)
            self._hood = {n.hash for n in hood}
            for n in hood:
                r = self.results.get(n.hash)
                if r is None:
                    self.queue.append(n)
                elif r.ok and better is None and self._better(r, cur):
                    better = n
            if better is None:
                return
            arch = better

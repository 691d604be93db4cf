"""Regularised (aging) evolution (Real et al. 2019), optionally seeded and multi-objective.

The population holds the last ``population`` complete results. Each ask draws ``sample_size``
members at random, takes the best (for several objectives: NSGA-II's crowded comparison over
the population), and mutates it (``space.mutate``) -- or, with probability ``crossover_prob``,
crosses it with a second tournament winner (``space.crossover``). A mutant that repeats a told or
pending architecture is mutated again (at most ``retries`` times). Each tell appends the child
and retires the oldest member. Failed children are told but never join the population, so they
are never parents. Until the population is filled, asks sample the space at random -- or, with
``seeds``, propose each seed architecture once; a seed's result then fills ``population/len(seeds)``
slots, einspace's way of starting from strong baselines.

>>> from workbench.spaces import get_space
>>> from workbench.searchers import Objective, Result, get_searcher
>>> from storage import TrialState
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("evolution", space, [Objective("acc")], population=4, sample_size=2)
>>> for _ in range(6):
...     p = s.ask()
...     s.tell(p.arch, Result(TrialState.COMPLETE, (p.arch.text.count("conv"),)))
>>> len(p.parents), len(s.population)
(1, 4)
"""

from __future__ import annotations

import random
from collections import deque

from workbench.errors import ConfigError, DerivationFailed
from workbench.searchers._common import best_first
from workbench.searchers.base import Option, Proposal, Searcher


class Evolution(Searcher):
    name = "evolution"
    summary = ("Regularised (aging) evolution: tournament selection, mutation, optional crossover; "
               "NSGA-II-style selection for several objectives.")
    options = {
        "population": Option(20, "Population size (the last N complete results).", int),
        "sample_size": Option(5, "Tournament size: members drawn per selection.", int),
        "crossover_prob": Option(0.0, "Probability of crossing two tournament winners.", float,
                                 high=1),
        "seeds": Option("", "Comma-separated seed architecture names of the space (e.g. "
                            "resnet18,vit); each is evaluated once and fills the population.", str),
        "retries": Option(10, "Re-mutations when a child repeats a told or pending "
                              "architecture.", int),
    }

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        if self.opts["population"] < 1 or not 1 <= self.opts["sample_size"]:
            raise ConfigError(f"searcher evolution: expected population >= 1 and sample_size >= 1, "
                              f"found {self.opts['population']}, {self.opts['sample_size']}")
        if not 0.0 <= self.opts["crossover_prob"] <= 1.0:
            raise ConfigError(f"searcher evolution: option crossover_prob expected a value in "
                              f"[0, 1], found {self.opts['crossover_prob']}")
        names = [n.strip() for n in (self.opts["seeds"] or "").split(",") if n.strip()]
        self.seed_archs = [space.seed(n) for n in names]  # unknown names raise NotFound here
        self._seed_hashes = {a.hash for a in self.seed_archs}
        self._seeded: set[str] = set()
        self.population: deque = deque()
        self._known: set[str] = set()  # told architectures
        self._pending: dict[str, int] = {}  # asked, not yet told

    # -- selection -----------------------------------------------------------------------------
    def _tournament(self, rng: random.Random):
        members = list(self.population)
        picks = rng.sample(range(len(members)), min(self.opts["sample_size"], len(members)))
        if len(self.objectives) == 1:
            results = [members[i][1] for i in picks]
            return members[picks[best_first(results, self.objectives)[0]]][0]
        # several objectives: rank by the whole population's fronts and crowding
        order = best_first([r for _, r in members], self.objectives)
        position = {i: k for k, i in enumerate(order)}
        return members[min(picks, key=lambda i: position[i])][0]

    def propose(self, rng: random.Random) -> Proposal:
        return self._mark(self._propose(rng))

    def _propose(self, rng: random.Random) -> Proposal:
        i = self.n_asked
        if i < len(self.seed_archs):
            return Proposal(self.seed_archs[i], info={"origin": "seed"})
        if (not self.seed_archs and i < self.opts["population"]) or not self.population:
            return Proposal(self.space.sample(rng), info={"origin": "random"})
        parent = self._tournament(rng)
        if rng.random() < self.opts["crossover_prob"] and len(self.population) > 1:
            other = self._tournament(rng)
            if other.hash != parent.hash:
                try:
                    child = self.space.crossover(parent, other, rng)
                    return Proposal(child, (parent.hash, other.hash), {"origin": "crossover"})
                except DerivationFailed:
                    pass  # no compatible subtrees: fall back to mutation of the first parent
        child = None
        for _ in range(self.opts["retries"] + 1):
            try:
                child = self.space.mutate(parent, rng)
            except DerivationFailed:
                break
            if child.hash not in self._known and child.hash not in self._pending:
                break  # new; else mutate again (a repeat would only be told its old result)
        if child is None:
            return Proposal(self.space.sample(rng), info={"origin": "random"})
        return Proposal(child, (parent.hash,), {"origin": "mutation"})

    def _mark(self, proposal: Proposal) -> Proposal:
        h = proposal.arch.hash
        self._pending[h] = self._pending.get(h, 0) + 1
        return proposal

    # -- state ---------------------------------------------------------------------------------
    def observe(self, arch, result) -> None:
        if arch.hash in self._pending:
            self._pending[arch.hash] -= 1
            if not self._pending[arch.hash]:
                del self._pending[arch.hash]
        self._known.add(arch.hash)
        if not result.ok:
            return  # failed children are remembered in history only, never parents
        copies = 1
        if arch.hash in self._seed_hashes and arch.hash not in self._seeded:
            self._seeded.add(arch.hash)
            k = len(self.seed_archs)
            slot = [a.hash for a in self.seed_archs].index(arch.hash)
            pop = self.opts["population"]
            copies = max(1, pop // k + (1 if slot < pop % k else 0))
        for _ in range(copies):
            self.population.append((arch, result))
        while len(self.population) > self.opts["population"]:
            self.population.popleft()  # aging: the oldest member dies, whatever its fitness

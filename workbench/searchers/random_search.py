"""Random search: the space's own probabilities."""

from __future__ import annotations

import random

from workbench.searchers.base import Proposal, Searcher


class RandomSearch(Searcher):
    name = "random"
    versus_random = "the baseline: every other searcher is measured against it"
    summary = "Samples from the space's own probabilities (the baseline every searcher must beat)."
    options = {}

    def propose(self, rng: random.Random) -> Proposal:
        return Proposal(self.space.sample(rng))

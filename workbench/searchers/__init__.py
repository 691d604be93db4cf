"""Searchers, registered by name. ``get_searcher(name, space, objectives, seed=, **options)``."""

from __future__ import annotations

import importlib

from workbench.errors import NotFound
from workbench.searchers.base import Objective, Option, Proposal, Result, Searcher

__all__ = ["Objective", "Option", "Proposal", "Result", "Searcher", "SEARCHERS", "get_searcher",
           "list_searchers"]

# name -> "module:Class"; imported lazily so optional libraries load only when used.
SEARCHERS: dict[str, str] = {
    "random": "workbench.searchers.random_search:RandomSearch",
    "evolution": "workbench.searchers.evolution:Evolution",
    "mcts": "workbench.searchers.mcts:MCTS",
    "tpe": "workbench.searchers.bayes:TPE",
    "gp": "workbench.searchers.bayes:GP",
    "nsga2": "workbench.searchers.bayes:NSGA2",
    "nevergrad": "workbench.searchers.nevergrad_search:Nevergrad",
    "surrogate": "workbench.searchers.surrogate:Surrogate",
    "local": "workbench.searchers.local:LocalSearch",
    "rl": "workbench.searchers.rl:Reinforce",
    "sha": "workbench.searchers.multifidelity:SuccessiveHalving",
    "hyperband": "workbench.searchers.multifidelity:Hyperband",
}


def _load(name: str) -> type[Searcher]:
    if name not in SEARCHERS:
        raise NotFound(f"expected a searcher ({', '.join(sorted(SEARCHERS))}), found {name!r}")
    module, _, cls = SEARCHERS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def list_searchers() -> list[type[Searcher]]:
    return [_load(n) for n in sorted(SEARCHERS)]


def get_searcher(name: str, space, objectives, *, seed: int = 0, **options) -> Searcher:
    return _load(name)(space, list(objectives), seed=seed, **options)

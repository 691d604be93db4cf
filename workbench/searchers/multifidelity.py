"""Multi-fidelity search over epochs: successive halving and Hyperband around any searcher.

Rungs are budgets ``min_epochs * eta**k`` up to ``max_epochs``. New architectures come from the
*base* searcher and start at the lowest rung of their bracket; an architecture is promoted to the
next rung (``eta`` times more epochs) once it ranks in the top ``1/eta`` of the complete results of
its rung -- checked at every ask, so workers never wait for a rung to fill (the asynchronous rule
of ASHA, Li et al. 2020) -- and fewer than ``1/eta`` of the rung's complete results have moved up
so far. Only promoted candidates get more epochs. The base searcher is told each
architecture's result once, at the fidelity it started at, so everything it learns from was
measured alike. Several objectives rank rungs by NSGA-II's crowded comparison.

``sha`` has one bracket. ``hyperband`` has ``s_max + 1`` brackets, bracket ``s`` starting at rung
``s`` (fewer, longer first evaluations); new architectures cycle through the brackets in turn.

Every proposal carries ``info["fidelity"]`` (epochs) for the study to train with, and results
come back with ``Result.fidelity``. State is rebuilt from history alone: an architecture's bracket
is the rung of its first result, and a result one rung above an earlier one is its promotion.

>>> from workbench.spaces import get_space
>>> from workbench.searchers import Objective, Result, get_searcher
>>> from storage import TrialState
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("sha", space, [Objective("acc")], min_epochs=1, max_epochs=9, eta=3)
>>> s.rungs
[1, 3, 9]
>>> fids = []
>>> for i in range(8):
...     p = s.ask()
...     fids.append(p.info["fidelity"])
...     s.tell(p.arch, Result(TrialState.COMPLETE, (p.arch.text.count("conv") + i / 100,), fidelity=fids[-1]))
>>> fids
[1, 1, 1, 3, 1, 1, 1, 3]
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from workbench.architecture import Architecture
from workbench.errors import ConfigError
from workbench.searchers._common import best_first
from workbench.searchers.base import Option, Proposal, Result, Searcher


def parse_base_options(text: str) -> dict[str, str]:
    """``"population=10,sample_size=3"`` -> ``{"population": "10", "sample_size": "3"}``.

    >>> parse_base_options("a=1, b=x")
    {'a': '1', 'b': 'x'}
    """
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").replace(";", ",").split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"option base_options: expected key=value pairs separated by commas, "
                              f"found {part!r}")
        out[key.strip()] = value.strip()
    return out


class SuccessiveHalving(Searcher):
    name = "sha"
    versus_random = ("not meant to beat random per evaluation: it saves epochs (wall time) by "
                     "stopping weak trials early; its proposals are the base searcher's")
    summary = ("Successive halving over epochs (asynchronous promotion of the top 1/eta) around "
               "any base searcher.")
    options = {
        "base": Option("random", "Searcher that proposes new architectures.", str),
        "base_options": Option("", "Options of the base searcher as 'key=value,key=value' (e.g. "
                                   "'population=10,sample_size=3'); empty: its defaults.", str),
        "min_epochs": Option(1, "Epochs at the lowest rung.", int),
        "max_epochs": Option(27, "Epochs at the highest rung.", int),
        "eta": Option(3, "Promotion factor: the top 1/eta move up with eta times the epochs.", int),
    }
    hyperband = False

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        lo, hi, eta = self.opts["min_epochs"], self.opts["max_epochs"], self.opts["eta"]
        if lo < 1 or hi < lo or eta < 2:
            raise ConfigError(f"searcher {self.name}: expected 1 <= min_epochs <= max_epochs and "
                              f"eta >= 2, found min_epochs={lo}, max_epochs={hi}, eta={eta}")
        if self.opts["base"] in ("sha", "hyperband"):
            raise ConfigError(f"searcher {self.name}: option base expected a searcher that is not "
                              f"itself multi-fidelity, found {self.opts['base']!r}")
        from workbench.searchers import get_searcher

        self.base = get_searcher(self.opts["base"], space, objectives, seed=seed,
                                 **parse_base_options(self.opts["base_options"]))
        n = int(math.floor(math.log(hi / lo, eta) + 1e-9))
        self.rungs = [lo * eta**k for k in range(n + 1)]
        if self.rungs[-1] != hi:
            self.rungs.append(hi)  # the last rung always trains for max_epochs
        self.brackets = list(range(len(self.rungs) - 1 or 1)) if self.hyperband else [0]
        self.brackets_of: dict[str, set[int]] = {}  # arch hash -> brackets it started in
        self.rung_results: dict[tuple[int, int], list[tuple[Architecture, Result]]] = {}
        self.promoted: set[tuple[int, int, str]] = set()  # (bracket, rung, hash) moved up
        self.in_flight: set[tuple[int, int, str]] = set()  # promotions asked, not yet told
        self.n_new = 0

    # -- ask -----------------------------------------------------------------------------------
    def _promotable(self) -> tuple[Architecture, int, int] | None:
        eta = self.opts["eta"]
        for b in self.brackets:
            for r in range(len(self.rungs) - 2, b - 1, -1):  # highest rung first
                entries = self.rung_results.get((b, r), [])
                order = best_first([res for _, res in entries], self.objectives)
                quota = len(order) // eta  # at most 1/eta of the rung ever moves up
                moved = sum(1 for k in self.promoted | self.in_flight if k[:2] == (b, r))
                if moved >= quota:
                    continue
                for i in order[:quota]:
                    arch = entries[i][0]
                    key = (b, r, arch.hash)
                    if key not in self.promoted and key not in self.in_flight:
                        return arch, b, r
        return None

    def propose(self, rng: random.Random) -> Proposal:
        found = self._promotable()
        if found is not None:
            arch, b, r = found
            self.in_flight.add((b, r, arch.hash))
            return Proposal(arch, info={"fidelity": self.rungs[r + 1], "rung": r + 1,
                                        "bracket": b, "promoted_from": self.rungs[r]})
        b = self.brackets[self.n_new % len(self.brackets)]
        self.n_new += 1
        p = self.base.ask()
        return Proposal(p.arch, p.parents, {**p.info, "fidelity": self.rungs[b], "rung": b,
                                            "bracket": b, "base": self.base.name})

    # -- tell ----------------------------------------------------------------------------------
    def _rung_of(self, fidelity: float | None, default: int) -> int:
        if fidelity is None:
            return default
        best = min(range(len(self.rungs)), key=lambda k: abs(self.rungs[k] - float(fidelity)))
        if abs(self.rungs[best] - float(fidelity)) > 1e-9:
            raise ConfigError(f"searcher {self.name}: expected a result at one of the rungs "
                              f"{self.rungs} epochs, found fidelity {fidelity}")
        return best

    def _record(self, arch: Architecture, result: Result) -> bool:
        """Place a result in its rung; True when it is a new proposal (the base is told those).

        A result at rung r is a promotion when the architecture has a result at rung r-1 of a
        bracket starting below r and was not promoted from there yet; otherwise it is new, in the bracket starting at r. The rule
        reads history only, so a resumed search classifies exactly as the live one did (even
        when the base searcher proposes an architecture twice)."""
        r = self._rung_of(result.fidelity, self.brackets[0])
        starts = self.brackets_of.setdefault(arch.hash, set())
        below = [b for b in starts if b < r and (b, r - 1, arch.hash) not in self.promoted
                 and any(a.hash == arch.hash for a, _ in self.rung_results.get((b, r - 1), ()))]
        if below:
            b = max(below)
            self.promoted.add((b, r - 1, arch.hash))
            self.in_flight.discard((b, r - 1, arch.hash))
        else:
            b = r if r in self.brackets else self.brackets[-1]
            starts.add(b)
        entries = self.rung_results.setdefault((b, r), [])
        if not any(a.hash == arch.hash for a, _ in entries):
            entries.append((arch, result))
        return not below

    def observe(self, arch: Architecture, result: Result) -> None:
        if self._record(arch, result):
            self.base.tell(arch, result)

    def recover(self, history: Iterable[tuple[Architecture, Result]]) -> None:
        base_history = []
        for arch, result in history:
            self.history.append((arch, result))
            if self._record(arch, result):
                base_history.append((arch, result))
        self.base.recover(base_history)
        self.n_new = len(base_history)
        self.n_asked = len(self.history)


class Hyperband(SuccessiveHalving):
    name = "hyperband"
    versus_random = ("not meant to beat random per evaluation: it saves epochs (wall time) by "
                     "stopping weak trials early; its proposals are the base searcher's")
    summary = ("Hyperband over epochs: successive-halving brackets with different starting "
               "budgets, asynchronous promotion, around any base searcher.")
    options = SuccessiveHalving.options
    hyperband = True

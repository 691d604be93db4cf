"""The searcher protocol: ``ask() -> Proposal``, ``tell(arch, result)``, ``recover(history)``.

A searcher proposes architectures by deriving them through its own policy (random sampling,
mutation, MCTS statistics, an optuna trial, a nevergrad genome ...). State is rebuilt by replaying
stored history: ``recover(history)`` is ``tell`` for each pair, so resuming or distributing a
search needs no pickled state. Randomness: ask number ``i`` draws from ``self.rng_for(i)``, a
generator seeded by (seed, i), so a recovered searcher proposes what the live one would have.

>>> import random
>>> from workbench.spaces import get_space
>>> from workbench.searchers import get_searcher
>>> from storage.records import TrialState
>>> space = get_space("einspace", (3, 8, 8), 10)
>>> s = get_searcher("random", space, [Objective("val_accuracy", "maximize")], seed=0)
>>> p = s.ask()
>>> s.tell(p.arch, Result(TrialState.COMPLETE, (0.5,)))
>>> t = get_searcher("random", space, [Objective("val_accuracy", "maximize")], seed=0)
>>> t.recover([(p.arch, Result(TrialState.COMPLETE, (0.5,)))])
>>> t.ask().arch == s.ask().arch
True
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from storage.records import TrialState
from workbench.architecture import Architecture
from workbench.errors import ConfigError
from workbench.seeds import derive_rng


@dataclass(frozen=True)
class Objective:
    """One objective: a metric name and a direction."""

    name: str
    direction: str = "maximize"  # "maximize" | "minimize"

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ConfigError(f"objective {self.name}: expected direction maximize or minimize, "
                              f"found {self.direction!r}")

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "maximize" else a < b

    def signed(self, v: float) -> float:
        """The value as a quantity to maximise."""
        return v if self.direction == "maximize" else -v


@dataclass(frozen=True)
class Result:
    """What ``tell`` receives: the trial's state and its objective values in objective order."""

    state: TrialState  # a finished state: complete, failed or pruned
    values: tuple[float, ...] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    fidelity: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", TrialState(self.state))

    @property
    def ok(self) -> bool:
        return self.state is TrialState.COMPLETE and self.values is not None


@dataclass(frozen=True)
class Proposal:
    """What ``ask`` returns: an architecture, its parents (hashes) and searcher notes."""

    arch: Architecture
    parents: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Option:
    """A documented searcher option (shown by ``workbench searchers``).

    Numbers are checked on construction: an ``int`` option takes only whole numbers (``2.5`` is
    refused, not truncated), a ``float`` only finite ones, both within ``low..high`` (by default
    ``0..1,000,000``: a negative count or an absurd size is a mistake, not a setting).
    """

    default: Any
    help: str
    type: type = str
    low: float | None = None
    high: float | None = None

    def bounds(self) -> tuple[float, float]:
        return (0 if self.low is None else self.low, 1_000_000 if self.high is None else self.high)


class Searcher:
    """Base class. Subclasses set ``name``, ``options`` and implement :meth:`propose`."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    # what a user may expect against random search at ~100 evaluations (shown by `workbench
    # searchers` and the UI; the measured margins are in docs/searchers.md)
    versus_random: ClassVar[str] = "meant to beat random search within ~100 evaluations"
    options: ClassVar[dict[str, Option]] = {}
    multi_objective: ClassVar[bool] = True

    def __init__(self, space, objectives: list[Objective], *, seed: int = 0, **options: Any):
        self.space = space
        self.objectives = list(objectives)
        if not self.objectives:
            raise ConfigError(f"searcher {self.name}: expected at least one objective, found none")
        self.seed = int(seed)
        unknown = set(options) - set(self.options)
        if unknown:
            raise ConfigError(f"searcher {self.name}: unknown options {sorted(unknown)}; "
                              f"expected some of {sorted(self.options) or 'none'}")
        self.opts = {k: _coerce(self.name, k, o, options.get(k, o.default))
                     for k, o in self.options.items()}
        self.n_asked = 0
        self.history: list[tuple[Architecture, Result]] = []

    def rng_for(self, i: int) -> random.Random:
        return derive_rng(self.seed, self.name, i)

    def ask(self) -> Proposal:
        proposal = self.propose(self.rng_for(self.n_asked))
        self.n_asked += 1
        return proposal

    def propose(self, rng: random.Random) -> Proposal:
        raise NotImplementedError

    def tell(self, arch: Architecture, result: Result) -> None:
        self.history.append((arch, result))
        self.observe(arch, result)

    def observe(self, arch: Architecture, result: Result) -> None:
        """Update internal state (default: nothing beyond ``history``)."""

    def front(self) -> list[tuple[Architecture, Result]]:
        """The complete results no other complete result dominates (for one objective: the best
        ones), in the order they were told."""
        from workbench.pareto import non_dominated

        done = [(a, r) for a, r in self.history if r.ok]
        idx = non_dominated([r.values or () for _, r in done],
                            [o.direction for o in self.objectives])
        return [done[i] for i in idx]

    def recover(self, history: Iterable[tuple[Architecture, Result]]) -> None:
        """Rebuild state from stored tells, in order; asks resume after them (a study then sets
        ``n_asked`` from its stored ask numbers, which also count asks that were not told)."""
        for arch, result in history:
            self.tell(arch, result)
        self.n_asked = len(self.history)


def _coerce(searcher: str, key: str, opt: Option, value: Any) -> Any:
    """The option's value as its type, or one line saying what was expected.

    >>> o = Option(20, "population", int)
    >>> _coerce("evolution", "population", o, "8"), _coerce("evolution", "population", o, 8.0)
    (8, 8)
    >>> _coerce("evolution", "population", o, 2.5)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: searcher evolution: option population expected a whole number in 0..1000000, found 2.5
    >>> _coerce("mcts", "exploration", Option(0.7, "c", float), "inf")
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: searcher mcts: option exploration expected a finite number in 0..1000000, found 'inf'
    """
    if value is None:
        return value
    bad = ConfigError(f"searcher {searcher}: option {key} expected {_want(opt)}, found {value!r}")
    if opt.type is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "0", "true", "false", "yes", "no"):
            return value.lower() in ("1", "true", "yes")
        raise bad
    if opt.type in (int, float):
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise bad from None
        low, high = opt.bounds()
        if not math.isfinite(number) or not low <= number <= high:
            raise bad
        if opt.type is int:
            if number != int(number):
                raise bad
            return int(number)
        return number
    if isinstance(value, opt.type):
        return value
    try:
        return opt.type(value)
    except (TypeError, ValueError):
        raise bad from None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _want(opt: Option) -> str:
    low, high = opt.bounds()
    if opt.type is int:
        return f"a whole number in {int(low)}..{int(high)}"
    if opt.type is float:
        return f"a finite number in {_num(low)}..{_num(high)}"
    if opt.type is bool:
        return "true or false"
    return opt.type.__name__

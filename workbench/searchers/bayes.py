"""Bayesian optimisation with optuna samplers, driven define-by-run over decision paths.

Each decision point becomes one optuna parameter: ``trial.suggest_categorical(name, options)``
(continuous ranges: ``suggest_float``/``suggest_int``). optuna needs a fixed choice set per
parameter name, but in a define-by-run space the options at a path can change with the shapes
upstream. The parameter is therefore named ``path@digest`` with ``digest`` a hash of the option
set: points offering the same choices share statistics, points offering different choices are
different parameters, and optuna only models what is comparable. Points with a single option are
not parameters (nothing to learn). Wide, shape-dependent spaces thus fragment into many sparse
parameters -- an honest consequence, documented in docs/searchers.md.

**Repeats.** An architecture enters optuna once, with its first result: a repeated tell closes
the repeat's trial as FAIL. An ask whose architecture was told already (or is pending) asks the
sampler again, up to ``retries`` times, then falls back to the space's own sampling; so TPE,
whose proposals on NB201 were 73 % repeats, keeps finding new cells.

State is the history, nothing else. Every proposal enters the in-memory study as a RUNNING trial
whose parameters are recorded by replaying the architecture through a recording policy (TPE's
constant liar sees pending asks); the trial optuna sampled from is scratch, closed as FAIL, since
a backtracking derivation may have thrown some of its answers away. A tell finishes the RUNNING
trial (failed results: ``TrialState.FAIL``); ``recover(history)`` adds the same trials with
``optuna.trial.create_trial``. The sampler is re-created for every ask, seeded from the ask's
generator, so no sampler cache makes a resumed search differ from a live one.

What optuna cannot model is left to the space's own probabilities (the policy answers ``None``):
every decision during the first ``n_startup_trials`` (NSGA-II: the first generation), and any
parameter that no told trial contains yet. optuna's own fallback would be uniform over the
options, which in a recursive grammar like einspace makes derivations explode in size. For NSGA-II the generation of each told trial is computed from the
history with optuna's own rule and stored in the trial's system attributes.

>>> from workbench.spaces import get_space
>>> from workbench.searchers import Objective, Result, get_searcher
>>> from storage import TrialState
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("tpe", space, [Objective("acc")], seed=0, n_startup_trials=3)
>>> for _ in range(5):
...     p = s.ask()
...     s.tell(p.arch, Result(TrialState.COMPLETE, (p.arch.text.count("conv"),)))
>>> sorted(s.trials[0].params)[0]
'root/edge_1_0@fa9d46'
"""

from __future__ import annotations

import random
import warnings
from typing import Any, ClassVar

from workbench.architecture import Architecture, DecisionPoint
from workbench.errors import ConfigError, DerivationFailed
from workbench.searchers._common import derived_seed, option_digest, record_points
from workbench.searchers.base import Option, Proposal, Result, Searcher


def _optuna():
    import optuna

    # optuna logs every finished trial (INFO) and every scratch trial closed as FAIL (WARNING).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def param_name(point: DecisionPoint) -> str:
    """``path@digest``: the optuna parameter for this path *and* this option set."""
    return f"{point.path}@{option_digest(point)}"


def _bounds(point: DecisionPoint) -> tuple[float, float]:
    """``(low, high)`` of a continuous point, as given."""
    assert point.low is not None and point.high is not None, f"{point.path}: no bounds"
    return point.low, point.high


def distribution(point: DecisionPoint):
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if point.continuous:
        low, high = _bounds(point)
        if point.integer:
            return IntDistribution(int(low), int(high), log=point.log)
        return FloatDistribution(float(low), float(high), log=point.log)
    return CategoricalDistribution(list(point.options))


class _OptunaSearcher(Searcher):
    """Shared ask/tell over an in-memory study built from history; subclasses give the sampler."""

    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        self.trials: list[Any] = []  # FrozenTrials of told results, in order (as recovered)
        self.pending: dict[str, list[int]] = {}  # arch hash -> numbers of RUNNING study trials
        self._generations: list[int] = []
        self._known: set[str] = set()  # parameter names some told trial contains
        self._told: set[str] = set()  # hashes of told architectures (each enters optuna once)
        self._study = None

    @property
    def study(self):
        """The in-memory study: told trials, pending ones (RUNNING) and scratch ones (FAIL)."""
        if self._study is None:
            optuna = _optuna()
            self._study = optuna.create_study(directions=[o.direction for o in self.objectives])
        return self._study

    def make_sampler(self, seed: int):
        raise NotImplementedError

    def _params(self, arch: Architecture) -> tuple[dict, dict]:
        params, dists = {}, {}
        for point, choice in record_points(self.space, arch):
            if point.continuous or len(point.options) > 1:
                name = param_name(point)
                params[name], dists[name] = choice, distribution(point)
        return params, dists

    def startup(self) -> int:
        """Trials told before optuna models anything (they sample the space's own probabilities)."""
        return int(self.opts.get("n_startup_trials", 0))

    def propose(self, rng: random.Random) -> Proposal:
        optuna = _optuna()
        known = self._known
        modelling = len(self.trials) >= self.startup()
        study = self.study
        fail = optuna.trial.TrialState.FAIL
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings, once per ask
            study.sampler = self.make_sampler(derived_seed(rng))  # seeded per ask: replayable
            arch = None
            dead_ends = repeats = 0
            while dead_ends < 3:
                # a fresh trial per attempt: a trial repeats its cached answers, so retrying a
                # dead end with the same trial would fail the same way
                trial = study.ask()

                def policy(point: DecisionPoint, trial=trial):
                    if not modelling or (not point.continuous and len(point.options) <= 1):
                        return None
                    name = param_name(point)
                    if name not in known:
                        return None  # never observed: nothing to model, use the space's prior
                    if point.continuous:
                        low, high = _bounds(point)
                        if point.integer:
                            return trial.suggest_int(name, int(low), int(high), log=point.log)
                        return trial.suggest_float(name, low, high, log=point.log)
                    return trial.suggest_categorical(name, list(point.options))

                try:
                    arch = self.space.derive(policy, rng)
                except DerivationFailed:
                    dead_ends += 1
                    continue
                finally:
                    # The asked trial is scratch: it may hold answers a backtracking derivation
                    # threw away. It is closed as FAIL (which no sampler learns from) and the
                    # architecture enters as its own trial, with exactly its recorded decisions.
                    study.tell(trial, state=fail)
                if self._is_repeat(arch) and repeats < self.opts.get("retries", 10):
                    repeats += 1  # known already: ask the sampler again (its generator moved on)
                    arch = None
                    continue
                break
            if arch is None:
                # optuna keeps suggesting combinations the space rejects as a whole (e.g. a cell
                # whose output is unreachable): propose from the space's own probabilities
                arch, modelling = self.space.sample(rng), False
            for _ in range(20):
                if not self._is_repeat(arch):
                    break
                arch, modelling = self.space.sample(rng), False  # still a repeat: leave it
            params, dists = self._params(arch)
            study.add_trial(optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING, params=params, distributions=dists))
        number = len(study.get_trials(deepcopy=False)) - 1
        self.pending.setdefault(arch.hash, []).append(number)
        return Proposal(arch, info={"optuna_params": len(params), "modelled": modelling,
                                    "repeats_skipped": repeats})

    def _is_repeat(self, arch: Architecture) -> bool:
        return arch.hash in self._told or arch.hash in self.pending

    def observe(self, arch: Architecture, result: Result) -> None:
        optuna = _optuna()
        if arch.hash in self._told:
            # told before: optuna learns each architecture once; its RUNNING trial (if this
            # searcher asked it again) is closed as FAIL, which no sampler learns from
            numbers = self.pending.get(arch.hash)
            if numbers:
                number = numbers.pop(0)
                if not numbers:
                    del self.pending[arch.hash]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    self.study.tell(number, state=optuna.trial.TrialState.FAIL)
            return
        self._told.add(arch.hash)
        params, dists = self._params(arch)
        attrs = self._system_attrs(result)
        state = optuna.trial.TrialState.COMPLETE if result.ok else optuna.trial.TrialState.FAIL
        values = list(result.values) if result.ok and result.values is not None else None
        frozen = optuna.trial.create_trial(state=state, values=values, params=params,
                                           distributions=dists, system_attrs=attrs)
        study = self.study
        numbers = self.pending.get(arch.hash)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if numbers:  # asked here: finish its RUNNING trial (TPE's constant liar saw it)
                number = numbers.pop(0)
                if not numbers:
                    del self.pending[arch.hash]
                trial_id = study.get_trials(deepcopy=False)[number]._trial_id
                for key, value in attrs.items():
                    study._storage.set_trial_system_attr(trial_id, key, value)
                study.tell(number, values, state=state)
            else:  # recovery, or a result this searcher did not ask for
                study.add_trial(frozen)
        self.trials.append(frozen)
        self._known.update(params)

    def _system_attrs(self, result: Result) -> dict:
        return {}


class TPE(_OptunaSearcher):
    name = "tpe"
    summary = ("optuna's TPE sampler (multi-objective TPE for several objectives), define-by-run "
               "over decision paths.")
    options = {
        "multivariate": Option(False, "Model parameters jointly (multivariate TPE, grouped by "
                                      "the decision paths that co-occur).", bool),
        "n_startup_trials": Option(10, "Random trials before TPE starts modelling.", int),
        "retries": Option(10, "Re-asks when a proposal repeats a told or pending architecture.",
                          int),
    }

    def make_sampler(self, seed: int):
        optuna = _optuna()
        mv = bool(self.opts["multivariate"])
        return optuna.samplers.TPESampler(seed=seed, multivariate=mv, group=mv,
                                          n_startup_trials=self.opts["n_startup_trials"])


class GP(_OptunaSearcher):
    name = "gp"
    versus_random = ("meant to beat random search within ~100 evaluations; each ask refits a GP "
                     "(~0.1 s at 100 trials on a 2-core CPU)")
    summary = "optuna's Gaussian-process sampler (GPSampler), define-by-run over decision paths."
    options = {
        "n_startup_trials": Option(10, "Random trials before the GP starts modelling.", int),
        "deterministic": Option(False, "Treat the objective as noise-free.", bool),
        "retries": Option(1, "Re-asks when a proposal repeats a told or pending architecture "
                             "(each costs a full GP ask).", int),
    }

    def make_sampler(self, seed: int):
        optuna = _optuna()
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.opts["n_startup_trials"],
                                         deterministic_objective=self.opts["deterministic"],
                                         warn_independent_sampling=False)


class NSGA2(_OptunaSearcher):
    name = "nsga2"
    summary = "optuna's NSGA-II sampler (genetic, for one or several objectives)."
    options = {
        "population_size": Option(20, "Individuals per generation (at least 2).", int),
        "crossover_prob": Option(0.9, "Probability of crossover when making a child.", float,
                                 high=1),
        "retries": Option(10, "Re-asks when a proposal repeats a told or pending architecture.",
                          int),
    }

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        if self.opts["population_size"] < 2 or not 0 <= self.opts["crossover_prob"] <= 1:
            raise ConfigError(f"searcher nsga2: expected population_size >= 2 and crossover_prob in "
                              f"[0, 1], found {self.opts['population_size']}, "
                              f"{self.opts['crossover_prob']}")

    def make_sampler(self, seed: int):
        optuna = _optuna()
        return optuna.samplers.NSGAIISampler(seed=seed,
                                             population_size=self.opts["population_size"],
                                             crossover_prob=self.opts["crossover_prob"])

    def startup(self) -> int:
        return self.opts["population_size"]  # generation 0 samples the space's own probabilities

    def _system_attrs(self, result: Result) -> dict:
        # optuna's rule (BaseGASampler.get_trial_generation): a trial joins the newest generation
        # until that generation has population_size complete members.
        gens = [g for g, t in zip(self._generations, self.trials) if t.state.name == "COMPLETE"]
        top = max(gens, default=0)
        generation = top if gens.count(top) < self.opts["population_size"] else top + 1
        self._generations.append(generation)
        return {"NSGAIISampler:generation": generation}

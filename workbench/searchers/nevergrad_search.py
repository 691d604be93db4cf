"""nevergrad's optimisers over a fixed-length genome of reals, consumed decision by decision.

The genome is unbounded reals (nevergrad's optimisers are tuned for that space and start from
N(0, 1)); each gene ``x`` is squashed to ``u = Phi(x)`` in (0, 1) by the standard normal CDF, so an
N(0, 1) start is uniform over the options. Gene ``k`` answers the ``k``-th decision point met during
derivation: the index ``floor(u * n)`` among the ``n`` valid options, or ``u`` scaled into a
continuous range.
Points past the end of the genome fall back to the space's own sampling with the ask's generator.
Because options are filtered by shape before the genome is read, every genome decodes to a valid
architecture; the price is that a gene's meaning depends on the decisions before it.

Recovery: ``recover(history)`` re-asks the (seeded) optimiser once per stored trial and tells it
that candidate when it decodes to the stored architecture -- which it does when the history came
from this searcher with one trial at a time. An architecture the optimiser did not ask (a seed, a
trial of another searcher, or a different ask/tell interleaving) is told as a genome rebuilt from
its decisions: each gene at the centre of its option's interval (``Phi^-1`` of it). Several objectives use
nevergrad's multi-objective mode (a list of losses; ``optimizer.pareto_front()``). Failures are
told as a penalty: one more than the worst loss seen so far, per objective.

>>> from workbench.spaces import get_space
>>> from workbench.searchers import Objective, Result, get_searcher
>>> from storage import TrialState
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("nevergrad", space, [Objective("acc")], optimizer="DE", genome_length=8)
>>> p = s.ask()
>>> len(p.info["genome"])      # one gene per decision point met
6
>>> s.tell(p.arch, Result(TrialState.COMPLETE, (1.0,)))
"""

from __future__ import annotations

import math
import random
import warnings
from statistics import NormalDist

from workbench.architecture import Architecture, DecisionPoint
from workbench.errors import ConfigError, DerivationFailed
from workbench.searchers._common import record_points, signed_values
from workbench.searchers.base import Option, Proposal, Result, Searcher

SUGGESTED = ("NGOpt", "DE", "TwoPointsDE", "CMA", "PSO", "OnePlusOne", "RandomSearch")


_NORMAL = NormalDist()


def _patch_metamodel() -> None:
    """Let nevergrad's meta-model step fail the way nevergrad expects, under numpy >= 2.4.

    nevergrad 1.0.12's ``learn_on_k_best`` calls ``float()`` on the one-element array a
    scikit-learn model predicts; numpy 2.4 made that a ``TypeError``, which escaped from NGOpt
    once its archive was large enough (budget 100 on NB201: the 14th ask). nevergrad already
    catches its own ``MetaModelFailure`` there and asks the underlying optimiser instead; this
    wrapper turns that one ``TypeError`` into it, so NGOpt and the MetaModel optimisers run
    (without the meta-model step) instead of crashing the search. Idempotent.
    """
    from nevergrad.optimization import optimizerlib
    from nevergrad.optimization.metamodel import MetaModelFailure

    original = optimizerlib.learn_on_k_best
    if getattr(original, "_workbench_patched", False):
        return

    def learn_on_k_best(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except TypeError as e:
            if "0-dimensional" not in str(e):
                raise
            raise MetaModelFailure(f"numpy scalar conversion: {e}") from e

    learn_on_k_best._workbench_patched = True  # type: ignore[attr-defined]
    optimizerlib.learn_on_k_best = learn_on_k_best


def _bounds(point: DecisionPoint) -> tuple[float, float]:
    """``(low, high)`` of a continuous point."""
    assert point.low is not None and point.high is not None, f"{point.path}: no bounds"
    return float(point.low), float(point.high)


def decode_gene(point: DecisionPoint, gene: float):
    """The choice a (real, unbounded) gene makes at a point.

    >>> p = DecisionPoint("x", ("a", "b", "c"))
    >>> decode_gene(p, -3.0), decode_gene(p, 0.0), decode_gene(p, 3.0)
    ('a', 'b', 'c')
    >>> decode_gene(p, encode_choice(p, "c"))
    'c'
    """
    g = min(max(_NORMAL.cdf(float(gene)), 0.0), 1.0)
    if point.continuous:
        lo, hi = _bounds(point)
        x = math.exp(math.log(lo) + g * (math.log(hi) - math.log(lo))) if point.log \
            else lo + g * (hi - lo)
        return min(max(int(round(x)), int(lo)), int(hi)) if point.integer else x
    return point.options[min(int(g * len(point.options)), len(point.options) - 1)]


def encode_choice(point: DecisionPoint, choice) -> float:
    """A gene that decodes to ``choice``: ``Phi^-1`` of the centre of its interval."""
    if point.continuous:
        lo, hi = _bounds(point)
        if hi == lo:
            u = 0.5
        elif point.log:
            u = (math.log(float(choice)) - math.log(lo)) / (math.log(hi) - math.log(lo))
        else:
            u = (float(choice) - lo) / (hi - lo)
    else:
        u = (point.options.index(choice) + 0.5) / len(point.options)
    return _NORMAL.inv_cdf(min(max(u, 1e-9), 1 - 1e-9))


class Nevergrad(Searcher):
    name = "nevergrad"
    summary = "Any nevergrad optimiser (NGOpt, DE, CMA, PSO ...) over a genome of decision genes."
    options = {
        "optimizer": Option("auto", "nevergrad optimiser name (NGOpt, DE, TwoPointsDE, CMA, PSO, "
                                    "OnePlusOne, ...); auto: NGOpt for one objective, "
                                    "TwoPointsDE for several.", str),
        "genome_length": Option(0, "Genes in the genome; decisions past it are sampled (0: "
                                   "the space's number of decisions where that is fixed, else "
                                   "twice the most seen in 32 samples, at most 512).", int),
        "budget": Option(1000, "Evaluation budget hint given to the optimiser (NGOpt uses it to "
                               "pick an algorithm).", int),
        "num_workers": Option(4, "Parallel asks the optimiser plans for.", int),
    }

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        import nevergrad as ng

        _patch_metamodel()
        import numpy as np

        if self.opts["optimizer"] == "auto":
            # measured on NB201 at 50 seeds: NGOpt is the best single-objective default (+0.33
            # over random at 100) but no better than random on two objectives (HV 0.776 vs
            # 0.778 at 200), where TwoPointsDE reaches 0.845 (docs/searchers.md)
            self.opts["optimizer"] = "NGOpt" if len(self.objectives) == 1 else "TwoPointsDE"
        name = self.opts["optimizer"]
        if name not in ng.optimizers.registry:
            close = [n for n in ng.optimizers.registry if n.lower().startswith(name[:3].lower())]
            raise ConfigError(f"searcher nevergrad: option optimizer expected a nevergrad optimiser "
                              f"such as {', '.join(SUGGESTED)}{' or ' if close else ''}"
                              f"{', '.join(close[:5])}, found {name!r}")
        if self.opts["genome_length"] == 0:
            self.opts["genome_length"] = auto_genome_length(space)
        if self.opts["genome_length"] < 1 or self.opts["budget"] < 1 or self.opts["num_workers"] < 1:
            raise ConfigError("searcher nevergrad: expected genome_length, budget and num_workers "
                              f">= 1, found {self.opts['genome_length']}, {self.opts['budget']}, "
                              f"{self.opts['num_workers']}")
        param = ng.p.Array(shape=(self.opts["genome_length"],))
        param.random_state = np.random.RandomState(self.seed)  # every draw from the seed
        cls = ng.optimizers.registry[name]
        if not getattr(cls, "recast", False):
            try:
                self.optimizer = cls(parametrization=param, budget=self.opts["budget"],
                                     num_workers=self.opts["num_workers"])
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"searcher nevergrad: optimizer {name!r} rejected the settings "
                                  f"(budget {self.opts['budget']}, num_workers "
                                  f"{self.opts['num_workers']}): {exc}") from None
        if getattr(cls, "recast", False) or _runs_in_thread(self.optimizer):
            raise ConfigError(f"searcher nevergrad: optimizer {name!r} wraps a scipy-style "
                              f"optimiser in a background thread, which cannot be told "
                              f"architectures it did not ask (needed to resume); expected one "
                              f"of {', '.join(SUGGESTED)}")
        self.pending: dict[str, list] = {}
        self._worst: list[float] | None = None

    def propose(self, rng: random.Random) -> Proposal:
        for _ in range(5):
            cand = self.optimizer.ask()
            genome = [float(g) for g in cand.value]
            if not all(math.isfinite(g) for g in genome):
                # some optimisers (OnePlusOne on several objectives) diverge to NaN genes: a
                # bad genome, told as a failure, not a crash of the search
                self._tell(cand, self._penalty())
                continue
            used: list[float] = []

            def policy(point: DecisionPoint, genome=genome, used=used):
                k = len(used)
                if k >= len(genome) or (not point.options and not point.continuous):
                    return None  # past the genome: the space's own sampling, with the ask's rng
                used.append(genome[k])
                return decode_gene(point, genome[k])

            try:
                arch = self.space.derive(policy, rng)
            except DerivationFailed:
                # the genome decodes to something the space rejects as a whole: that is a bad
                # genome, so the optimiser learns it as a failure and is asked again
                self._tell(cand, self._penalty())
                continue
            self.pending.setdefault(arch.hash, []).append(cand)
            return Proposal(arch, info={"genome": [round(g, 6) for g in used]})
        # still nothing valid: the space's own sampling; told later as a not-asked genome
        return Proposal(self.space.sample(rng), info={"genome": None})

    def _penalty(self):
        worst = self._worst or [0.0] * len(self.objectives)
        loss = [w + 1.0 for w in worst]
        return loss[0] if len(loss) == 1 else loss

    def _loss(self, result: Result) -> list[float]:
        if result.ok:
            loss = [-v for v in signed_values(result, self.objectives)]
            self._worst = loss if self._worst is None else [max(a, b) for a, b in
                                                            zip(self._worst, loss)]
            return loss
        penalty = self._penalty()
        return [penalty] if len(self.objectives) == 1 else penalty

    def genome_of(self, arch: Architecture) -> list[float]:
        """A genome that decodes to ``arch`` (genes at the centre of each choice's interval)."""
        genes = [encode_choice(p, c) for p, c in record_points(self.space, arch)]
        genes = genes[: self.opts["genome_length"]]
        return genes + [0.0] * (self.opts["genome_length"] - len(genes))

    def observe(self, arch: Architecture, result: Result) -> None:
        import numpy as np

        stack = self.pending.get(arch.hash)
        if stack:
            cand = stack.pop(0)
            if not stack:
                del self.pending[arch.hash]
        else:
            cand = self.optimizer.parametrization.spawn_child(
                new_value=np.asarray(self.genome_of(arch)))
        loss = self._loss(result)
        self._tell(cand, loss[0] if len(loss) == 1 else loss)

    def _tell(self, cand, loss) -> None:
        from nevergrad.common.errors import BadLossWarning

        with warnings.catch_warnings():
            # a failure's penalty, or nevergrad's own inf for a point worse than its
            # multi-objective bounds, is expected here, not something a user should see
            warnings.simplefilter("ignore", BadLossWarning)
            self.optimizer.tell(cand, loss)

    def recover(self, history) -> None:
        """Re-ask the seeded optimiser once per stored trial (see the module docstring)."""
        for arch, result in history:
            proposal = self.ask()
            if proposal.arch.hash != arch.hash:
                # not what this optimiser asked at this point: forget the re-ask (it stays
                # asked-but-untold inside nevergrad, like a lost worker) and tell arch as not-asked
                stack = self.pending[proposal.arch.hash]
                stack.pop()
                if not stack:
                    del self.pending[proposal.arch.hash]
            self.tell(arch, result)
        self.n_asked = len(self.history)


def auto_genome_length(space, samples: int = 32) -> int:
    """The number of decision points when every sample of ``space`` (from a fixed generator)
    meets the same number, else twice the most met, between 8 and 512.

    >>> from workbench.spaces import get_space
    >>> auto_genome_length(get_space("nb201", (3, 8, 8), 10))
    6
    """
    rng = random.Random(0)
    counts = set()
    for _ in range(samples):
        try:
            counts.add(len(record_points(space, space.sample(rng))))
        except DerivationFailed:
            continue
    if len(counts) == 1:
        return max(counts.pop(), 1)
    return min(max(2 * max(counts, default=256), 8), 512)


def _runs_in_thread(optimizer) -> bool:
    """True if the optimiser (or the one NGOpt delegates to) is a thread-based recast."""
    from nevergrad.optimization.recaster import RecastOptimizer

    seen = 0
    opt = optimizer
    while opt is not None and seen < 10:
        if isinstance(opt, RecastOptimizer):
            return True
        opt = getattr(opt, "optim", None)
        seen += 1
    return False

"""Surrogate-assisted search (BANANAS-style) for any space, shape-dependent ones included.

After ``n_init`` proposals from the space's own probabilities, every ask

1. encodes every told architecture (:mod:`workbench.searchers.encoding`: decision one-hots by path,
   operation and shape-path n-grams of the derivation tree) and fits a predictor with a mean and
   an uncertainty: a Gaussian process over the encoding (``model=gp``, the default: squared-
   exponential kernel, length scale and noise chosen by marginal likelihood on a small grid,
   targets as normal scores of their ranks so one very bad result does not dominate; a few
   milliseconds at 100 trials), or, from scikit-learn, a random forest (``rf``, the spread of its
   trees), extremely randomised trees (``extra``) or an ensemble of gradient-boosted trees on
   bootstrap resamples (``gbt``), seeded from the ask's generator (0.1-0.5 s per ask);
2. screens ``candidates`` unseen architectures: mutations (one or two ``space.mutate`` steps) of
   the ``parents`` best told ones, and, for a share ``fresh``, new samples of the space;
3. proposes the candidate with the best acquisition: expected improvement (``ei``, default),
   a confidence bound (``lcb``: mean + 1 sd, the bound on the loss), independent Thompson
   sampling (``its``: one draw per candidate from N(mean, sd)) or the mean alone (``mean``).

Several objectives (``multi=hvi``, the default): one model per objective, and the candidate whose
optimistic prediction (mean + 1 sd of each, in the models' rank-normal scale) adds the most
hypervolume to the front of the told results, over a reference point at the told median of each
objective, is proposed. The parents to mutate are the told front's members first (then the
next non-dominated ranks), ties broken by a ParEGO scalarisation (the augmented Tchebycheff scalarisation of the objectives, each
normalised to [0, 1] over the told results, with weights drawn on the simplex per ask), so
successive asks explore different parts of the front; ``multi=parego`` also *selects* by that
scalarisation. Failed results are told to the model as the worst value seen.

**Rank quality.** Each refit also fits the same model without the last ``holdout`` told results
and measures how it ranks them (a rolling hold-out): ``Proposal.info`` carries
``surrogate_kendall_tau`` and ``surrogate_spearman`` (None until there are ``holdout`` results
beyond ``n_init``), with ``surrogate_holdout`` (how many), ``surrogate_mean`` and
``surrogate_sd`` (the prediction for the proposal) and ``screened`` (candidates scored); the study
stores ``info`` with the trial, so these can be plotted per trial.

State is the told history: the model is refitted from it on each ask, so ``recover`` is ``tell``
for each result and a resumed search proposes what the live one would have.

>>> from workbench.spaces import get_space
>>> from storage.records import TrialState
>>> from workbench.searchers import Objective, Result, get_searcher
>>> space = get_space("nb201", (3, 8, 8), 10)
>>> s = get_searcher("surrogate", space, [Objective("acc")], seed=0, n_init=4, candidates=20)
>>> for _ in range(8):
...     p = s.ask()
...     s.tell(p.arch, Result(TrialState.COMPLETE, (p.arch.text.count("conv"),)))
>>> p.info["screened"] > 0 and p.info["surrogate_sd"] >= 0
True
"""

from __future__ import annotations

import random
from statistics import NormalDist

from workbench.architecture import Architecture
from workbench.errors import ConfigError, DerivationFailed
from workbench.searchers._common import derived_seed, signed_values
from workbench.searchers.base import Option, Proposal, Result, Searcher
from workbench.searchers.encoding import Encoder

MODELS = ("gp", "rf", "extra", "gbt")
ACQUISITIONS = ("ei", "lcb", "its", "mean")
_N = NormalDist()


def expected_improvement(mean: float, sd: float, best: float) -> float:
    """EI of a normal prediction over ``best`` (maximisation).

    >>> round(expected_improvement(1.0, 0.0, 0.5), 3), round(expected_improvement(0.0, 1.0, 0.0), 3)
    (0.5, 0.399)
    """
    if sd <= 1e-12:
        return max(mean - best, 0.0)
    z = (mean - best) / sd
    return sd * (z * _N.cdf(z) + _N.pdf(z))


def rank_quality(predicted, actual) -> tuple[float | None, float | None]:
    """Kendall tau and Spearman rho of predictions against actual values (None if undefined).

    >>> rank_quality([1, 2, 3, 4], [10, 20, 30, 25])
    (0.667, 0.8)
    """
    import numpy as np
    from scipy.stats import kendalltau, spearmanr

    if len(actual) < 3 or np.ptp(predicted) == 0 or np.ptp(actual) == 0:
        return None, None
    tau = kendalltau(predicted, actual).statistic
    rho = spearmanr(predicted, actual).statistic
    return round(float(tau), 3), round(float(rho), 3)


class Surrogate(Searcher):
    name = "surrogate"
    summary = ("Model-based (BANANAS-style): a GP (or tree-ensemble) predictor on a path/n-gram "
               "encoding (optionally with a zero-cost proxy) screens mutations and samples per "
               "evaluation (EI); hypervolume improvement or ParEGO for several objectives; "
               "reports its rank quality on a rolling hold-out.")
    options = {
        "n_init": Option(10, "Proposals from the space's own probabilities before modelling.",
                         int),
        "candidates": Option(100, "Unseen candidates screened per ask.", int),
        "fresh": Option(0.2, "Share of candidates that are new samples (the rest mutate the "
                             "best told architectures).", float),
        "parents": Option(10, "How many of the best told architectures are mutated.", int),
        "model": Option("gp", f"Predictor: {', '.join(MODELS)}.", str),
        "trees": Option(100, "rf/extra: trees per forest; gbt: estimators per member (5).", int),
        "acquisition": Option("ei", f"Acquisition: {', '.join(ACQUISITIONS)}.", str),
        "multi": Option("hvi", "Several objectives: hvi (a model per objective, the largest "
                               "hypervolume improvement of the optimistic prediction) or parego "
                               "(a random scalarisation per ask).", str),
        "holdout": Option(10, "Latest told results held out to measure rank quality "
                              "(0: do not measure).", int),
        "proxy": Option("", "A zero-cost proxy (synflow, naswot, snip, grad_norm) added to the "
                            "encoding as a feature, scored at initialisation on a synthetic "
                            "batch, once per architecture ('': none; costs its compute time "
                            "per new candidate).", str),
        "proxy_weight": Option(2.0, "Scale of the standardised proxy feature against the "
                                    "encoding's one-hots.", float, low=0.0, high=100.0),
    }

    def __init__(self, space, objectives, *, seed: int = 0, **options):
        super().__init__(space, objectives, seed=seed, **options)
        o = self.opts
        if o["model"] not in MODELS or o["acquisition"] not in ACQUISITIONS \
                or o["multi"] not in ("hvi", "parego"):
            raise ConfigError(f"searcher surrogate: expected model in {MODELS}, acquisition in "
                              f"{ACQUISITIONS} and multi hvi or parego, found {o['model']!r}, "
                              f"{o['acquisition']!r}, {o['multi']!r}")
        if o["n_init"] < 2 or o["candidates"] < 1 or o["parents"] < 1 or o["trees"] < 1 \
                or o["holdout"] < 0 or not 0 <= o["fresh"] <= 1:
            raise ConfigError(f"searcher surrogate: expected n_init >= 2, candidates, parents, "
                              f"trees >= 1, holdout >= 0 and fresh in [0, 1], found "
                              f"{o['n_init']}, {o['candidates']}, {o['parents']}, {o['trees']}, "
                              f"{o['holdout']}, {o['fresh']}")
        from workbench.proxies import PROXIES

        if o["proxy"] and o["proxy"] not in PROXIES:
            raise ConfigError(f"searcher surrogate: option proxy: expected '' or one of "
                              f"{', '.join(PROXIES)}, found {o['proxy']!r}")
        self.encoder = Encoder(space)
        self._proxy: dict[str, float] = {}  # arch hash -> proxy score (NaN: not finite)
        self._proxy_scale = (0.0, 1.0)  # (mean, sd) of the told scores at the last fit
        self._proxy_batch = None
        self.told: dict[str, int] = {}  # arch hash -> index in data
        self.data: list[tuple[Architecture, Result]] = []  # distinct told architectures
        self.pending: dict[str, int] = {}

    # -- model --------------------------------------------------------------------------------
    def _targets(self, rng: random.Random) -> list[float]:
        """One value to maximise per told result (ParEGO scalarisation for several)."""
        m = len(self.objectives)
        vals = [signed_values(r, self.objectives) if r.ok else None for _, r in self.data]
        ok = [v for v in vals if v is not None]
        if m == 1:
            worst = min((v[0] for v in ok), default=0.0)
            return [v[0] if v is not None else worst for v in vals]
        lo = [min(v[j] for v in ok) for j in range(m)]
        hi = [max(v[j] for v in ok) for j in range(m)]
        w = [rng.expovariate(1.0) for _ in range(m)]
        w = [x / sum(w) for x in w]
        out: list[float | None] = []
        for v in vals:
            if v is None:
                out.append(None)
                continue
            gap = [w[j] * (hi[j] - v[j]) / (hi[j] - lo[j]) if hi[j] > lo[j] else 0.0
                   for j in range(m)]
            out.append(-(max(gap) + 0.05 * sum(gap)))  # augmented Tchebycheff, negated
        worst = min((x for x in out if x is not None), default=0.0)
        return [x if x is not None else worst for x in out]

    def _fit(self, X, y, seed: int):
        import numpy as np

        if self.opts["model"] == "gp":
            return _GP.fit(X, y)
        from sklearn.ensemble import (
            ExtraTreesRegressor,
            GradientBoostingRegressor,
            RandomForestRegressor,
        )

        n = self.opts["trees"]
        if self.opts["model"] == "gbt":
            rs = np.random.RandomState(seed)
            members = []
            for k in range(5):
                idx = rs.randint(0, len(y), len(y))
                g = GradientBoostingRegressor(n_estimators=n, max_depth=3, learning_rate=0.1,
                                              subsample=1.0, random_state=seed + k)
                members.append(g.fit(X[idx], y[idx]))
            return members
        cls = RandomForestRegressor if self.opts["model"] == "rf" else ExtraTreesRegressor
        model = cls(n_estimators=n, max_features=0.5, min_samples_leaf=1, random_state=seed,
                    n_jobs=1)
        return list(model.fit(X, y).estimators_)

    @staticmethod
    def _predict(members, X):
        import numpy as np

        if isinstance(members, _GP):
            return members.predict(X)

        preds = np.stack([m.predict(X) for m in members])
        return preds.mean(axis=0), preds.std(axis=0)

    # -- encoding (+ the proxy feature) ------------------------------------------------------
    def _encode(self, archs: list[Architecture], fit: bool = False):
        """The encoding of ``archs`` (``fit``: of the told ones the model is fitted on, which
        also fixes the columns and the proxy's scaling), with the proxy column when asked."""
        import numpy as np

        X = self.encoder.fit(archs) if fit else self.encoder.transform(archs)
        if not self.opts["proxy"]:
            return X
        raw = np.asarray([self._proxy_of(a) for a in archs], dtype=float)
        if fit:
            ok = raw[np.isfinite(raw)]
            self._proxy_scale = ((float(ok.mean()), float(ok.std()) or 1.0) if len(ok)
                                 else (0.0, 1.0))
        mu, sd = self._proxy_scale
        z = np.where(np.isfinite(raw), (raw - mu) / sd, -3.0)  # not computable: very low
        return np.hstack([X, self.opts["proxy_weight"] * z[:, None]])

    def _proxy_of(self, arch: Architecture) -> float:
        """The proxy's score of an architecture at initialisation (seeded; cached by hash)."""
        if arch.hash not in self._proxy:
            from workbench.proxies import compute_proxies, synthetic_batch
            from workbench.seeds import derive_seed

            seed = derive_seed(self.seed, "surrogate-proxy")
            if self._proxy_batch is None:
                self._proxy_batch = synthetic_batch(arch.input_shape, arch.num_classes, 16,
                                                    seed=seed)
            name = self.opts["proxy"]
            value = compute_proxies(arch, self._proxy_batch, seed=seed, which=(name,))[name]
            self._proxy[arch.hash] = value if value == value and abs(value) != float("inf") \
                else float("nan")
        return self._proxy[arch.hash]

    # -- candidates ---------------------------------------------------------------------------
    def _candidates(self, rng: random.Random, y: list[float]) -> list[Architecture]:
        archs = [a for a, _ in self.data]
        front_rank = [0] * len(archs)
        if len(self.objectives) > 1:  # several objectives: mutate along the whole told front
            from workbench.pareto import nondominated_ranks

            ok = [i for i, (_, r) in enumerate(self.data) if r.ok]
            ranks = nondominated_ranks([tuple(signed_values(self.data[i][1], self.objectives))
                                        for i in ok], ["maximize"] * len(self.objectives))
            front_rank = [len(archs)] * len(archs)
            for i, k in zip(ok, ranks):
                front_rank[i] = k
        order = sorted(range(len(archs)), key=lambda i: (front_rank[i], -y[i], i))
        tops, seen = [], set()
        for i in order:
            if archs[i].hash not in seen:
                seen.add(archs[i].hash)
                tops.append(archs[i])
            if len(tops) >= self.opts["parents"]:
                break
        n = self.opts["candidates"]
        n_fresh = round(n * self.opts["fresh"])
        out: dict[str, Architecture] = {}
        tries = 0
        while len(out) < n and tries < 4 * n:
            tries += 1
            try:
                if len(out) < n - n_fresh and tops:
                    a = self.space.mutate(rng.choice(tops), rng)
                    if rng.random() < 0.5:
                        a = self.space.mutate(a, rng)
                else:
                    a = self.space.sample(rng)
            except DerivationFailed:
                continue
            if a.hash not in self.told and a.hash not in self.pending:
                out.setdefault(a.hash, a)
        return list(out.values())

    # -- ask / tell ---------------------------------------------------------------------------
    def propose(self, rng: random.Random) -> Proposal:
        ok_count = sum(1 for _, r in self.data if r.ok)
        if len(self.data) < self.opts["n_init"] or ok_count < 2:
            return self._fresh(rng, {"origin": "random"})
        import numpy as np

        y = self._targets(rng)
        seed = derived_seed(rng)
        archs = [a for a, _ in self.data]
        info: dict = {"origin": "surrogate"}
        h = self.opts["holdout"]
        if h and len(archs) - h >= self.opts["n_init"]:
            Xh = self._encode(archs[:-h], fit=True)
            mh = self._fit(Xh, np.asarray(y[:-h]), seed)
            pred, _ = self._predict(mh, self._encode(archs[-h:]))
            tau, rho = rank_quality(pred, y[-h:])
            info.update(surrogate_kendall_tau=tau, surrogate_spearman=rho, surrogate_holdout=h)
        else:
            info.update(surrogate_kendall_tau=None, surrogate_spearman=None, surrogate_holdout=0)
        X = self._encode(archs, fit=True)
        members = self._fit(X, np.asarray(y), seed)
        cands = self._candidates(rng, y)
        if not cands:
            return self._fresh(rng, {"origin": "random", "screened": 0})
        if len(self.objectives) > 1 and self.opts["multi"] == "hvi":
            return self._propose_hvi(cands, archs, seed, info)
        mean, sd = self._predict(members, self._encode(cands))
        acq = self.opts["acquisition"]
        best = float(members.z.max()) if isinstance(members, _GP) else max(y)
        if acq == "ei":
            scores = [expected_improvement(m, s, best) for m, s in zip(mean, sd)]
        elif acq == "lcb":
            scores = list(mean + sd)
        elif acq == "its":
            scores = [rng.gauss(m, s) if s > 0 else m for m, s in zip(mean, sd)]
        else:
            scores = list(mean)
        k = max(range(len(cands)), key=lambda i: (scores[i], mean[i], -i))
        info.update(surrogate_mean=round(float(mean[k]), 6), surrogate_sd=round(float(sd[k]), 6),
                    screened=len(cands))
        return self._propose(cands[k], info)

    def _propose_hvi(self, cands, archs, seed: int, info: dict) -> Proposal:
        """Several objectives, ``multi=hvi``: one model per objective; the candidate whose
        optimistic prediction (mean + 1 sd per objective, in the models' rank-normal scale)
        adds the most hypervolume to the told front is proposed."""
        import numpy as np

        from workbench.pareto import hypervolume, non_dominated

        ok = [i for i, (_, r) in enumerate(self.data) if r.ok]
        vals = np.asarray([signed_values(self.data[i][1], self.objectives) for i in ok])
        X = self._encode([archs[i] for i in ok], fit=True)
        Xc = self._encode(cands)
        m = len(self.objectives)
        told_z, opt = [], []
        for j in range(m):
            model = self._fit(X, vals[:, j], seed + j)
            if isinstance(model, _GP):
                told_z.append(model.z)
            else:  # tree models predict in the values' own scale
                told_z.append(vals[:, j])
            mu, sd = self._predict(model, Xc)
            opt.append(mu + sd)
        told = np.stack(told_z, axis=1)
        pts = np.stack(opt, axis=1)
        dirs = ["maximize"] * m
        front = [tuple(told[i]) for i in non_dominated([tuple(r) for r in told], dirs)]
        # the reference point is the told median of each objective: only a point better than a
        # typical told architecture in every objective adds hypervolume. (With the reference
        # beyond the worst value, the many near-identical degenerate cells at one extreme of
        # the front -- NB201's empty cells: 10 % accuracy, the lowest latency -- spread apart
        # in rank scale and kept winning the acquisition.)
        ref = tuple(float(v) for v in np.median(told, axis=0))
        base = hypervolume(front, dirs, ref)
        gains = [hypervolume(front + [tuple(p)], dirs, ref) - base for p in pts]
        k = max(range(len(cands)), key=lambda i: (gains[i], float(pts[i].sum()), -i))
        info.update(surrogate_hvi=round(float(gains[k]), 6), screened=len(cands))
        return self._propose(cands[k], info)

    def _fresh(self, rng: random.Random, info: dict) -> Proposal:
        arch = self.space.sample(rng)
        for _ in range(20):  # steer away from repeats
            if arch.hash not in self.told and arch.hash not in self.pending:
                break
            arch = self.space.sample(rng)
        return self._propose(arch, info)

    def _propose(self, arch: Architecture, info: dict) -> Proposal:
        self.pending[arch.hash] = self.pending.get(arch.hash, 0) + 1
        return Proposal(arch, info=info)

    def observe(self, arch: Architecture, result: Result) -> None:
        if arch.hash in self.pending:
            self.pending[arch.hash] -= 1
            if not self.pending[arch.hash]:
                del self.pending[arch.hash]
        if arch.hash in self.told:
            return  # a repeat: the model learns each architecture once (its first result)
        self.told[arch.hash] = len(self.data)
        self.data.append((arch, result))


class _GP:
    """A small exact Gaussian process over encodings (numpy only): squared-exponential kernel on
    the feature vectors; targets are the normal scores of their ranks; length scale and noise
    are picked from a grid by the log marginal likelihood."""

    def __init__(self, X, alpha, L, ell2, mu, sd, z):
        self.X, self.alpha, self.L, self.ell2, self.mu, self.sd, self.z = \
            X, alpha, L, ell2, mu, sd, z

    @staticmethod
    def _d2(A, B):
        import numpy as np

        return np.maximum((A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T, 0.0)

    @classmethod
    def fit(cls, X, y):
        import numpy as np
        from scipy.linalg import cho_solve

        n = len(y)
        ranks = np.argsort(np.argsort(y, kind="stable"), kind="stable")
        z = np.array([_N.inv_cdf((r + 0.5) / n) for r in ranks])
        D = cls._d2(X, X)
        med = float(np.median(D[D > 0])) if (D > 0).any() else 1.0
        best = None
        for f in (0.25, 0.5, 1.0, 2.0, 4.0):
            ell2 = f * med
            K0 = np.exp(-D / (2 * ell2))
            for noise in (1e-2, 0.1, 0.3):
                try:
                    L = np.linalg.cholesky(K0 + noise * np.eye(n))
                except np.linalg.LinAlgError:
                    continue
                alpha = cho_solve((L, True), z)
                lml = -0.5 * z @ alpha - np.log(np.diag(L)).sum()
                if best is None or lml > best[0]:
                    best = (lml, L, alpha, ell2)
        _, L, alpha, ell2 = best
        return cls(X, alpha, L, ell2, float(np.mean(y)), float(np.std(y)) or 1.0, z)

    def predict(self, Xs):
        """Mean and sd in the rank-normal scale (what the acquisition compares against)."""
        import numpy as np
        from scipy.linalg import solve_triangular

        Ks = np.exp(-self._d2(Xs, self.X) / (2 * self.ell2))
        mean = Ks @ self.alpha
        v = solve_triangular(self.L, Ks.T, lower=True)
        var = np.maximum(1.0 - (v * v).sum(0), 1e-12)
        return mean, np.sqrt(var)

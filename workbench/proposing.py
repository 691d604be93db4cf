"""What a study's driver does with its searcher's proposals before it trains anything.

For each new evaluation :class:`Proposer` asks the searcher for one proposal, or with a
pre-filter (``--prefilter naswot:top0.25``) for ``ceil(1 / fraction)`` of them, and then:

* a proposal that repeats an existing trial (same architecture and fidelity) is logged in the
  repeats table and, when that trial is complete, told its result again; nothing is trained;
* every other proposal becomes a trial, stored with the searcher's ``Proposal.info``
  (:func:`storable_info`) and, when the driver computes proxies (a pre-filter or a proxy
  constraint), their values as metrics;
* a proposal that breaks a constraint (``max_params``, ``max_flops``, ``min_<proxy>``,
  ``max_<proxy>``) is recorded once as a failed trial with the reason, never trained;
* of the rest, the pre-filter trains only the best by its proxy; the others are recorded as
  ``pruned`` trials, the reason in their error, and told to the searcher as not ok, so its
  ask/tell sequence, and a resume (which replays it), stay exact.

The driver scores candidates on one minibatch of the study's task (a synthetic batch with a
custom evaluator) drawn once per driver with ``derive_seed(seed, "prefilter")``, weights from the
same seed: every candidate of a study meets the same data and the same draw.

>>> import tempfile, os
>>> from storage import Storage
>>> from workbench.study import StudyConfig, create_study, run_study
>>> db = Storage("sqlite:///" + os.path.join(tempfile.mkdtemp(), "p.db"))
>>> cfg = StudyConfig(space="mlp", task="digits", trials=2, executor="inline", seed=1,
...                   prefilter="synflow:top0.5", evaluator="tests.evaluators:param_score")
>>> _ = create_study(db, "demo", cfg)
>>> run_study(db, "demo").complete
2
>>> [t.state.value for t in db.trials("demo")]
['complete', 'pruned', 'complete', 'pruned']
>>> db.trials("demo")[1].error.startswith("pre-filter: synflow ")
True
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from typing import Any

from storage.errors import StorageError
from storage.jsondata import clean_json
from storage.records import TrialState
from workbench.architecture import Architecture
from workbench.errors import ConfigError
from workbench.proxies import PROXIES, WHY_NOT_FINITE, parse_prefilter, parse_proxies
from workbench.searchers import Proposal, Result

log = logging.getLogger(__name__)
MAX_INFO_BYTES = 64 * 1024  # JSON of one proposal's info stored with its trial
STATIC_LIMITS = {"max_params": "params_total", "max_flops": "flops"}  # key -> static metric
_CONSTRAINT = re.compile(r"^\s*([a-z_]+)\s*(<=|>=)\s*(\S+)\s*$")


def storable_info(info: Any, where: str) -> dict | None:
    """``info`` as JSON data to store with a trial, or ``None`` (nothing to store, or it could not
    be stored: not JSON data or over :data:`MAX_INFO_BYTES`, with a warning naming ``where``).

    >>> storable_info({"fidelity": 3, "surrogate_spearman": float("nan")}, "trial 0")
    {'fidelity': 3, 'surrogate_spearman': None}
    >>> storable_info({"blob": "x" * 70_000}, "trial 0") is None
    True
    """
    if not info:
        return None
    try:
        data = clean_json(dict(info), "info")
    except (StorageError, TypeError, ValueError) as exc:
        log.warning("%s: searcher info not stored: %s", where, exc)
        return None
    size = len(json.dumps(data))
    if size > MAX_INFO_BYTES:
        log.warning("%s: searcher info not stored: expected at most %s bytes of JSON, found %s",
                    where, f"{MAX_INFO_BYTES:,}", f"{size:,}")
        return None
    return data


# -- configuration -------------------------------------------------------------------------------
def parse_constraint(text: str) -> tuple[str, float]:
    """``--constraint`` ``naswot>=400`` -> ``("min_naswot", 400.0)``; ``PROXY<=X`` gives
    ``max_PROXY``, ``params<=N`` and ``flops<=N`` the static caps.

    >>> parse_constraint("naswot>=400"), parse_constraint("params<=5e4")
    (('min_naswot', 400.0), ('max_params', 50000))
    >>> parse_constraint("params>=10")
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: --constraint: expected PROXY>=X, PROXY<=X (PROXY one of synflow, naswot, snip, grad_norm), params<=N or flops<=N, found 'params>=10'
    """
    m = _CONSTRAINT.match(str(text))
    name, op, raw = m.groups() if m else ("", "", "")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    static = name in ("params", "flops") and op == "<="
    if not (static or name in PROXIES) or not math.isfinite(value):
        raise ConfigError(f"--constraint: expected PROXY>=X, PROXY<=X (PROXY one of "
                          f"{', '.join(PROXIES)}), params<=N or flops<=N, found {text!r}")
    if static:
        return f"max_{name}", int(value)
    return ("min_" if op == ">=" else "max_") + name, value


def proxy_limits(constraints: dict) -> list[tuple[str, str, float]]:
    """``(key, proxy, bound)`` of the constraints on proxies, in a fixed order."""
    return [(f"{side}_{p}", p, float(constraints[f"{side}_{p}"]))
            for p in PROXIES for side in ("min", "max") if f"{side}_{p}" in constraints]


def check_proposing(cfg: Any) -> None:
    """A study config's proxies, pre-filter and constraints, or a one-line ConfigError."""
    if isinstance(cfg.proxies, str) or tuple(parse_proxies(cfg.proxies)) != tuple(cfg.proxies):
        found = cfg.proxies if isinstance(cfg.proxies, str) else list(cfg.proxies)
        raise ConfigError(f"--proxies: expected a tuple of distinct names, found {found!r}")
    if cfg.prefilter is not None:
        parse_prefilter(cfg.prefilter)
    known = [*STATIC_LIMITS, *(f"{s}_{p}" for p in PROXIES for s in ("min", "max"))]
    unknown = sorted(set(cfg.constraints) - set(known))
    if unknown:
        raise ConfigError(f"constraints: expected max_params, max_flops, min_PROXY or max_PROXY "
                          f"(PROXY one of {', '.join(PROXIES)}), found {unknown[0]!r}")
    for key, value in cfg.constraints.items():
        if (not isinstance(value, (int, float)) or isinstance(value, bool)
                or not math.isfinite(value) or (key in STATIC_LIMITS and value <= 0)):
            want = "a positive number" if key in STATIC_LIMITS else "a finite number"
            raise ConfigError(f"constraint {key}: expected {want}, found {value!r}")


# -- the driver's side ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """A new proposal (no trial of its architecture and fidelity exists yet)."""

    proposal: Proposal
    ask_index: int
    fidelity: float | None


class Proposer:
    """The new-proposal half of a :class:`workbench.study.StudyRunner`'s loop (which owns the
    searcher, the storage, the counts and the launching)."""

    def __init__(self, runner: Any) -> None:
        self.r = runner
        cfg = runner.cfg
        self.spec = parse_prefilter(cfg.prefilter) if cfg.prefilter else None
        self.limits = proxy_limits(cfg.constraints)
        wanted = ([self.spec.proxy] if self.spec else []) + [p for _, p, _ in self.limits]
        self.scored = tuple(dict.fromkeys(wanted))  # proxies the driver computes
        self._batch: Any = None

    def pool_size(self) -> int:
        """Proposals asked per evaluation: ``ceil(1 / fraction)`` with a pre-filter, else 1."""
        return 1 if self.spec is None else max(1, math.ceil(1 / self.spec.fraction - 1e-9))

    def propose(self) -> bool:
        """One evaluation's proposals: repeats logged, violations and the pre-filter's losers
        recorded, the best launched. False when every proposal repeated an existing trial."""
        r = self.r
        pool: list[Candidate] = []
        again: list[tuple[int, int]] = []  # (pool index, ask) of a proposal repeated in the pool
        for _ in range(self.pool_size()):
            ask_index = r.searcher.n_asked
            proposal = r.searcher.ask()
            fidelity = proposal.info.get("fidelity")
            same = [i for i, c in enumerate(pool)
                    if (c.proposal.arch.hash, c.fidelity) == (proposal.arch.hash, fidelity)]
            if same:
                again.append((same[0], ask_index))
            elif not self._repeat(proposal.arch, fidelity, ask_index):
                pool.append(Candidate(proposal, ask_index, fidelity))
        if not pool:
            return False
        scores = [self._scores(c.proposal.arch) for c in pool]
        violations = [self._violation(c.proposal.arch, s) for c, s in zip(pool, scores)]
        ok = [i for i, v in enumerate(violations) if v is None]
        best = min(ok, key=lambda i: (-self._value(scores[i]), i)) if ok else None
        # the one to train is created running; the others are created in their final state with
        # their tell (one write each: a driver killed in between leaves no loser running, so a
        # resume never trains one)
        numbers: dict[int, int] = {}
        if best is not None:
            numbers[best] = self._create(pool[best], scores[best], TrialState.RUNNING)
        for i, c in enumerate(pool):
            if i == best:
                continue
            violation = violations[i]
            if violation:
                state, error = TrialState.FAILED, violation
            else:  # a loser of the pre-filter: there is a best
                assert best is not None
                state, error = TrialState.PRUNED, self._pruned(scores[i], scores[best],
                                                               numbers[best], len(ok))
            numbers[i] = self._finished(c, scores[i], state, error)
        for i, ask_index in again:  # the first of them is running or done: nothing to tell
            r.storage.add_repeat(r.name, numbers[i], ask_index=ask_index, tell_index=None)
        if best is not None:
            r._launch(numbers[best], pool[best].proposal.arch, pool[best].fidelity, scores[best])
        return True

    def _repeat(self, arch: Architecture, fidelity: float | None, ask_index: int) -> bool:
        """Log a proposal of an existing trial (told its result again when it is complete or
        failed); False when there is none. The same architecture is never trained twice, and
        one that failed is not trained again (its failure is its result;
        ``workbench.study.enqueue`` or the explorer's "Evaluate this" retries it by hand).
        Pruned ones are scored again: the pre-filter ranks within a pool."""
        r = self.r
        existing = r.storage.find_trial(r.name, arch.hash, fidelity, failed=True)
        if existing is None:
            return False
        from workbench.study import stored_result

        tell_index = None
        if existing.state.finished:  # told again: its result, or its failure
            tell_index = len(r.searcher.history)
        r.storage.add_repeat(r.name, existing.number, ask_index=ask_index, tell_index=tell_index)
        if tell_index is not None:
            r.searcher.tell(arch, stored_result(existing, r.cfg.objectives))
        return True

    def _create(self, c: Candidate, scores: dict, state: TrialState, error: str | None = None,
                tell_index: int | None = None) -> int:
        r, arch = self.r, c.proposal.arch
        parents = tuple(r.by_hash[h] for h in c.proposal.parents if h in r.by_hash)
        trial = r.storage.create_trial(
            r.name, arch_hash=arch.hash, arch_text=arch.text,
            arch_decisions=[[d.path, d.choice] for d in arch.decisions], space=arch.space,
            fidelity=c.fidelity, state=state, parent_numbers=parents, ask_index=c.ask_index,
            metrics=scores, error=error, tell_index=tell_index,
            info=storable_info(c.proposal.info, f"study {r.name} ask {c.ask_index}"))
        r.by_hash[arch.hash] = trial.number
        return trial.number

    def _finished(self, c: Candidate, scores: dict, state: TrialState, error: str) -> int:
        """Record a trial that is not trained, in one write, and tell the searcher (a not-ok
        result); its number."""
        r = self.r
        number = self._create(c, scores, state, error, tell_index=len(r.searcher.history))
        result = Result(state, None, clean_json(dict(scores), "metrics"), c.fidelity)
        r.searcher.tell(c.proposal.arch, result)
        r._count(number, c.proposal.arch, result)
        kind = "trial_pruned" if state is TrialState.PRUNED else "trial_finished"
        r.on_event(kind, r._event(number, state, error, result.metrics))
        return number

    # -- scores and limits ---------------------------------------------------------------------
    def batch(self) -> Any:
        """The driver's minibatch, built once: the study's task (with a custom evaluator, a
        synthetic batch of its input shape), drawn with ``derive_seed(seed, "prefilter")``."""
        if self._batch is None:
            from workbench.jobs import cached_task
            from workbench.proxies import BATCH_SIZE, synthetic_batch, task_batch
            from workbench.seeds import derive_seed

            c = self.r.cfg
            seed = derive_seed(c.seed, "prefilter")
            input_shape, num_classes = c.shape
            self._batch = (synthetic_batch(input_shape, num_classes, BATCH_SIZE, seed=seed)
                           if c.evaluator else
                           task_batch(cached_task(c.task, c.seed, c.task_options), BATCH_SIZE,
                                      seed=seed))
        return self._batch

    def _scores(self, arch: Architecture) -> dict[str, float | None]:
        if not self.scored:
            return {}
        from workbench.proxies import measure
        from workbench.seeds import derive_seed

        return measure(arch, self.batch(), derive_seed(self.r.cfg.seed, "prefilter"),
                       self.scored)

    def _value(self, scores: dict) -> float:
        value = scores.get(self.spec.proxy) if self.spec else None
        return -math.inf if value is None else float(value)

    def _pruned(self, scores: dict, best: dict, best_number: int, of: int) -> str:
        """``pre-filter: naswot 412.3 below the best of 4 (500.1, trial 17)``."""
        assert self.spec is not None
        p = self.spec.proxy
        value, top = scores.get(p), best.get(p)
        shown = "not finite" if value is None else f"{value:.4g}"
        word = "below" if value is None or top is None or value < top else "not above"
        top_shown = "not finite" if top is None else f"{top:.4g}"
        return f"pre-filter: {p} {shown} {word} the best of {of} ({top_shown}, trial {best_number})"

    def _violation(self, arch: Architecture, scores: dict) -> str | None:
        """Why ``arch`` must not be trained (a broken constraint, or a proxy objective the
        driver found not finite), or None."""
        limits = self.r.cfg.constraints
        static = [k for k in STATIC_LIMITS if k in limits]
        if static:
            from workbench.metrics import static_metrics

            m = static_metrics(arch)
            for key in static:
                metric = STATIC_LIMITS[key]
                if m[metric] > limits[key]:
                    return (f"constraint {key}={limits[key]:,} violated: found "
                            f"{metric.split('_')[0]} {m[metric]:,}")
        for key, proxy, bound in self.limits:
            value = scores.get(proxy)
            if value is None:
                return (f"constraint {key}={bound:g} violated: found no finite {proxy} "
                        f"({WHY_NOT_FINITE})")
            if (value < bound) if key.startswith("min_") else (value > bound):
                return f"constraint {key}={bound:g} violated: found {proxy} {value:.4g}"
        for o in self.r.cfg.objectives:
            if o.name in scores and scores[o.name] is None:
                return (f"objective {o.name}: expected a finite zero-cost proxy, found none for "
                        f"this architecture ({WHY_NOT_FINITE})")
        return None

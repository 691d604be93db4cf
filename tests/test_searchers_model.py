"""The searchers of issue 15 beyond the contract suite: surrogate (encoding, model, rank quality,
ParEGO), local search (neighbourhoods, first improvement, restarts), rl (REINFORCE updates),
repeat handling of the optuna searchers, nevergrad's genome length, and zero-cost proxies.

Architectures are scored by cheap deterministic functions (no training) except in the proxy
tests, which compile tiny NB201 networks (channels 4, one cell per stage, 8x8 inputs).
"""

from __future__ import annotations

import math
import random

import pytest

from storage.records import TrialState
from workbench.errors import ConfigError
from workbench.searchers import Objective, Result, get_searcher
from workbench.searchers.encoding import Encoder, features
from workbench.spaces import get_space

ONE = [Objective("score", "maximize")]
TWO = [Objective("score", "maximize"), Objective("size", "minimize")]


def conv3(arch) -> float:
    return float(arch.text.count("nor_conv_3x3"))


def drive(s, n, value=conv3):
    out = []
    for _ in range(n):
        p = s.ask()
        r = Result(TrialState.COMPLETE, (value(p.arch),))
        s.tell(p.arch, r)
        out.append((p, r))
    return out


@pytest.fixture(scope="module")
def nb201():
    return get_space("nb201", (3, 8, 8), 10)


# -- encoding and surrogate ----------------------------------------------------------------------
def test_encoding_tells_shapes_apart_in_einspace():
    space = get_space("einspace", (3, 16, 16), 10)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(6)]
    feats = [features(space, a) for a in archs]
    assert all(any(k.startswith("sh:") and "@" in k for k in f) for f in feats)
    assert all(any(k.startswith("d:") for k in f) for f in feats)
    enc = Encoder(space)
    X = enc.fit(archs[:4])
    Y = enc.transform(archs[4:])
    assert X.shape == (4, len(enc.vocab)) and Y.shape == (2, len(enc.vocab))


def test_surrogate_reports_rank_quality_and_beats_random(nb201):
    s = get_searcher("surrogate", nb201, ONE, seed=0, n_init=5, candidates=30, holdout=5)
    ps = drive(s, 25)
    late = ps[-1][0].info
    assert late["origin"] == "surrogate" and late["surrogate_holdout"] == 5
    assert -1 <= late["surrogate_kendall_tau"] <= 1 and -1 <= late["surrogate_spearman"] <= 1
    assert ps[0][0].info["origin"] == "random"
    rnd = drive(get_searcher("random", nb201, ONE, seed=0), 25)
    assert sum(r.values[0] for _, r in ps[-10:]) > sum(r.values[0] for _, r in rnd[-10:])
    assert len({p.arch.hash for p, _ in ps}) == 25  # never proposes a known architecture


@pytest.mark.parametrize("model", ["rf", "extra", "gbt"])
def test_surrogate_tree_models_are_seeded(nb201, model):
    runs = [[p.arch.text for p, _ in drive(get_searcher(
        "surrogate", nb201, ONE, seed=1, n_init=4, candidates=10, model=model, trees=5,
        holdout=0), 7)] for _ in range(2)]
    assert runs[0] == runs[1]


def test_surrogate_parego_scalarises_several_objectives(nb201):
    s = get_searcher("surrogate", nb201, TWO, seed=0, n_init=4, candidates=10)
    for _ in range(8):
        p = s.ask()
        s.tell(p.arch, Result(TrialState.COMPLETE, (conv3(p.arch), float(p.arch.text.count("none")))))
    y = s._targets(random.Random(0))
    assert len(y) == 8 and all(-1.06 <= v <= 0 for v in y)  # augmented Tchebycheff, negated


def test_surrogate_rejects_unknown_model(nb201):
    with pytest.raises(ConfigError, match=r"expected model in .*found 'svm'"):
        get_searcher("surrogate", nb201, ONE, model="svm")


def test_surrogate_proxy_feature_is_scored_once_per_architecture_and_seeded():
    from workbench.proxies import compute_proxies, synthetic_batch
    from workbench.seeds import derive_seed

    nb201 = get_space("nb201", (3, 8, 8), 10, channels=4, cells_per_stage=1)  # cheap to score

    def run():
        s = get_searcher("surrogate", nb201, ONE, seed=3, n_init=4, candidates=6, holdout=0,
                         proxy="synflow")
        return s, [p.arch.text for p, _ in drive(s, 7)]

    (s, texts), (_, again) = run(), run()
    assert texts == again  # the proxy is seeded: same proposals
    told = [a for a, _ in s.data]
    assert {a.hash for a in told} <= set(s._proxy)  # every told one scored ...
    assert len(s._proxy) == len(set(s._proxy))  # ... once, with candidates cached too
    X = s._encode(told, fit=True)
    assert X.shape == (len(told), len(s.encoder.vocab) + 1)  # one column more
    seed = derive_seed(3, "surrogate-proxy")
    batch = synthetic_batch(nb201.input_shape, nb201.num_classes, 16, seed=seed)
    assert s._proxy[told[0].hash] == compute_proxies(told[0], batch, seed=seed,
                                                     which=("synflow",))["synflow"]
    with pytest.raises(ConfigError, match=r"option proxy: expected '' or one of .*'flops'"):
        get_searcher("surrogate", nb201, ONE, proxy="flops")


# -- local search ----------------------------------------------------------------------------
def test_local_neighbours_differ_in_exactly_one_decision(nb201):
    s = get_searcher("local", nb201, ONE, seed=0)
    arch = nb201.sample(random.Random(3))
    ns = s.neighbours(arch)
    assert len(ns) == 24
    for n in ns:
        assert sum(n.choices[p] != arch.choices[p] for p in arch.choices) == 1


def test_local_climbs_to_the_optimum_of_a_separable_objective(nb201):
    s = get_searcher("local", nb201, ONE, seed=0, n_init=1)
    drive(s, 60)
    assert conv3(s.current) == 6.0  # every edge nor_conv_3x3
    # first improvement: each move's architecture was better than the one before
    assert s.climbs >= 1


def test_local_restarts_at_a_local_optimum(nb201):
    s = get_searcher("local", nb201, ONE, seed=0, n_init=1)
    ps = drive(s, 40, value=lambda a: 1.0)  # flat: nothing ever improves
    origins = [p.info["origin"] for p, _ in ps]
    assert origins[0] == "restart" and origins[1:25] == ["neighbour"] * 24
    assert origins[25] == "restart"


# -- rl --------------------------------------------------------------------------------------
def test_rl_reinforces_the_rewarded_choice(nb201):
    s = get_searcher("rl", nb201, ONE, seed=0)
    before = s.probabilities("root/edge_1_0", ("nor_conv_3x3", "none"))["nor_conv_3x3"]
    drive(s, 40)
    after = s.probabilities("root/edge_1_0", ("nor_conv_3x3", "none"))["nor_conv_3x3"]
    assert before == 0.5 and after > 0.6


def test_rl_softmax_is_over_the_valid_options_only(nb201):
    s = get_searcher("rl", nb201, ONE, seed=0)
    s.logits[("p", repr("a"))] = 2.0
    probs = s.probabilities("p", ("a", "b"))
    assert set(probs) == {"a", "b"} and math.isclose(sum(probs.values()), 1.0)


# -- repeats ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_tpe_steers_away_from_repeats_and_tells_each_architecture_once(nb201):
    s = get_searcher("tpe", nb201, ONE, seed=0, n_startup_trials=5)
    seen = []
    for _ in range(40):
        p = s.ask()
        seen.append(p.arch.hash)
        s.tell(p.arch, Result(TrialState.COMPLETE, (conv3(p.arch),)))
    assert len(set(seen)) >= 38
    p = s.ask()
    s.tell(p.arch, Result(TrialState.COMPLETE, (conv3(p.arch),)))
    s.tell(p.arch, Result(TrialState.COMPLETE, (conv3(p.arch),)))  # the study tells a repeat again
    assert len(s.trials) == len(set(seen) | {p.arch.hash})


def test_nevergrad_genome_length_defaults_to_the_decision_count(nb201):
    s = get_searcher("nevergrad", nb201, ONE, optimizer="DE")
    assert s.opts["genome_length"] == 6
    grammar = get_searcher("nevergrad", get_space("einspace", (3, 8, 8), 10), ONE,
                           optimizer="DE")
    assert 8 <= grammar.opts["genome_length"] <= 512


# -- zero-cost proxies -----------------------------------------------------------------------
def test_proxies_are_seeded_finite_and_rank_an_empty_cell_last():
    from workbench.proxies import PROXIES, compute_proxies, synthetic_batch

    space = get_space("nb201", (3, 8, 8), 10, channels=4, cells_per_stage=1)
    batch = synthetic_batch((3, 8, 8), 10, 8, seed=0)
    good = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
                       "nor_conv_3x3~1|nor_conv_3x3~2|")
    empty = space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    a, b = compute_proxies(good, batch, seed=0), compute_proxies(good, batch, seed=0)
    assert a == b and set(a) == set(PROXIES) and all(math.isfinite(v) for v in a.values())
    c = compute_proxies(good, batch, seed=1)
    assert c["snip"] != a["snip"]  # other initial weights
    e = compute_proxies(empty, batch, seed=0)
    assert a["synflow"] > e["synflow"]


def test_prefilter_spec_errors_say_what_is_expected():
    from workbench.proxies import parse_prefilter

    assert parse_prefilter("synflow:top25%").fraction == 0.25
    for bad in ("naswot", "nope:top0.5", "naswot:top2", "naswot:best0.5"):
        with pytest.raises(ConfigError, match=r"expected PROXY:topF"):
            parse_prefilter(bad)

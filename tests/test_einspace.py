"""einspace grammar: round-trips, validity, seeds, limits, parse errors, mutation, crossover."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from search_spaces import einspace
from workbench.architecture import Decision
from workbench.errors import InvalidArchitecture, NotFound, ParseError
from workbench.grammar import Limits
from workbench.spaces import from_json, get_space

SHAPES = [(3, 28, 28), (3, 32, 32)]


@pytest.fixture(scope="module", params=SHAPES, ids=["28", "32"])
def space(request):
    return get_space("einspace", request.param, 10)


@pytest.fixture(scope="module")
def samples(space):
    rng = random.Random(7)
    return [space.sample(rng) for _ in range(300)]


def test_round_trips_on_random_samples(space, samples):
    for arch in samples:
        assert space.replay(arch.decisions) == arch
        assert space.parse(str(arch)) == arch
        assert from_json(arch.to_json()) == arch
        assert arch.hash == from_json(json.loads(arch.to_json())).hash


@pytest.mark.parametrize("name", sorted(einspace.SEEDS))
def test_seed_round_trips(space, name):
    arch = space.seed(name)
    assert space.parse(arch.text) == arch
    assert space.replay(arch.decisions) == arch
    assert from_json(arch.to_json()) == arch


def test_samples_respect_shape_rules(samples):
    # every merge saw inputs it accepts; every node's shapes chain (spot-check via the tree)
    for arch in samples:
        for node in arch.tree.walk():
            if node.symbol == "sequential":
                first, second = node.children
                assert first.out_shape == second.in_shape
            if node.symbol == "routing":
                pre, body, post = node.children
                assert pre.out_shape == body.in_shape and body.out_shape == post.in_shape


def test_root_is_never_a_bare_computation(samples):
    assert all(a.tree.symbol != "computation" for a in samples)


def test_all_terminals_appear_in_samples():
    space = get_space("einspace", (3, 32, 32), 10)
    rng = random.Random(0)
    labels = set()
    for _ in range(3000):
        labels |= {n.label for n in space.sample(rng).tree.walk()}
    grammar = space.grammar
    expected = {alt.label for nt, alts in grammar.rules.items() for alt in alts
                if nt not in ("network", "module")}
    missing = expected - labels
    # group/cat along odd dims and some permutations are rare but must be reachable
    assert len(missing) <= 3, missing


def test_same_seed_same_decisions_in_another_process():
    code = ("import random; from workbench.spaces import get_space; "
            "s = get_space('einspace', (3, 32, 32), 10); r = random.Random(42); "
            "print('|'.join(s.sample(r).hash for _ in range(20)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    space = get_space("einspace", (3, 32, 32), 10)
    rng = random.Random(42)
    assert out.stdout.strip() == "|".join(space.sample(rng).hash for _ in range(20))


def test_different_seeds_differ():
    space = get_space("einspace", (3, 32, 32), 10)
    a = [space.sample(random.Random(1)).hash for _ in range(1)]
    b = [space.sample(random.Random(2)).hash for _ in range(1)]
    assert a != b


def test_mutation_always_changes_and_is_reproducible(space, samples):
    for i, arch in enumerate(samples[:150]):
        child = space.mutate(arch, random.Random(i))
        assert child.text != arch.text
        assert space.replay(child.decisions) == child
        assert space.mutate(arch, random.Random(i)) == child


def test_mutation_of_seed_keeps_most_of_it():
    space = get_space("einspace", (3, 32, 32), 10)
    parent = space.seed("resnet18")
    child = space.mutate(parent, random.Random(3))
    same = len(set(parent.decisions) & set(child.decisions))
    assert child != parent and same > len(parent.decisions) // 2


def test_crossover_combines_compatible_subtrees(space, samples):
    made = 0
    for i in range(0, 100, 2):
        a, b = samples[i], samples[i + 1]
        try:
            child = space.crossover(a, b, random.Random(i))
        except Exception:
            continue
        made += 1
        assert child.text not in (a.text, b.text)
        assert space.replay(child.decisions) == child
    seeds = space.crossover(space.seed("resnet18"), space.seed("wrn16_4"), random.Random(0))
    assert space.replay(seeds.decisions) == seeds
    assert made > 5


@pytest.mark.parametrize("text, where", [
    ("sequential[computation[linear(64)], computation[relux]]", "column 49"),
    ("sequential[computation[linear(64)]", "column 35"),
    ("computation[relu]", "expected a network"),
    ("branching(2)[clone(2), computation[linear(16)], computation[linear(32)], add]",
     "add needs equal shapes"),
    ("routing[identity, computation[relu], col2im]", "col2im needs a col tensor"),
    ("routing[im2col(5,1,1), computation[relu], col2im]", "expected a pre"),
    ("sequential[computation[relu]]", "expected sequential to have 2 children"),
    ("sequential[computation[relu], computation[relu]] trailing", "expected end of input"),
    ("", "expected an operation or module name"),
    ("routing[im2col(3,1), computation[relu], col2im]", "expected a pre"),
])
def test_parse_errors_name_position_and_expectation(text, where):
    space = get_space("einspace", (3, 32, 32), 10)
    with pytest.raises(ParseError) as info:
        space.parse(text)
    message = str(info.value)
    assert where in message
    assert "\n" not in message and message.startswith("line 1, column")


def test_invalid_strings_are_rejected_before_torch_is_imported():
    code = ("import sys; from workbench.spaces import get_space; from workbench.errors import "
            "ParseError\ns = get_space('einspace', (3, 32, 32), 10)\n"
            "for t in ['computation[relu]', 'sequential[x]', 'routing[im2col(3,1,1), "
            "computation[relu], identity]x']:\n"
            "    try: s.parse(t)\n    except ParseError: pass\n"
            "    else: raise SystemExit('accepted ' + t)\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_replay_rejects_bad_decisions():
    space = get_space("einspace", (3, 32, 32), 10)
    arch = space.seed("vit")
    bad = list(arch.decisions)
    bad[3] = Decision(bad[3].path, "linear(99)")
    with pytest.raises(InvalidArchitecture, match="expected one of"):
        space.replay(bad)
    with pytest.raises(InvalidArchitecture, match="extra paths"):
        space.replay(list(arch.decisions) + [Decision("root/nowhere", "relu")])
    with pytest.raises(InvalidArchitecture, match="expected a decision"):
        space.replay(arch.decisions[:-1])


def test_unknown_seed_and_space():
    space = get_space("einspace", (3, 32, 32), 10)
    with pytest.raises(NotFound, match="resnet18"):
        space.seed("resnet50")
    with pytest.raises(NotFound, match="einspace"):
        get_space("nospace")


def test_hard_limits_hold():
    space = einspace.make_space((3, 32, 32), 10, p_computation=0.05, depth_decay=1.0,
                                max_depth=6, max_nodes=60, max_params=200_000)
    rng = random.Random(0)
    for _ in range(80):
        arch = space.sample(rng)
        assert arch.nodes <= 60
        modules = [n for n in arch.tree.walk() if n.kind in ("network", "module")]
        assert max(n.path.count("/") for n in modules) <= 6 * 3
        from workbench.compiler import compile_model
        from workbench.metrics import count_params
        assert count_params(compile_model(arch).backbone) <= 200_000


def test_expected_size_is_bounded_by_rising_probability():
    space = get_space("einspace", (3, 32, 32), 10)
    rng = random.Random(1)
    sizes = sorted(space.sample(rng).nodes for _ in range(400))
    assert sizes[len(sizes) // 2] < 60 and sizes[-1] < Limits().max_nodes


def test_probabilities_are_configurable():
    rng = random.Random(0)
    small = get_space("einspace", (3, 16, 16), 10, p_computation=0.9)
    big = get_space("einspace", (3, 16, 16), 10, p_computation=0.2, depth_decay=0.9)
    mean_small = sum(small.sample(rng).nodes for _ in range(100)) / 100
    mean_big = sum(big.sample(rng).nodes for _ in range(100)) / 100
    assert mean_big > 2 * mean_small


def test_seeds_are_exactly_as_described():
    space = get_space("einspace", (3, 32, 32), 10)
    r18 = space.seed("resnet18")
    convs = [n for n in r18.tree.walk() if n.symbol == "routing"
             and n.children[0].symbol == "im2col"]
    assert len(convs) == 2 + 16 + 3  # stem, 8 blocks x 2, 3 projections
    assert r18.tree.out_shape == (512, 2, 2)  # stem stride 2, then three stride-2 stages
    vit = space.seed("vit")
    assert sum(1 for n in vit.tree.walk() if n.label == "branching(4)") == 4
    assert sum(1 for n in vit.tree.walk() if n.symbol == "scaled_dot_product") == 4
    mixer = space.seed("mixer")
    assert sum(1 for n in mixer.tree.walk() if n.label == "linear(x4)") == 8
    wrn = space.seed("wrn16_4")
    assert wrn.tree.out_shape == (256, 8, 8)

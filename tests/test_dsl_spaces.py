"""The shipped tree spaces: sizes, round trips, validity, compilation on digits and CIFAR shapes,
mutation, determinism and the CLI."""

from __future__ import annotations

import json
import random

import pytest
import torch
from typer.testing import CliRunner

from search_spaces import deepconv, dnn, genetic_cnn, nasbench_cell, quickstart
from tests.graphs import live_edges, reachable
from workbench.architecture import from_json
from workbench.compiler import compile_model
from workbench.dsl.count import enumerate_decisions as enumerate_sequences
from workbench.spaces import get_space, list_spaces

SPACES = ("dnn", "deepconv", "genetic_cnn", "nasbench_cell", "quickstart")
SIZES = {"dnn": 5400, "deepconv": 60_466_176, "genetic_cnn": 2 ** 19,
         "nasbench_cell": 33_534_501, "quickstart": 936}


def first_option(point):
    """The first option everywhere, except a chain input -> 1 -> ... -> output in DAG cells
    (all edges off is a rejected NAS-Bench-101 spec)."""
    if point.path.startswith("cell/edge["):
        i, j = map(int, point.path[len("cell/edge["):-1].split(","))
        return j == i + 1
    return point.options[0] if point.options else None


def test_registered_with_exact_sizes():
    entries = {e.name: e for e in list_spaces()}
    for name in SPACES:
        assert entries[name].kind == "tree"
        space = get_space(name, entries[name].example_input, 10)
        assert space.size() == SIZES[name], name
        assert type(space.size()) is int


def test_deepconv_size_by_formula_and_small_spaces_by_enumeration():
    per_module = 6 * 6 * 2 * 2 * (1 + 2)  # n, filters, kernel, order, dropout off | on x keep
    assert deepconv.make_space().size() == (6 * 3 * per_module) ** 2
    assert len(enumerate_sequences(quickstart.make_space())) == 936
    assert len(enumerate_sequences(dnn.make_space(units=(64, 128)))) == dnn.make_space(
        units=(64, 128)).size() == 2 * 5 * 2 * 4 * 2 + 4 * 5 * 2 * 10 * 2
    small = deepconv.make_space(filters=(8,), repeats=(1, 2))
    assert len(enumerate_sequences(small)) == small.size() == (3 * 2 * 2 * 2 * 3) ** 2


def test_nasbench_cell_count_matches_enumeration_on_a_smaller_cell():
    space = nasbench_cell.make_space(input_shape=(1, 8, 8), vertices=3, max_edges=6, stacks=1,
                                     cells=2)
    assert space.size() == len(enumerate_sequences(space))


@pytest.mark.parametrize("name", SPACES)
def test_round_trips_and_same_seed_same_decisions(name):
    space = get_space(name, (1, 8, 8), 10)
    rng = random.Random(42)
    n = 40 if name != "nasbench_cell" else 25
    for _ in range(n):
        arch = space.sample(rng)
        assert space.replay(arch.decisions) == arch
        assert space.parse(arch.text) == arch
        assert from_json(arch.to_json()) == arch
        assert from_json(json.loads(arch.to_json())).hash == arch.hash
    a = space.sample(random.Random(3))
    b = space.sample(random.Random(3))
    assert a.decisions == b.decisions and a.text == b.text


@pytest.mark.parametrize("name", SPACES)
def test_mutate_always_changes_the_architecture(name):
    space = get_space(name, (1, 8, 8), 10)
    rng = random.Random(9)
    arch = space.sample(rng)
    for _ in range(15):
        child = space.mutate(arch, rng)
        assert child.text != arch.text
        assert space.parse(child.text) == child
        arch = child


def test_sampled_nasbench_cells_are_valid():
    space = get_space("nasbench_cell", (1, 8, 8), 10)
    rng = random.Random(0)
    for _ in range(200):
        arch = space.sample(rng)
        on = {tuple(map(int, p[len("cell/edge["):-1].split(","))) for p, c in
              arch.choices.items() if p.startswith("cell/edge") and c}
        assert reachable(on, 0, 6), arch.text
        assert live_edges(on, 6) <= 9, arch.text
        kept = {v for v in range(1, 6) if reachable(on, 0, v) and reachable(on, v, 6)}
        assert {v for v in range(1, 6) if f"cell/v{v}/op" in arch.choices} == kept


def _check_forward(arch):
    model = compile_model(arch).eval()
    with torch.no_grad():
        feats = model.backbone(torch.randn(2, *arch.input_shape))
        logits = model.head(feats)
    assert tuple(feats.shape[1:]) == arch.tree.out_shape, arch.text
    assert tuple(logits.shape) == (2, arch.num_classes)


def _cheap(name, shape):
    """Each space as shipped, except deepconv narrowed so random samples stay small on a CPU."""
    if name == "deepconv":
        return deepconv.make_space(shape, 10, filters=(8, 16), repeats=(1, 2))
    if name == "genetic_cnn":
        return genetic_cnn.make_space(shape, 10, filters=(8, 16, 32), dense=64)
    if name == "nasbench_cell":
        return nasbench_cell.make_space(shape, 10, stem=4)
    return get_space(name, shape, 10)


@pytest.mark.parametrize("name", SPACES)
def test_every_space_compiles_and_runs_on_digits_and_example_input(name):
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the CI box is shared; these nets are tiny
    example = {e.name: e.example_input for e in list_spaces()}[name]
    for shape in {(1, 8, 8), tuple(example)}:
        space = get_space(name, shape, 10)
        _check_forward(space.derive(first_option))  # the shipped space itself
        rng = random.Random(1)
        cheap = _cheap(name, shape)
        for _ in range(3):
            _check_forward(cheap.sample(rng))


def test_space_specific_structure():
    arch = dnn.make_space().parse('cell/n=2; cell[0]/units=64; nonlinearity="crelu"; '
                                  'order="1,0"; batchnorm=true; dropout=true; '
                                  'cell[0]/dropout/keep=0.25; cell[1]/units=128; '
                                  'cell[1]/dropout/keep=0.75')
    symbols = [n.symbol for n in arch.tree.walk() if not n.children]
    assert symbols == ["flatten", "linear", "crelu", "batchnorm", "dropout", "linear", "crelu",
                       "batchnorm", "dropout", "linear"]
    assert arch.tree.out_shape == (10,)
    cell = genetic_cnn.make_space((1, 8, 8)).derive(first_option)
    assert [n.out_shape for n in cell.tree.walk() if n.symbol == "maxpool"] == [
        (64, 4, 4), (128, 2, 2), (256, 1, 1)]
    arch = quickstart.make_space().seed("small")
    assert arch.choices["activation"] == "relu" and arch.tree.out_shape == (10,)


def test_cli_spaces_sample_and_info():
    from workbench.cli import _load_commands, app

    _load_commands()
    runner = CliRunner()
    out = runner.invoke(app, ["spaces", "--json"])
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.output)}
    for name in SPACES:
        assert rows[name]["size"] == SIZES[name] and rows[name]["kind"] == "tree"
    out = runner.invoke(app, ["sample", "--space", "dnn", "--input", "1,8,8", "-n", "3"])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("cell/n=") for line in lines)
    out = runner.invoke(app, ["info", lines[0], "--space", "dnn", "--input", "1,8,8", "--json"])
    assert out.exit_code == 0, out.output
    info = json.loads(out.output)
    assert info["logits_shape"] == [10]
    assert info["output_shape"] == info["predicted_output_shape"]

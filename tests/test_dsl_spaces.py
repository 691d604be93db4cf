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
from workbench.compiler import compile_model
from workbench.dsl import (
    DSLSpace,
    avgpool,
    batchnorm,
    conv2d,
    dag_cell,
    dense_wiring,
    identity,
    relu,
    seq,
    zero,
)
from workbench.dsl.count import enumerate_decisions as enumerate_sequences
from workbench.spaces import from_json, get_space, list_spaces

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


# -- NAS-Bench-201 through the public DSL --------------------------------------------------------
NB201_TABLE = "nb201_nats_tss_200ep_test.csv"  # 15,625 rows: ArchitectureString, UniqueString


def nb201_dsl_space(channels: int = 4, side: int = 6):
    """NB201's cell written in the DSL: 4 nodes, every pair an edge choosing one of NB201's five
    operations in NB201's order, the zero op ``none`` among them; nodes sum their inputs."""
    def nor_conv(k):
        return seq(relu(), conv2d(None, k, bias=False), batchnorm())

    ops = {"none": zero(), "skip_connect": identity(), "nor_conv_1x1": nor_conv(1),
           "nor_conv_3x3": nor_conv(3), "avg_pool_3x3": avgpool(3, 1, "same")}
    cell = dag_cell(2, identity(), wiring=dense_wiring(), edge_ops=ops, merge="add")
    return DSLSpace(cell, (channels, side, side), 10, name="nb201_dsl")


def _nb201_rows():
    import csv

    from search_spaces.nb201 import benchmarks_dir

    path = benchmarks_dir() / NB201_TABLE
    if not path.is_file():
        pytest.skip(f"the NAS-Bench-201 table {NB201_TABLE} is not in {path.parent}")
    with path.open(newline="") as fh:
        return [(r["ArchitectureString"], r["UniqueString"]) for r in csv.DictReader(fh)]


def _unique_form(text: str) -> str:
    """NB201's UniqueString with zeros removed and sums flattened and sorted: ``#`` is zero, an
    operation of zero is zero, ``0`` is the input; '#' when the whole cell is zero."""
    pos = 0

    def expr() -> list[str]:
        nonlocal pos
        terms = term()
        while pos < len(text) and text[pos] == "+":
            pos += 1
            terms += term()
        return terms

    def term() -> list[str]:
        nonlocal pos
        if text[pos] in "0#":
            pos += 1
            return ["0"] if text[pos - 1] == "0" else []
        assert text[pos] == "(", (text, pos)
        pos += 1
        inner = expr()
        assert text[pos:pos + 2] == ")@", (text, pos)
        end = pos + 2
        while end < len(text) and text[end] not in "+)":
            end += 1
        op, pos = text[pos + 2:end], end
        return [f"({'+'.join(sorted(inner))})@{op}"] if inner else []

    terms = expr()
    assert pos == len(text), text
    return "+".join(sorted(terms)) or "#"


def _dsl_form(cell) -> str:
    """The same form read off a derived dag_cell node: which state each live vertex and the
    output sum, through which edge operation (named by the last part of its path)."""
    states: list[list[str]] = [["0"]]

    def read(s: int, e: int) -> list[str]:
        if e < 0:
            return states[s]
        op = cell.children[e].path.rsplit("/", 1)[1]
        return states[s] if op == "skip_connect" else [f"({'+'.join(sorted(states[s]))})@{op}"]

    for inputs, _vertex in cell.attr("plan"):  # the vertex module is the identity
        states.append([t for s, e in inputs for t in read(s, e)])
    out = [t for s, e in cell.attr("outputs") for t in read(s, e)]
    return "+".join(sorted(out)) or "#"


@pytest.mark.slow
def test_all_nb201_cells_rebuild_through_the_dsl_with_the_benchmarks_structure():
    from search_spaces.nb201 import EDGES, OPS, parse_arch_string
    from workbench.architecture import Decision

    rows = _nb201_rows()
    space = nb201_dsl_space()
    nb201 = get_space("nb201", (3, 8, 8), 10)
    assert space.size() == nb201.size() == len(rows) == 15_625
    first = space.derive(lambda p: None if p.options == OPS else pytest.fail(p.path))
    assert [d.path for d in first.decisions] == [f"cell/edge[{i},{j}]" for j, i in EDGES]
    forms, unreachable = {}, 0  # UniqueString -> the DSL structures of its cells
    for text, unique in rows:
        ops = parse_arch_string(text)
        arch = space.replay([Decision(f"cell/edge[{i},{j}]", op) for (j, i), op in zip(EDGES, ops)])
        assert [d.choice for d in arch.decisions] == ops == [
            d.choice for d in nb201.parse(text).decisions]
        form = _dsl_form(arch.tree)
        assert form == _unique_form(unique), (text, unique, form)
        assert (form == "#") == ("0" not in unique)  # output unreachable from the input
        unreachable += form == "#"
        forms.setdefault(unique, set()).add(form)
    assert unreachable == 341
    # cells the benchmark calls isomorphic (one UniqueString) have one DSL structure
    assert len(forms) == 6466 and all(len(f) == 1 for f in forms.values())


def test_sampled_nb201_cells_compile_through_the_dsl_to_the_nb201_spaces_cell():
    """A seeded sample, a cell whose node 1 is zero and the all-``none`` cell (its output is
    unreachable): the DSL's compiled cell holds the NB201 space's compiled cell's edge modules
    wherever the input reaches them, and with the same weights computes the same function; an
    unreachable cell gives zeros."""
    from search_spaces.nb201 import EDGES, OPS, arch_string
    from workbench.architecture import Decision

    space = nb201_dsl_space(channels=4, side=6)
    nb201 = get_space("nb201", (3, 6, 6), 10, channels=4, cells_per_stage=1)
    rng = random.Random(201)
    sample = [[rng.choice(OPS) for _ in EDGES] for _ in range(12)] + [
        ["none", "nor_conv_3x3", "nor_conv_1x1", "none", "nor_conv_3x3", "skip_connect"],
        ["none"] * 6]
    for ops in sample:
        arch = space.replay([Decision(f"cell/edge[{i},{j}]", op) for (j, i), op in zip(EDGES, ops)])
        dag = compile_model(arch).backbone
        ref = compile_model(nb201.parse(arch_string(ops))).backbone[2]  # stem conv, BN, cell
        assert type(ref).__name__ == "Cell"
        reached = {0}
        for (to, frm), op in zip(EDGES, ops):
            if op != "none" and frm in reached:
                reached.add(to)
        expected = 0
        for e, child in enumerate(arch.tree.children):  # copy NB201's weights edge by edge
            if "/edge[" not in child.path:
                continue
            i, j = map(int, child.path.split("[")[1].split("]")[0].split(","))
            mine = ref.ops[str(EDGES.index((j, i)))]
            dag.ops[e].load_state_dict(mine.state_dict(), strict=True)
            assert i in reached
            expected += sum(p.numel() for p in mine.parameters())
        assert sum(p.numel() for p in dag.parameters()) == expected
        for m in (*dag.modules(), *ref.modules()):  # non-trivial BatchNorm statistics
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1, generator=torch.Generator().manual_seed(1))
                m.running_var.uniform_(0.5, 2, generator=torch.Generator().manual_seed(2))
        x = torch.randn(2, 4, 6, 6, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            got, want = dag.eval()(x), ref.eval()(x)
        assert got.shape == want.shape == x.shape
        assert torch.allclose(got, want, atol=1e-5), arch_string(ops)
        assert (3 in reached) or not got.any()

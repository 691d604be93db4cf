"""Tree DSL semantics: counting, sharing, unchosen branches, cells, layers, errors, round trips."""

from __future__ import annotations

import random
from collections import Counter

import pytest
import torch

from tests.graphs import live_edges, reachable
from workbench.architecture import Decision
from workbench.compiler import compile_model
from workbench.dsl import (
    CellGraph,
    DSLSpace,
    avgpool,
    batchnorm,
    boolean,
    choice,
    conv2d,
    crelu,
    dag_cell,
    dense_wiring,
    dependent,
    dropout,
    elu,
    flatten,
    float_range,
    genetic_wiring,
    global_pool,
    identity,
    int_range,
    linear,
    maxpool,
    nb101_wiring,
    one_of,
    optional,
    orders,
    permutation,
    relu,
    relu6,
    repeat,
    residual,
    seq,
    softplus,
    split_combine,
    tanh,
    zero,
)
from workbench.dsl.cells import count_enumerate, count_vectorized
from workbench.dsl.count import Counting
from workbench.dsl.count import enumerate_decisions as enumerate_sequences
from workbench.errors import (
    DerivationFailed,
    GrammarError,
    InvalidArchitecture,
    ParseError,
)


def mixed_space(shape=(1, 6, 6)) -> DSLSpace:
    """Sharing across untied copies, nested one_of, optional, permutation, dependent values."""
    width = choice([4, 8], name="width")
    act = choice(["relu", "tanh"], name="act")
    acts = {"relu": relu(), "tanh": tanh()}

    def block(i):
        return seq(conv2d(width, choice([1, 3])),
                   one_of({"plain": identity(),
                           "bn": seq(batchnorm(), optional(dropout(choice([0.5, 0.9])))),
                           "pool": maxpool(choice([2, 3]))}, name="post"),
                   one_of(acts, choice=act, name="act"))

    return DSLSpace(seq(repeat(block, choice([0, 1, 2]), name="block"),
                        permutation([conv2d(dependent(lambda w: 2 * w, width), 1, name="wide"),
                                     optional(relu6(), name="r6")]),
                        global_pool()), shape, 3, name="mixed")


def small_cell_space(wiring, k=3, merge="concat", edge_ops=None, check=None) -> DSLSpace:
    def vertex(v):
        return one_of({"c": conv2d(None, 1), "p": maxpool(3, 1, "same")}, name="op")

    cell = dag_cell(k, vertex, wiring=wiring, merge=merge, edge_ops=edge_ops, check=check)
    return DSLSpace(seq(conv2d(4, 1), cell, global_pool()), (1, 4, 4), 2, name="cellspace")


# -- counting -----------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [
    mixed_space,
    lambda: small_cell_space(nb101_wiring(4)),
    lambda: small_cell_space(nb101_wiring(None), k=2, merge="add"),
    lambda: small_cell_space(genetic_wiring(), k=3, merge="add"),
    lambda: small_cell_space(nb101_wiring(5), k=2,
                             edge_ops={"none": zero(),
                                       "conv": lambda i, j: conv2d(None, choice([1, 3])),
                                       "id": identity()}),
], ids=["mixed", "nb101-k3", "nb101-k2-add", "genetic-k3", "op-edges"])
def test_size_equals_number_of_enumerated_sequences(make):
    space = make()
    seqs = enumerate_sequences(space)
    assert len(set(seqs)) == len(seqs)
    assert space.size() == len(seqs)
    for s in seqs[:: max(1, len(seqs) // 25)]:  # each enumerated sequence replays to itself
        arch = space.replay([Decision(p, c) for p, c in s])
        assert tuple((d.path, d.choice) for d in arch.decisions) == s


def test_vectorised_cell_count_equals_plain_enumeration():
    cases = [(nb101_wiring(9), 3), (nb101_wiring(5), 3), (nb101_wiring(None), 3),
             (genetic_wiring(), 5)]
    for wiring, k in cases:
        cell = dag_cell(k, lambda v: one_of({"a": relu(), "b": tanh()}, name="op"),
                        wiring=wiring)
        counting = Counting(cell)
        assert count_vectorized(cell, counting) == sum(
            count_enumerate(cell, counting, frozenset()).values()), (wiring, k)
    ops_cell = dag_cell(3, identity(), wiring=nb101_wiring(6),
                        edge_ops={"none": zero(), "a": lambda i, j: linear(choice([1, 2, 3])),
                                  "b": relu()})
    counting = Counting(ops_cell)
    assert count_vectorized(ops_cell, counting) == sum(
        count_enumerate(ops_cell, counting, frozenset()).values())


def test_continuous_range_makes_size_none_and_samples_in_range():
    lr = float_range(1e-4, 1e-1, log=True)
    space = DSLSpace(seq(flatten(), dropout(float_range(0.3, 0.9, name="keep")),
                         linear(int_range(2, 5000, name="units")), linear(dependent(
                             lambda x: int(x * 10), lr))), (1, 2, 2), 2, name="cont")
    assert space.size() is None
    seen = []
    arch = space.derive(lambda p: seen.append(p) or None, random.Random(3))
    keep, units = arch.choices["keep"], arch.choices["units"]
    assert 0.3 <= keep <= 0.9 and isinstance(units, int) and 2 <= units <= 5000
    assert seen[0].continuous and (seen[0].low, seen[0].high) == (0.3, 0.9)
    assert seen[1].integer and not seen[1].options  # a wide int range is offered as a range
    assert seen[2].log and seen[2].path == "units/arg0"  # the dependent's input, where used
    assert space.parse(arch.text) == arch
    assert space.replay(arch.decisions) == arch
    with pytest.raises(InvalidArchitecture, match=r"at keep: expected a number in \[0.3, 0.9\]"):
        space.parse(arch.text.replace(f"keep={keep!r}", "keep=1.5"))


# -- sharing, order, unchosen branches ------------------------------------------------------------
def test_shared_hyperparameters_are_asked_once_and_every_path_once():
    space = mixed_space()
    rng = random.Random(5)
    saw_two_blocks = False
    for _ in range(60):
        asked: Counter = Counter()
        arch = space.derive(lambda p, asked=asked: asked.update([p.path]) or None, rng)
        assert max(asked.values()) == 1
        assert [d.path for d in arch.decisions] == list(asked)
        if arch.choices["block/n"] == 2:
            saw_two_blocks = True
            assert asked["width"] == 1 and asked["act"] == 1
            assert {"block[0]/kernel", "block[1]/kernel"} <= set(asked)
            # the dependent width follows the shared one everywhere it is used
            wide = next(n for n in arch.tree.walk() if n.path == "wide")
            assert wide.args[1] == 2 * arch.choices["width"]
    assert saw_two_blocks


def test_unchosen_branches_are_never_asked():
    space = mixed_space()
    rng = random.Random(11)
    for _ in range(80):
        arch = space.sample(rng)
        paths = set(arch.choices)
        for i in range(arch.choices["block/n"]):
            post = arch.choices[f"block[{i}]/post"]
            inner = {p for p in paths if p.startswith(f"block[{i}]/post/")}
            assert all(p.startswith(f"block[{i}]/post/{post}/") for p in inner), inner
            if post == "bn" and not arch.choices[f"block[{i}]/post/bn/optional"]:
                assert not any(p.startswith(f"block[{i}]/post/bn/optional/") for p in paths)
        assert not any(p.startswith(f"block[{arch.choices['block/n']}]") for p in paths)
        if arch.choices["block/n"] == 0:
            assert "width" in paths and "act" not in paths  # width is still used by `wide`


def test_derivation_order_is_data_flow_order():
    space = mixed_space()
    arch = space.parse('block/n=1; width=4; block[0]/kernel=3; block[0]/post="pool"; '
                       'block[0]/post/pool/kernel=2; act="tanh"; order="1,0"; r6=true')
    assert [d.path for d in arch.decisions] == [
        "block/n", "width", "block[0]/kernel", "block[0]/post", "block[0]/post/pool/kernel",
        "act", "order", "r6"]
    assert arch.text.startswith('block/n=1; width=4; block[0]/kernel=3; block[0]/post="pool"')
    chain = arch.tree.children[1]  # the permutation, relu6 first then the wide conv
    assert [c.symbol for c in chain.children] == ["relu6", "conv2d"]


def test_same_seed_same_decisions_and_round_trips():
    space = mixed_space()
    a = [space.sample(random.Random(7)).decisions for _ in range(2)]
    assert a[0] == a[1]
    rng = random.Random(8)
    for _ in range(40):
        arch = space.sample(rng)
        assert space.replay(arch.decisions) == arch
        assert space.parse(arch.text) == arch
        assert space.mutate(arch, rng).text != arch.text


def test_tied_repeat_asks_once_and_copies_choices():
    space = DSLSpace(seq(repeat(seq(conv2d(choice([4, 8]), choice([1, 3])), relu()),
                                choice([1, 3]), tied=True, name="m"), global_pool()),
                     (2, 5, 5), 2, name="tied")
    assert space.size() == 2 * 2 * 2
    arch = space.parse("m/n=3; m/filters=8; m/kernel=3")
    convs = [n for n in arch.tree.walk() if n.symbol == "conv2d"]
    assert [c.args for c in convs] == [(2, 8, 3, 1, 1), (8, 8, 3, 1, 1), (8, 8, 3, 1, 1)]
    assert len(arch.decisions) == 3


# -- cells ----------------------------------------------------------------------------------------
def test_rejected_cell_specs_are_resampled_never_returned_and_fail_replay():
    space = small_cell_space(nb101_wiring(3))
    rng = random.Random(1)
    for _ in range(200):
        arch = space.sample(rng)
        cell = next(n for n in arch.tree.walk() if n.symbol == "dag_cell")
        on = {tuple(map(int, p[len("cell/edge["):-1].split(","))) for p, c in
              arch.choices.items() if p.startswith("cell/edge") and c}
        assert reachable(on, 0, 4) and live_edges(on, 4) <= 3
        assert all(reachable(on, 0, v) and reachable(on, v, 4) for v in
                   (1, 2, 3) if f"cell/v{v}/op" in arch.choices)  # ops only on kept vertices
        assert len(cell.attr("plan")) == sum(f"cell/v{v}/op" in arch.choices for v in (1, 2, 3))
    text = "; ".join(f"cell/edge[{i},{j}]=true" for i in range(5) for j in range(i + 1, 5))
    with pytest.raises(InvalidArchitecture, match="at cell: expected a valid cell spec.*10 edges"):
        space.parse(text)
    with pytest.raises(InvalidArchitecture, match="output is not reachable"):
        space.parse("; ".join(f"cell/edge[{i},{j}]=false" for i in range(5)
                              for j in range(i + 1, 5)))




def test_cell_check_rejects_and_policy_fixed_rejection_fails_fast():
    def no_pool_only(graph):
        return None if len(graph.vertices) >= 2 else "needs two vertices"

    space = small_cell_space(nb101_wiring(None), check=no_pool_only)
    rng = random.Random(2)
    for _ in range(30):
        arch = space.sample(rng)
        assert len(next(n for n in arch.tree.walk() if n.symbol == "dag_cell").attr("plan")) >= 2
    assert space.size() == len(enumerate_sequences(space))
    with pytest.raises(DerivationFailed, match="cell spec rejected"):
        space.derive(lambda p: False if p.path.startswith("cell/edge") else None)


def test_genetic_wiring_drops_isolated_nodes_and_feeds_input_and_output():
    space = small_cell_space(genetic_wiring(), k=3, merge="add")
    arch = space.parse('cell/edge[1,2]=false; cell/edge[1,3]=false; cell/edge[2,3]=false')
    cell = next(n for n in arch.tree.walk() if n.symbol == "dag_cell")
    assert cell.attr("plan") == () and cell.attr("outputs") == ((0, -1),)
    arch = space.parse('cell/edge[1,2]=true; cell/edge[1,3]=false; cell/edge[2,3]=false; '
                       'cell/v1/op="c"; cell/v2/op="p"')
    cell = next(n for n in arch.tree.walk() if n.symbol == "dag_cell")
    assert cell.attr("plan") == ((((0, -1),), 0), (((1, -1),), 1))
    assert cell.attr("outputs") == ((2, -1),)
    _forward_matches(arch)


def nb201_like(edge_ops, k=2, merge="add") -> DSLSpace:
    cell = dag_cell(k, identity(), wiring=dense_wiring(), edge_ops=edge_ops, merge=merge)
    return DSLSpace(seq(conv2d(3, 1), cell), (2, 4, 4), 2, name="dense")


@pytest.mark.parametrize("ops, k", [
    ({"skip": identity(), "none": zero(), "conv": conv2d(None, 1)}, 2),  # zero op in the middle
    ({"conv": lambda i, j: conv2d(None, choice([1, 3])), "none": zero()}, 1),  # last; choices
    ({"skip": identity(), "pool": maxpool(3, 1, "same")}, 2),  # no zero op: every edge present
], ids=["middle", "last", "none"])
def test_zero_op_is_an_ordinary_option_anywhere_or_left_out(ops, k):
    space = nb201_like(ops, k)
    points = []
    arch = space.derive(lambda p: points.append(p) or None, random.Random(0))
    assert points[0].path == "cell/edge[0,1]" and points[0].options == tuple(ops)
    seqs = enumerate_sequences(space)
    assert space.size() == len(seqs) == len(set(seqs))
    for s in seqs[:: max(1, len(seqs) // 6)]:
        arch = space.replay([Decision(p, c) for p, c in s])
        cell = next(n for n in arch.tree.walk() if n.symbol == "dag_cell")
        # no zero op is ever derived: absent edges are left out of the graph
        assert "zero" not in {n.symbol for n in cell.walk()}
        _forward_matches(arch)
    if "none" not in ops:
        assert all(len(p.options) == 2 for p in points) and len(points) == 6
        assert space.size() == 2 ** 6


def test_vertices_the_input_does_not_reach_are_zero_and_so_may_be_the_output():
    ops = {"none": zero(), "conv": lambda i, j: conv2d(None, choice([1, 3])), "skip": identity()}
    space = nb201_like(ops)
    # vertex 1 has no input: it is zero, edge[1,2] and edge[1,3] drop out unasked
    arch = space.parse('cell/edge[0,1]="none"; cell/edge[0,2]="skip"; cell/edge[1,2]="conv"; '
                       'cell/edge[0,3]="none"; cell/edge[1,3]="conv"; cell/edge[2,3]="skip"')
    assert not any(p.startswith("cell/edge[1,") and p.count("/") > 1 for p in arch.choices)
    cell = next(n for n in arch.tree.walk() if n.symbol == "dag_cell")
    # one live vertex (2): input 0 through the skip edge (child 0), its vertex module (child 1);
    # the output reads vertex 2 (state 1) through the skip edge (child 2)
    assert cell.attr("plan") == ((((0, 0),), 1),) and cell.attr("outputs") == ((1, 2),)
    assert [c.path for c in cell.children] == ["cell/edge[0,2]/skip", "cell/v2",
                                               "cell/edge[2,3]/skip"]
    _forward_matches(arch)
    # nothing reaches the output: the cell still compiles and gives zeros of its input's shape
    arch = space.parse('cell/edge[0,1]="conv"; cell/edge[0,1]/conv/kernel=3; '
                       'cell/edge[0,2]="none"; cell/edge[1,2]="none"; cell/edge[0,3]="none"; '
                       'cell/edge[1,3]="none"; cell/edge[2,3]="none"')
    cell = next(n for n in arch.tree.walk() if n.symbol == "dag_cell")
    assert cell.attr("outputs") == () and cell.out_shape == cell.in_shape == (3, 4, 4)
    model = _forward_matches(arch)
    with torch.no_grad():
        out = model.backbone(torch.randn(2, 2, 4, 4))
    assert out.shape == (2, 3, 4, 4) and not out.any()
    concat = nb201_like(ops, merge="concat").parse(arch.text.replace("/conv/kernel=3", "/conv/kernel=1"))
    assert _forward_matches(concat).backbone(torch.randn(1, 2, 4, 4)).shape == (1, 3, 4, 4)


def test_vectorised_count_of_dense_cells_equals_enumeration():
    ops = {"a": lambda i, j: linear(choice([1, 2])), "none": zero(), "b": relu()}
    for k, edge_ops in ((3, None), (3, {"a": ops["a"], "none": zero()}), (2, ops)):
        cell = dag_cell(k, lambda v: one_of({"a": relu(), "b": tanh()}, name="op"),
                        wiring=dense_wiring(), edge_ops=edge_ops, merge="add")
        counting = Counting(cell)
        assert count_vectorized(cell, counting) == sum(
            count_enumerate(cell, counting, frozenset()).values())


class _Wiring:
    """A custom wiring that returns whatever it is given (for the error tests)."""

    def __init__(self, result, pairs=((0, 1), (0, 2), (1, 2))):
        self.result, self._pairs = result, list(pairs)

    def pairs(self, k):
        return self._pairs

    def apply(self, k, active):
        return self.result


@pytest.mark.parametrize("result, message", [
    (CellGraph((1,), ((0, 1), (3, 2))), r"at cell: expected wiring _Wiring to give edges \(i, j\), "
                                        r"i < j, .* found \(3, 2\)"),
    (CellGraph((1,), ((0, 2), (2, 2))), r"from 0 or a kept vertex \(1,\).* found \(2, 2\)"),
    (CellGraph((2, 1), ((0, 1),)), r"keep vertices in increasing order within 1..1, found \(2, 1\)"),
    ({(0, 1)}, "expected wiring _Wiring to return a CellGraph or a rejection reason .*found set"),
])
def test_a_bad_custom_wiring_is_a_grammar_error_saying_where(result, message):
    space = DSLSpace(seq(conv2d(2, 1), dag_cell(1, relu(), wiring=_Wiring(result))), (1, 3, 3), 2,
                     name="w")
    with pytest.raises(GrammarError, match=message):
        space.sample(random.Random(0))
    with pytest.raises(GrammarError, match=r"dag_cell 'cell': expected wiring _Wiring to decide "
                                           r"distinct pairs \(i, j\) with 0 <= i < j <= 2"):
        dag_cell(1, relu(), wiring=_Wiring(result, pairs=[(0, 1), (2, 1)]))


# -- layers and compilation -----------------------------------------------------------------------
def _forward_matches(arch, batch=2):
    model = compile_model(arch).eval()
    with torch.no_grad():
        feats = model.backbone(torch.randn(batch, *arch.input_shape))
        logits = model.head(feats)
    assert tuple(feats.shape[1:]) == arch.tree.out_shape, arch.text
    assert tuple(logits.shape) == (batch, arch.num_classes)
    return model


@pytest.mark.parametrize("shape", [(3, 7, 7), (2, 1, 1), (1, 8, 8)])
def test_every_layer_compiles_with_predicted_shapes(shape):
    torch.manual_seed(0)
    body = seq(conv2d(6, 3, 2), batchnorm(), relu6(), elu(), softplus(), tanh(), crelu(),
               dropout(0.5), maxpool(2), avgpool(3, 1, "same"), maxpool(3, 2), avgpool(2),
               split_combine([conv2d(4, 1), seq(conv2d(4, 3), relu())], "add"),
               split_combine([conv2d(3, 1), conv2d(5, 3, 2)], "concat") if shape[1] == 1
               else identity(),
               residual(conv2d(8, 3, 2)), residual(seq(conv2d(None, 3), relu())),
               flatten(), linear(12), batchnorm(), residual(linear(5)), crelu())
    arch = DSLSpace(body, shape, 4, name="layers").sample(random.Random(0))
    model = _forward_matches(arch)
    symbols = {n.symbol for n in arch.tree.walk()}
    assert {"conv2d", "crelu", "maxpool", "avgpool", "branching", "batchnorm"} <= symbols
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(m.bias is not None for m in convs)


def test_pooling_is_clamped_on_tiny_maps_and_conv_same_padding():
    space = DSLSpace(seq(maxpool(4), conv2d(3, 5, 2), maxpool(2), global_pool()), (2, 3, 3), 2,
                     name="tiny")
    arch = space.sample(random.Random(0))
    shapes = [n.out_shape for n in arch.tree.children]
    assert shapes == [(2, 1, 1), (3, 1, 1), (3, 1, 1), (3,)]
    _forward_matches(arch)


def test_dropout_takes_keep_probability():
    arch = DSLSpace(seq(flatten(), dropout(0.75)), (1, 2, 2), 4, name="d").sample(random.Random(0))
    drop = [m for m in compile_model(arch).modules() if isinstance(m, torch.nn.Dropout)]
    assert drop[0].p == pytest.approx(0.25)


# -- errors ---------------------------------------------------------------------------------------
def test_bad_input_gives_one_line_errors():
    space = mixed_space()
    arch = space.sample(random.Random(0))
    with pytest.raises(InvalidArchitecture, match=r"at block/n: expected one of 0, 1, 2, found 7"):
        space.parse(arch.text.replace("block/n=" + str(arch.choices["block/n"]), "block/n=7"))
    with pytest.raises(InvalidArchitecture, match="at order: expected a decision, found none"):
        space.parse("block/n=0")
    with pytest.raises(InvalidArchitecture, match="extra paths"):
        space.parse(arch.text + "; nowhere=1")
    with pytest.raises(ParseError, match="line 1, column 12: expected 'path=value'.*'oops'"):
        space.parse("block/n=0; oops")
    with pytest.raises(ParseError, match="expected each path once"):
        space.parse("block/n=0; block/n=1")
    with pytest.raises(InvalidArchitecture, match=r"at r6: expected one of False, True, found 1"):
        space.parse('block/n=0; width=4; order="0,1"; r6=1')
    with pytest.raises(InvalidArchitecture, match=r"at root: conv2d expects a \(C, H, W\) input"):
        DSLSpace(conv2d(4), (5,), 2, name="bad").sample(random.Random(0))


def test_definition_errors():
    with pytest.raises(GrammarError, match="untied repeat.*found a module"):
        repeat(relu(), 2)
    with pytest.raises(GrammarError, match="one_of 'op': expected a choice over"):
        one_of({"a": relu()}, choice=choice(["b"]))
    with pytest.raises(GrammarError, match="permutation 'order': expected orders of 3"):
        permutation([relu(), tanh(), elu()], order=orders(2))
    with pytest.raises(GrammarError, match="expected distinct options"):
        choice([1, 1])
    with pytest.raises(GrammarError, match="expected low < high"):
        float_range(0.0, 1.0, log=True)
    same = DSLSpace(seq(linear(choice([1, 2])), linear(choice([3, 4]))), (3,), 2, name="clash")
    with pytest.raises(GrammarError, match="at units: expected one hyperparameter per decision "
                                           "path.*distinct name"):
        same.sample(random.Random(0))
    assert boolean(0.25).weights() == (0.75, 0.25)

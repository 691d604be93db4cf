"""Compiler: every op compiles, predicted shapes equal real ones, conv lowering is exact."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
import torch

from search_spaces import einspace
from workbench.compiler import compile_model
from workbench.dsl import (
    DSLSpace,
    avgpool,
    conv2d,
    crelu,
    dag_cell,
    dense_wiring,
    global_pool,
    seq,
    zero,
)
from workbench.metrics import count_params, static_metrics
from workbench.spaces import get_space

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.reference import ResNet18  # noqa: E402


@pytest.mark.parametrize("shape", [(3, 28, 28), (3, 32, 32)], ids=["28", "32"])
def test_500_random_samples_compile_and_match_predicted_shapes(shape):
    torch.set_num_threads(1)
    space = get_space("einspace", shape, 10)
    rng = random.Random(2024)
    for i in range(500):
        arch = space.sample(rng)
        model = compile_model(arch, seed=i).eval()
        with torch.no_grad():
            features = model.backbone(torch.randn(2, *shape))
            logits = model.head(features)
        assert tuple(features.shape[1:]) == arch.tree.out_shape, arch.text
        assert tuple(logits.shape) == (2, 10)


def _templates():
    """One tiny architecture per registered terminal, grouped by grammar position."""
    g = einspace.build_grammar()
    cases = []
    for alt in g.rules["op"]:
        cases.append(((4, 8, 8), f"sequential[computation[{alt.label}], computation[identity]]"))
    for alt in g.rules["pre"]:
        shape = (16, 8) if alt.label == "permute21" else (4, 16, 16)
        cases.append((shape, f"routing[{alt.label}, computation[identity], identity]"))
    for alt in g.rules["post"]:
        if alt.label == "col2im":
            cases.append(((4, 8, 8), "routing[im2col(3,1,1), computation[relu], col2im]"))
        else:
            shape = (16, 8) if alt.label == "permute21" else (4, 8, 8)
            cases.append((shape, f"routing[identity, computation[identity], {alt.label}]"))
    for k in (2, 4, 8):
        inner = "computation[identity], computation[identity]" if k == 2 else "computation[relu]"
        for split in g.rules[f"split{k}"]:
            cases.append(((8, 8, 8), f"branching({k})[{split.label}, {inner}, cat(1)]"))
        for merge in g.rules[f"merge{k}"]:
            cases.append(((8, 8, 8), f"branching({k})[clone({k}), {inner}, {merge.label}]"))
    return cases


@pytest.mark.parametrize("shape, text", _templates())
def test_every_registered_operation_compiles(shape, text):
    arch = get_space("einspace", shape, 5).parse(text)
    model = compile_model(arch).eval()
    with torch.no_grad():
        out = model.backbone(torch.randn(2, *shape))
    assert tuple(out.shape[1:]) == arch.tree.out_shape
    assert model(torch.randn(2, *shape)).shape == (2, 5)


@pytest.mark.parametrize("shape", [(3, 28, 28), (3, 32, 32)], ids=["28", "32"])
@pytest.mark.parametrize("name", sorted(einspace.SEEDS))
def test_seeds_compile_and_lowering_is_exact(shape, name):
    torch.set_num_threads(2)
    arch = get_space("einspace", shape, 10).seed(name)
    lowered = compile_model(arch, seed=0).eval()
    plain = compile_model(arch, seed=0, lower=False).eval()
    assert count_params(lowered) == count_params(plain)
    n_conv = sum(isinstance(m, torch.nn.Conv2d) for m in lowered.modules())
    assert n_conv == sum(1 for n in arch.tree.walk() if n.symbol == "routing"
                         and n.children[0].symbol == "im2col" and n.children[2].symbol == "col2im")
    # copy the unfold+linear weights into the convs: the two models compute the same function
    src = plain.state_dict()
    moved = {}
    for key, value in lowered.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        cand = src.get(key, src.get(f"{prefix}.1.{leaf}"))
        assert cand is not None and cand.numel() == value.numel(), key
        moved[key] = cand.reshape(value.shape)
    lowered.load_state_dict(moved)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        assert torch.allclose(lowered(x), plain(x), atol=1e-4, rtol=1e-4)
        assert tuple(lowered.backbone(x).shape[1:]) == arch.tree.out_shape


def test_state_dicts_round_trip_and_names_are_deterministic():
    arch = get_space("einspace", (3, 32, 32), 10).seed("vit")
    a, b = compile_model(arch, seed=1), compile_model(arch, seed=2)
    assert list(a.state_dict()) == list(b.state_dict())
    assert not torch.equal(next(iter(a.parameters())), next(iter(b.parameters())))
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))
    c = compile_model(arch, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_weight_init_does_not_touch_global_rng():
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    compile_model(get_space("einspace", (3, 16, 16), 10).seed("mixer"), seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_branching4_instantiates_untied_copies():
    arch = get_space("einspace", (8, 8, 8), 10).parse(
        "branching(4)[clone(4), computation[linear(16)], cat(1)]")
    model = compile_model(arch)
    linears = [m for m in model.backbone.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 4
    assert not torch.equal(linears[0].weight, linears[1].weight)
    assert arch.text.count("linear(16)") == 1


def test_compiled_resnet18_matches_hand_written_parameter_count():
    arch = get_space("einspace", (3, 32, 32), 10).seed("resnet18")
    assert count_params(compile_model(arch)) == count_params(ResNet18(3, 10))


def test_static_metrics():
    arch = get_space("einspace", (3, 28, 28), 10).seed("resnet18")
    m = static_metrics(arch)
    assert m["output_shape"] == m["predicted_output_shape"] == [512, 2, 2]
    assert m["params_total"] == m["params_backbone"] + 512 * 10 + 10
    assert m["flops"] > 1e8 and m["nodes"] == arch.nodes


# -- the route from a node to its builder -------------------------------------------------------
def _archs():
    """An NB201 network and a DSL one (DAG cell, conv without bias, zero op, pooling)."""
    nb201 = get_space("nb201", (3, 8, 8), 10, channels=4, cells_per_stage=1).parse(
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_1x1~2|")
    ops = {"conv": conv2d(None, 3, bias=False), "pool": avgpool(3, 1, "same"), "none": zero()}
    cell = dag_cell(2, crelu(), wiring=dense_wiring(), edge_ops=ops, merge="add")
    dsl = DSLSpace(seq(conv2d(4, 1), cell, global_pool()), (3, 8, 8), 10, name="pickled").parse(
        'cell/edge[0,1]="conv"; cell/edge[0,2]="none"; cell/edge[1,2]="pool"; '
        'cell/edge[0,3]="none"; cell/edge[1,3]="conv"; cell/edge[2,3]="none"')
    return {"nb201": nb201, "dsl": dsl}


@pytest.mark.parametrize("name", ["nb201", "dsl"])
def test_compiled_models_pickle_and_torch_save_by_name(name, tmp_path):
    import pickle

    arch = _archs()[name]
    model = compile_model(arch, seed=4).eval()
    x = torch.randn(2, *arch.input_shape)
    with torch.no_grad():
        expected = model(x)
        again = pickle.loads(pickle.dumps(model))
        assert torch.equal(again(x), expected)
        torch.save(model, tmp_path / "m.pt")
        loaded = torch.load(tmp_path / "m.pt", weights_only=False)
        assert torch.equal(loaded(x), expected)
    # every module is a top-level class, reachable by its qualified name
    assert all("<locals>" not in type(m).__qualname__ for m in model.modules())


def test_a_tree_compiles_in_a_fresh_process_that_never_built_its_space():
    import json
    import pickle
    import subprocess

    archs = _archs()
    code = ("import json, pickle, sys\nfrom workbench.compiler import compile_model\n"
            "archs = pickle.loads(sys.stdin.buffer.read())\n"
            "ours = lambda: sorted(m for m in sys.modules if m.startswith(('search_spaces', "
            "'workbench.dsl')))\n"
            "before = ours()\n"
            "counts = [sum(p.numel() for p in compile_model(a).parameters()) for a in archs]\n"
            "print(json.dumps([before, ours(), counts]))")
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(list(archs.values())),
                         capture_output=True, check=True)
    before, after, counts = json.loads(out.stdout)
    # nothing of the spaces is loaded by unpickling; compiling imports what the nodes name
    assert before == []
    assert {"search_spaces.nb201_torch", "workbench.dsl.build"} <= set(after)
    assert counts == [count_params(compile_model(a)) for a in archs.values()]


def test_importing_and_deriving_spaces_does_not_import_torch():
    import subprocess

    code = ("import random, sys\nimport search_spaces, workbench.dsl\n"
            "from workbench.spaces import get_space\n"
            "for name in ('nb201', 'quickstart', 'nasbench_cell', 'genetic_cnn', 'dnn'):\n"
            "    get_space(name, (3, 32, 32), 10).sample(random.Random(0))\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_node_naming_a_module_without_its_builder_is_a_clear_error():
    from workbench.architecture import Node
    from workbench.compiler import build_backbone
    from workbench.errors import InvalidArchitecture

    def node(module):
        return Node("warp", "warp", "op", "cell/op", (4,), (4,), attrs=(("builders", module),))

    with pytest.raises(InvalidArchitecture, match="at cell/op: expected workbench.ops to "
                                                  "register a builder for 'warp', found none"):
        build_backbone(node("workbench.ops"))
    with pytest.raises(InvalidArchitecture, match="at cell/op: expected an importable builder "
                                                  "module for 'warp', found 'no_such.module'"):
        build_backbone(node("no_such.module"))
    with pytest.raises(InvalidArchitecture, match="expected an operation with a compiler builder"):
        build_backbone(Node("warp", "warp", "op", "cell/op", (4,), (4,)))

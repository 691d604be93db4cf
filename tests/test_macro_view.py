"""The macro view: runs of repeated structure found on hand-built trees and on the seeds, drawn
once by real ``dot`` renders (SVG parsed, as in test_diagrams)."""

from __future__ import annotations

import re

import pytest

from tests.test_diagrams import expected_ops, groups, op_nodes, parse, texts
from workbench import diagrams
from workbench.architecture import Architecture, Node
from workbench.diagrams import render_svg, to_dot
from workbench.macro_view import Run, group_runs, signature
from workbench.spaces import get_space


def conv(path: str, c_in: int, c_out: int, k: int = 3) -> Node:
    return Node("conv2d", f"conv2d({c_out},{k},1)", "layer", path, (c_in, 8, 8), (c_out, 8, 8),
                (c_in, c_out, k, 1, k // 2))


def act(path: str, c: int, symbol: str = "relu") -> Node:
    return Node(symbol, symbol, "layer", path, (c, 8, 8), (c, 8, 8))


def block(path: str, c_in: int, c_out: int, *, k: int = 3, fn: str = "relu") -> Node:
    """A hand-made module (a symbol no rule knows: drawn as a cluster of its children)."""
    return Node("block", "block", "module", path, (c_in, 8, 8), (c_out, 8, 8), (),
                (conv(f"{path}/conv", c_in, c_out, k), act(f"{path}/act", c_out, fn)))


def arch_of(*items: Node) -> Architecture:
    root = Node("sequential", "sequential", "module", "root", items[0].in_shape,
                items[-1].out_shape, (), tuple(items))
    return Architecture("hand", "1", items[0].in_shape, 10, (), root, f"hand{len(items)}")


def run_labels(dot: str) -> list[str]:
    return re.findall(r'#run(?:#\d+)?" \{\n\s*label="([^"]*)"', dot)


def height(svg: str) -> int:
    return int(re.search(r'<svg width="\d+pt" height="(\d+)pt"', svg).group(1))


def test_three_identical_blocks_are_one_cluster_drawn_once():
    arch = arch_of(*(block(f"root/b{i}", 16, 16) for i in range(3)))
    dot = to_dot(arch, view="macro")
    assert run_labels(dot) == ["×3 block"]
    svg = render_svg(arch, view="macro")
    convs = [k for k in op_nodes(svg) if k.endswith("/conv")]
    assert convs == ["root/b0/conv"]  # the first member is drawn, the others are not
    assert len([k for k in op_nodes(render_svg(arch)) if k.endswith("/conv")]) == 3
    assert "cluster:root/b0#run" in groups(parse(svg), "cluster")


def test_a_different_block_breaks_the_run_sizes_do_not():
    # another activation or another kernel is other structure: the run stops there
    for odd in (block("root/b2", 16, 16, fn="tanh"), block("root/b2", 16, 16, k=5)):
        arch = arch_of(block("root/b0", 16, 16), block("root/b1", 16, 16), odd,
                       block("root/b3", 16, 16))
        units = group_runs(list(arch.tree.children))
        assert [u.count if isinstance(u, Run) else u.path for u in units] == \
            [2, "root/b2", "root/b3"]
        assert run_labels(to_dot(arch, view="macro")) == ["×2 block"]
    # other channel counts are the same structure: one run, the label says what differs
    arch = arch_of(block("root/b0", 16, 16), block("root/b1", 16, 32), block("root/b2", 32, 64))
    assert signature(arch.tree.children[0]) == signature(arch.tree.children[2])
    assert run_labels(to_dot(arch, view="macro")) == ["×3 block\\nchannels 16 → 32 → 64"]


def test_nested_repeats_collapse_too():
    def stage(i: int) -> Node:
        b = [block(f"root/s{i}/b{j}", 16, 16) for j in range(2)]
        return Node("stage", "stage", "module", f"root/s{i}", (16, 8, 8), (16, 8, 8), (),
                    tuple(b))

    arch = arch_of(*(stage(i) for i in range(4)))
    dot = to_dot(arch, view="macro")
    assert run_labels(dot) == ["×4 stage", "×2 block"]  # the inner run inside the outer
    svg = render_svg(arch, view="macro")
    assert [k for k in op_nodes(svg) if k.endswith("/conv")] == ["root/s0/b0/conv"]
    # a flat chain [a, a, b] x 2: the unit is found, and inside it the pair
    a = [block(f"root/x{i}", 16, 16) for i in range(6)]
    b = [block(f"root/y{i}", 16, 16, fn="tanh") for i in range(2)]
    flat = arch_of(a[0], a[1], b[0], a[2], a[3], b[1])
    assert run_labels(to_dot(flat, view="macro")) == ["×2 [block → block → block]", "×2 block"]
    # both runs start at root/x0: two clusters all the same (dot crashed on one id twice)
    clusters = groups(parse(render_svg(flat, view="macro")), "cluster")
    assert {"cluster:root/x0#run", "cluster:root/x0#run#2"} <= set(clusters)


def test_shapes_on_the_run_edges_are_first_in_and_last_out():
    head = Node("linear", "linear(10)", "layer", "root/head", (64, 8, 8), (10,), (10,))
    arch = arch_of(block("root/b0", 3, 16), block("root/b1", 16, 32), block("root/b2", 32, 64),
                   head)
    dot = to_dot(arch, view="macro")
    # into the run: the first member's input; out of it: the last member's output, although the
    # drawn (first) member ends in 16 channels
    assert '"input" -> "root/b0/conv" [label="3×8×8"]' in dot
    assert '"root/b0/act" -> "root/head" [label="64×8×8"]' in dot
    assert "16×8×8" in dot  # inside the drawn member
    tips = re.findall(r'tooltip="(×3[^"]*)"', dot)
    assert tips == ["×3 block (drawn: the first)\\n1. root/b0: 3×8×8 → 16×8×8; channels 16"
                    "\\n2. root/b1: 16×8×8 → 32×8×8; channels 32"
                    "\\n3. root/b2: 32×8×8 → 64×8×8; channels 64"]


def test_a_highlight_in_a_hidden_member_marks_the_run():
    arch = arch_of(*(block(f"root/b{i}", 16, 16) for i in range(3)))
    dot = to_dot(arch, view="macro", highlight={"root/b2/act"})
    assert re.search(r'#run" \{\n\s*label="×3 block"; style="rounded"; color="'
                     + diagrams.HIGHLIGHT + '"; penwidth=3', dot)
    assert diagrams.HIGHLIGHT not in to_dot(arch, view="macro", highlight={"root/nowhere"})


@pytest.fixture(scope="module")
def seeds():
    space = get_space("einspace", (3, 32, 32), 10)
    return {name: space.seed(name) for name in ("resnet18", "wrn16_4", "vit", "mixer")}


def test_resnet18_is_a_stem_and_two_runs(seeds):
    arch = seeds["resnet18"]
    dot = to_dot(arch, view="macro")
    assert run_labels(dot) == ["×2 [residual block → relu]",
                               "×3 [residual block → relu → residual block → relu]"
                               "\\nwidth 128 → 256 → 512"]
    svg = render_svg(arch, view="macro")
    convs = [t for n in op_nodes(svg).values() for t in texts(n) if t.startswith("conv ")]
    # stem 2 + one stage-1 block 2 + one later stage (a strided block with its projection, a
    # plain block) 5, against 21 in the dataflow view
    assert len(convs) == 9 and "conv 1×1 /2 64→128" in convs
    labels = {t for e in groups(parse(svg), "edge").values() for t in texts(e)}
    assert {"3×32×32", "64×16×16", "512×2×2"} <= labels  # into the runs, out of the last
    assert height(svg) < height(render_svg(arch)) / 2


def test_wrn_units_start_at_the_block_not_at_the_stems_tail(seeds):
    # the chain is conv, bn, relu, [block, bn, relu] x 6: [bn, relu, block] x 3 covers as much,
    # but the unit begins with its biggest node
    assert run_labels(to_dot(seeds["wrn16_4"], view="macro")) == [
        "×3 [residual block → norm → relu → …] (6 modules)\\nstride 1 → 2/1 → 2/1"
        "\\nwidth 64 → 128 → 256"]


def test_transformer_seeds_collapse_their_layers(seeds):
    assert run_labels(to_dot(seeds["mixer"], view="macro")) == ["×8 residual block"]
    assert run_labels(to_dot(seeds["vit"], view="macro")) == [
        "×4 [residual block → norm → residual block → norm]"]
    for name in ("mixer", "vit"):
        assert height(render_svg(seeds[name], view="macro")) < \
            height(render_svg(seeds[name])) / 3


def test_macro_keeps_depth(seeds):
    # depth still boxes what is nested deeper: at 0 one box per residual block drawn
    svg = render_svg(seeds["resnet18"], view="macro", depth=0)
    boxes = [texts(n)[0] for n in op_nodes(svg).values() if any(" ops" in t for t in texts(n))]
    assert boxes == ["branching(2)"] * 3  # stage 1's block; a later stage's two blocks


def test_a_tied_dsl_repeat_collapses():
    import random

    space = get_space("deepconv", (3, 32, 32), 10, filters=(16,), repeats=(4,))
    arch = space.sample(random.Random(0))
    labels = run_labels(to_dot(arch, view="macro"))
    assert len(labels) == 2 and all(label.startswith("×4 [conv2d → ") for label in labels)
    # the copies of a tied repeat share their paths: each is still its own node in the
    # dataflow view (dot used to merge them into one) and in the tree view
    assert len(op_nodes(render_svg(arch))) == expected_ops(arch)
    assert len(groups(parse(render_svg(arch, view="tree")), "node")) == arch.nodes + 1  # legend

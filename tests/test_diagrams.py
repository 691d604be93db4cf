"""Circuit diagrams: real ``dot`` renders, checked by parsing the SVG it writes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from workbench import diagrams
from workbench.architecture import Architecture, changed_paths
from workbench.diagrams import render, render_svg, to_dot
from workbench.errors import ConfigError, WorkbenchError
from workbench.spaces import get_space, list_spaces

NS = {"s": "http://www.w3.org/2000/svg"}
ENDS = {"input", "output", "legend"}
RED = diagrams.HIGHLIGHT


@pytest.fixture(scope="module")
def space():
    return get_space("einspace", (3, 32, 32), 10)


@pytest.fixture(scope="module")
def seeds(space):
    return {name: space.seed(name) for name in ("resnet18", "wrn16_4", "vit", "mixer")}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def groups(root: ET.Element, cls: str) -> dict[str, ET.Element]:
    """``<g class=cls>`` elements by their ``<title>`` (graphviz writes the DOT id there)."""
    out = {}
    for g in root.iter("{http://www.w3.org/2000/svg}g"):
        if g.get("class") == cls:
            out[g.find("s:title", NS).text] = g
    return out


def texts(el: ET.Element) -> list[str]:
    return [t.text or "" for t in el.iter("{http://www.w3.org/2000/svg}text")]


def op_nodes(svg: str) -> dict[str, ET.Element]:
    return {k: v for k, v in groups(parse(svg), "node").items() if k not in ENDS}


def expected_ops(arch: Architecture) -> int:
    """Drawn operations, counted from the tree independently of the drawing code: every leaf but
    identities, with each lowered conv (im2col, linear, col2im) drawn as one node."""
    leaves = [n for n in arch.tree.walk() if not n.children and n.symbol != "identity"]
    convs = [n for n in arch.tree.walk() if diagrams._lowerable(n)]
    return len(leaves) - 2 * len(convs)


@pytest.mark.parametrize("name", ["resnet18", "wrn16_4", "vit", "mixer"])
def test_seed_renders_every_op_with_shapes(seeds, name):
    arch = seeds[name]
    svg = render_svg(arch)
    root = parse(svg)
    nodes = op_nodes(svg)
    assert len(nodes) == expected_ops(arch)
    assert {"input", "output", "legend"} <= set(groups(root, "node"))
    # every edge carries the tensor shape flowing along it
    edges = groups(root, "edge")
    assert edges and all(texts(e) and texts(e)[0] for e in edges.values())
    labels = {t for e in edges.values() for t in texts(e)}
    assert "3×32×32" in labels
    assert diagrams.format_shape(arch.tree.out_shape) in labels


def test_resnet18_draws_every_conv_and_block(seeds):
    arch = seeds["resnet18"]
    svg = render_svg(arch)
    convs = [t for n in op_nodes(svg).values() for t in texts(n) if t.startswith("conv ")]
    assert len(convs) == arch.text.count("col2im") == 21  # 2 stem + 16 block + 3 projections
    assert sum(t == "conv 1×1 /2 128→256" for t in convs) == 1
    clusters = groups(parse(svg), "cluster")
    branching = [c for c in clusters if c.startswith("cluster:") and
                 arch.tree.find(c[len("cluster:"):]).symbol == "branching"]
    assert len(branching) == 8
    labels = {t for e in groups(parse(svg), "edge").values() for t in texts(e)}
    assert {"64×32×32", "128×8×8", "512×2×2"} <= labels


def test_collapsing_reduces_and_summarises(seeds):
    arch = seeds["resnet18"]
    full = op_nodes(render_svg(arch))
    at0 = op_nodes(render_svg(arch, depth=0))  # the root chain only: one box per block
    at1 = op_nodes(render_svg(arch, depth=1))  # blocks drawn, their branches boxed
    assert len(at0) < len(at1) < len(full)
    boxes = {k: texts(v) for k, v in at0.items() if any(" ops" in t for t in texts(v))}
    assert len(boxes) == 8
    first = boxes["root/second/second/second/second/first/first"]
    # split + conv, bn, relu, conv, bn + add; 2 convs (64·64·9 + 64) and 2 norms (2·64)
    assert first == ["branching(2)", "7 ops · 74.1k params", "64×16×16 → 64×16×16"]
    boxes = [texts(v)[0] for v in at1.values() if any(" ops" in t for t in texts(v))]
    assert sorted(boxes) == ["sequential"] * 11  # 8 residual bodies + 3 projection shortcuts
    # the default depth shows all of ResNet-18 but folds ViT's attention head
    assert len(op_nodes(render_svg(arch, depth=diagrams.DEFAULT_DEPTH))) == len(full)
    vit = seeds["vit"]
    assert len(op_nodes(render_svg(vit, depth=diagrams.DEFAULT_DEPTH))) < expected_ops(vit)


def test_vit_replicated_head_badge(seeds):
    svg = render_svg(seeds["vit"])
    badges = [t for c in groups(parse(svg), "cluster").values() for t in texts(c)
              if t == "×4 (untied)"]
    assert len(badges) == 4  # one multi-head attention per layer, its head drawn once
    assert "×4 (untied)" not in render_svg(seeds["resnet18"])


def test_collapsed_params_match_compiled_model(seeds):
    from workbench.compiler import build_backbone
    from workbench.metrics import count_params

    for name in ("wrn16_4", "vit"):
        tree = seeds[name].tree
        assert diagrams.params(tree) == count_params(build_backbone(tree))


def test_random_samples_render(space):
    rng = random.Random(7)
    for _ in range(5):
        arch = space.sample(rng)
        assert len(op_nodes(render_svg(arch))) == expected_ops(arch)
        parse(render_svg(arch, view="tree", depth=2))
        assert 1 <= len(op_nodes(render_svg(arch, view="macro"))) <= expected_ops(arch)


def test_png_signature(seeds):
    data = render(seeds["mixer"], "png", depth=2)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_tree_view_and_folding(seeds):
    arch = seeds["vit"]
    nodes = groups(parse(render_svg(arch, view="tree")), "node")
    assert len(nodes) == arch.nodes + 1  # + legend
    assert "branching(4)" in {t for n in nodes.values() for t in texts(n)}
    folded = groups(parse(render_svg(arch, view="tree", depth=3)), "node")
    assert len(folded) < len(nodes)
    assert any(t.startswith("+") and t.endswith(" nodes") for n in folded.values() for t in texts(n))


def red(el: ET.Element) -> bool:
    """Drawn with the highlight colour (shapes sit under an <a> when the node has a tooltip)."""
    return any(p.get("stroke") == RED for p in el.iter()
               if p.tag.endswith(("polygon", "path", "ellipse")))


@pytest.mark.parametrize("view", ["dataflow", "tree"])
def test_highlight_marks_only_the_given_subtree(seeds, view):
    arch = seeds["vit"]
    path = "root/second/second/second/second/first"  # the first layer's FFN residual
    plain = render_svg(arch, view=view)
    hot = render_svg(arch, view=view, highlight={path})
    assert plain != hot
    assert not any(red(n) for n in groups(parse(plain), "node").values())
    nodes = groups(parse(hot), "node")
    marked = {k for k, n in nodes.items() if red(n)}
    inside = {k for k in nodes if k == path or k.startswith(path + "/")}
    assert marked and marked == inside
    if view == "dataflow":
        clusters = groups(parse(hot), "cluster")
        assert red(clusters["cluster:" + path])


def test_changed_paths_on_real_mutations(space, seeds):
    rng = random.Random(3)
    for parent in (seeds["resnet18"], space.sample(rng), space.sample(rng)):
        for _ in range(3):
            child = space.mutate(parent, rng)
            before, after = parent.choices, child.choices
            differ = [p for p in before.keys() | after.keys() if before.get(p) != after.get(p)]
            mutated = min(differ, key=lambda p: p.count("/"))
            changed = changed_paths(parent, child)
            assert changed
            assert any(mutated == c or mutated.startswith(c + "/") for c in changed)
            for c in changed:
                a, b = parent.tree.find(c), child.tree.find(c)
                assert a is not None and b is not None and a.label != b.label or \
                    len(a.children) != len(b.children)
            assert render_svg(child, highlight=changed) != render_svg(child)
    assert changed_paths(parent, parent) == frozenset()


def test_bad_arguments_are_one_line_errors(seeds, monkeypatch, tmp_path):
    arch = seeds["mixer"]
    with pytest.raises(ConfigError, match="expected one of dataflow, macro, tree, found 'graph'"):
        to_dot(arch, view="graph")
    with pytest.raises(ConfigError, match="depth"):
        to_dot(arch, depth=-1)
    with pytest.raises(ConfigError, match="found 'jpg'"):
        render(arch, "jpg")
    monkeypatch.setenv("PATH", str(tmp_path))  # a real PATH without graphviz on it
    with pytest.raises(WorkbenchError, match=r"install graphviz \(apt-get install graphviz\)"):
        render_svg(arch)


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "from workbench.cli import main; main()",
                           "diagram", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": os.getcwd()}, timeout=120)


def test_cli_svg_png_and_bad_extension(tmp_path):
    svg = tmp_path / "r.svg"
    done = cli("resnet18", "--space", "einspace", "--out", str(svg), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    resnet = get_space("einspace").seed("resnet18")
    assert len(op_nodes(svg.read_text())) == expected_ops(resnet) == 74
    png = tmp_path / "v.png"
    done = cli("vit", "--input", "3,32,32", "--classes", "100", "--out", str(png), "--view", "tree",
               "--depth", "4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    done = cli("vit", "--out", str(tmp_path / "v.jpg"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "expected a file ending in .svg" in done.stderr
    assert not (tmp_path / "v.jpg").exists()


@pytest.mark.parametrize("entry", list_spaces(), ids=lambda e: e.name)
def test_every_registered_space_diagrams(entry):
    space = get_space(entry.name, entry.example_input, 10)
    arch = space.sample(random.Random(1))
    for view in diagrams.VIEWS:
        nodes = groups(parse(render_svg(arch, view=view)), "node")
        assert len(set(nodes) - ENDS) >= 1
    assert changed_paths(arch, arch) == frozenset()

"""Architecture -> ``nn.Module``: a tree walker dispatching on node symbols.

One route from a node to its builder (:func:`builder_for`): the registry :data:`BUILDERS`, keyed
by symbol. This module registers the builders of the grammar's symbols. A space whose nodes have
symbols of their own puts its builders in a module that calls :func:`register` at import, and
names that module in each such node's ``builders`` attribute (``("builders", "pkg.mod")``); the
compiler imports it the first time it meets a symbol it lacks. So a tree compiles in any process
(a worker that only unpickled it, a Ray task), and importing a space never imports torch. The
tree DSL's nodes name :mod:`workbench.dsl.build`; NAS-Bench-201's name
``search_spaces.nb201_torch``. Builders make top-level ``nn.Module`` classes, so compiled models
pickle by name.

Submodule names follow the tree (chains flattened, branches indexed), so the same architecture
always gives the same ``state_dict`` keys.

The lowering pass turns ``routing[im2col(k,s,p), computation[linear(N)], col2im]`` into
``nn.Conv2d(C, N, k, s, p)``: the same parameter count and the same function (the unfold order
matches the conv weight layout), on a fast kernel.

>>> import torch
>>> from workbench.spaces import get_space
>>> arch = get_space("einspace", (3, 8, 8), 10).parse(
...     "sequential[routing[im2col(3,1,1), computation[linear(16)], col2im], computation[relu]]")
>>> model = compile_model(arch)
>>> model(torch.zeros(2, 3, 8, 8)).shape
torch.Size([2, 10])
>>> type(model.backbone[0]).__name__
'Conv2d'
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable

import torch
from torch import nn

from workbench import ops
from workbench.architecture import Architecture, Node
from workbench.errors import InvalidArchitecture

Build = Callable[[Node], nn.Module]
Builder = Callable[[Node, Build], nn.Module]
BUILDERS: dict[str, Builder] = {}


def register(*symbols: str) -> Callable[[Builder], Builder]:
    """Register a builder ``fn(node, build) -> nn.Module`` for node symbols."""
    def deco(fn: Builder) -> Builder:
        for s in symbols:
            BUILDERS[s] = fn
        return fn
    return deco


def _flatten_sequential(node: Node) -> list[Node]:
    out: list[Node] = []
    for child in node.children:
        out.extend(_flatten_sequential(child) if child.symbol == "sequential" else [child])
    return out


def _is_identity(node: Node) -> bool:
    return node.symbol == "identity" or (node.symbol == "computation"
                                         and node.children[0].symbol == "identity")


@register("sequential")
def _sequential(node: Node, build: Build) -> nn.Module:
    steps = [build(c) for c in _flatten_sequential(node) if not _is_identity(c)]
    return ops.Chain(*steps) if steps else nn.Identity()


@register("computation")
def _computation(node: Node, build: Build) -> nn.Module:
    return build(node.children[0])


@register("branching")
def _branching(node: Node, build: Build) -> nn.Module:
    split, *inner, merge = node.children
    k = node.attr("k", len(inner))
    branches = [build(inner[0]) for _ in range(k)] if len(inner) == 1 else [build(c) for c in inner]
    return ops.Branch(build(split), branches, build(merge))


def _lowerable(node: Node) -> bool:
    pre, body, post = node.children
    return (pre.symbol == "im2col" and post.symbol == "col2im" and body.symbol == "computation"
            and body.children[0].symbol == "linear")


@register("routing")
def _routing(node: Node, build: Build) -> nn.Module:
    pre, body, post = node.children
    if getattr(build, "lower", True) and _lowerable(node):
        k, s, p = pre.args
        return nn.Conv2d(pre.in_shape[0], body.out_shape[-1], k, s, p, bias=True)
    steps = [build(c) for c in (pre, body, post) if not _is_identity(c)]
    return ops.Chain(*steps) if steps else nn.Identity()


@register("identity")
def _identity(node: Node, build: Build) -> nn.Module:
    return nn.Identity()


@register("clone")
def _clone(node: Node, build: Build) -> nn.Module:
    return ops.Clone(node.args[0])


@register("group")
def _group(node: Node, build: Build) -> nn.Module:
    return ops.Group(node.args[0], node.args[1])


@register("add")
def _add(node: Node, build: Build) -> nn.Module:
    return ops.Add()


@register("cat")
def _cat(node: Node, build: Build) -> nn.Module:
    return ops.Cat(node.args[0])


@register("dot_product", "scaled_dot_product")
def _dot(node: Node, build: Build) -> nn.Module:
    scale = 1 / math.sqrt(node.in_shape[-1]) if node.symbol == "scaled_dot_product" else 1.0
    return ops.DotProduct(scale)


@register("permute")
def _permute(node: Node, build: Build) -> nn.Module:
    return ops.Permute(tuple(int(c) for c in node.label[len("permute"):]))


@register("im2col")
def _im2col(node: Node, build: Build) -> nn.Module:
    return ops.Im2Col(*node.args)


@register("col2im")
def _col2im(node: Node, build: Build) -> nn.Module:
    return ops.Col2Im(node.out_shape[1], node.out_shape[2])


@register("linear")
def _linear(node: Node, build: Build) -> nn.Module:
    return nn.Linear(node.in_shape[-1], node.out_shape[-1], bias=True)


@register("norm")
def _norm(node: Node, build: Build) -> nn.Module:
    if len(node.in_shape) == 3:
        return nn.BatchNorm2d(node.in_shape[0])
    return nn.LayerNorm(node.in_shape[-1])


@register("relu")
def _relu(node: Node, build: Build) -> nn.Module:
    return nn.ReLU()


@register("softmax")
def _softmax(node: Node, build: Build) -> nn.Module:
    return ops.Softmax()


@register("pos_enc")
def _pos_enc(node: Node, build: Build) -> nn.Module:
    return ops.PosEnc(node.in_shape)


@register("flatten")
def _flatten(node: Node, build: Build) -> nn.Module:
    return nn.Flatten(1)


def builder_for(node: Node) -> Builder | None:
    """The builder registered for ``node.symbol``, importing the module the node names in its
    ``builders`` attribute when none is registered yet; None when neither has one.

    >>> from workbench.architecture import Node
    >>> builder_for(Node("relu", "relu", "op", "act", (4,), (4,))) is BUILDERS["relu"]
    True
    >>> builder_for(Node("zero", "zero", "layer", "e", (4,), (4,), attrs=(("builders",
    ...     "workbench.dsl.build"),))).__module__
    'workbench.dsl.build'
    """
    fn = BUILDERS.get(node.symbol)
    module = node.attr("builders")
    if fn is not None or not module:
        return fn
    try:
        importlib.import_module(module)  # registers its builders
    except ImportError as exc:
        raise InvalidArchitecture(f"at {node.path or 'root'}: expected an importable builder "
                                  f"module for {node.symbol!r}, found {module!r} ({exc})") from None
    fn = BUILDERS.get(node.symbol)
    if fn is None:
        raise InvalidArchitecture(f"at {node.path or 'root'}: expected {module} to register a "
                                  f"builder for {node.symbol!r}, found none after importing it")
    return fn


def _chain(node: Node, build: Build) -> nn.Module:
    """Default for a grammar form without a builder of its own: its slots run in order."""
    steps = [build(c) for c in node.children if not _is_identity(c)]
    return ops.Chain(*steps) if steps else nn.Identity()


def build_backbone(tree: Node, *, lower: bool = True) -> nn.Module:
    """Compile a derivation tree (no head). Forms (nodes with children) without a builder run
    their children in order; an operation without a builder is an error."""
    def build(node: Node) -> nn.Module:
        fn = builder_for(node)
        if fn is None and node.children and node.attr("k") is None:
            return _chain(node, build)
        if fn is None:
            raise InvalidArchitecture(
                f"at {node.path}: expected an operation with a compiler builder, found "
                f"{node.symbol!r} (register one with workbench.compiler.register)")
        return fn(node, build)
    build.lower = lower  # type: ignore[attr-defined]
    return build(tree)


def compile_model(arch: Architecture, *, seed: int = 0, lower: bool = True) -> ops.Network:
    """Backbone + classification head, weights initialised from ``seed`` (global RNG untouched).
    The predicted sizes are checked against the limits first (nothing is allocated for a
    candidate that exceeds them)."""
    from workbench.sizes import check_sizes

    check_sizes(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = build_backbone(arch.tree, lower=lower)
        head = ops.Head(tuple(arch.tree.out_shape), arch.num_classes)
    return ops.Network(backbone, head)

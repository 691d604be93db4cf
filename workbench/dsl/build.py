"""Compiler builders for the tree DSL's node symbols, and the torch modules they make.

The compiler imports this module when it first meets a symbol it has no builder for on a node
made by the DSL (every such node names this module, see :data:`workbench.dsl.core.BUILDERS_MODULE`);
importing it registers the builders below. Reused from :mod:`workbench.compiler` where the
semantics are the same: ``sequential``, ``branching``/``clone``/``add``/``cat`` (split_combine,
residual), ``linear`` (last dim, bias), ``relu``, ``identity``, ``flatten``. The modules below
are torch built-ins or a few lines each, top-level so that compiled models pickle, and plain
enough that an exporter can print them as PyTorch.

>>> import random, torch
>>> from workbench.compiler import compile_model
>>> from workbench.dsl import DSLSpace, conv2d, crelu, global_pool, seq
>>> space = DSLSpace(seq(conv2d(4, 3, 2), crelu(), global_pool()), (1, 5, 5), 8, name="doc")
>>> compile_model(space.sample(random.Random(0)))(torch.zeros(2, 1, 5, 5)).shape
torch.Size([2, 8])
"""

from __future__ import annotations

import torch
from torch import nn

from workbench.architecture import Node
from workbench.compiler import Build, register


class CReLU(nn.Module):
    """cat(relu(x), relu(-x)) on dim 1: doubles the channels/features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([torch.relu(x), torch.relu(-x)], dim=1)  # [B, C, ..] -> [B, 2C, ..]


class GlobalPool(nn.Module):
    """Mean over H, W: [B, C, H, W] -> [B, C]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Zero(nn.Module):
    """Zeros of the input's shape (the zero op outside a cell)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class DagCell(nn.Module):
    """A DAG cell. ``plan[t] = (inputs, vertex)``: the t-th kept vertex applies ``ops[vertex]``
    to the sum of its inputs; an input ``(s, e)`` is state ``s`` (0 = the cell input, t+1 = the
    t-th vertex) through ``ops[e]`` (``e = -1``: as is). ``outputs`` are merged by add or concat;
    with no outputs (the input reaches no edge into the output) the cell gives zeros like x.
    """

    def __init__(self, ops: list[nn.Module], plan: tuple, outputs: tuple, merge: str):
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.plan, self.outputs, self.merge = plan, outputs, merge

    def _read(self, states: list[torch.Tensor], s: int, e: int) -> torch.Tensor:
        return states[s] if e < 0 else self.ops[e](states[s])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = [x]
        for inputs, vertex in self.plan:
            total = sum(self._read(states, s, e) for s, e in inputs)
            states.append(self.ops[vertex](total))
        outs = [self._read(states, s, e) for s, e in self.outputs]
        if not outs:
            return torch.zeros_like(x)
        if self.merge == "concat":
            return torch.cat(outs, dim=1)
        merged = outs[0]
        for out in outs[1:]:
            merged = merged + out
        return merged


@register("conv2d")
def _conv2d(node: Node, build: Build) -> nn.Module:
    c_in, c_out, k, s, p = node.args
    return nn.Conv2d(c_in, c_out, k, s, p, bias=node.attr("bias", True))


@register("batchnorm")
def _batchnorm(node: Node, build: Build) -> nn.Module:
    return nn.BatchNorm2d(node.args[0]) if len(node.in_shape) == 3 else nn.BatchNorm1d(node.args[0])


@register("relu6")
def _relu6(node: Node, build: Build) -> nn.Module:
    return nn.ReLU6()


@register("elu")
def _elu(node: Node, build: Build) -> nn.Module:
    return nn.ELU()


@register("softplus")
def _softplus(node: Node, build: Build) -> nn.Module:
    return nn.Softplus()


@register("tanh")
def _tanh(node: Node, build: Build) -> nn.Module:
    return nn.Tanh()


@register("crelu")
def _crelu(node: Node, build: Build) -> nn.Module:
    return CReLU()


@register("dropout")
def _dropout(node: Node, build: Build) -> nn.Module:
    return nn.Dropout(p=1.0 - node.args[0])


@register("maxpool")
def _maxpool(node: Node, build: Build) -> nn.Module:
    kh, kw, s, p, ceil = node.args
    return nn.MaxPool2d((kh, kw), s, p, ceil_mode=ceil)


@register("avgpool")
def _avgpool(node: Node, build: Build) -> nn.Module:
    kh, kw, s, p, ceil = node.args
    return nn.AvgPool2d((kh, kw), s, p, ceil_mode=ceil, count_include_pad=False)


@register("zero")
def _zero(node: Node, build: Build) -> nn.Module:
    return Zero()


@register("global_pool")
def _global_pool(node: Node, build: Build) -> nn.Module:
    return GlobalPool()


@register("dag_cell")
def _dag_cell(node: Node, build: Build) -> nn.Module:
    return DagCell([build(c) for c in node.children], node.attr("plan"), node.attr("outputs"),
                   node.attr("merge"))

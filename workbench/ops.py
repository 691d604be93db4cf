"""Primitive modules the compiler instantiates. Shapes in comments include the batch dim B."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Chain(nn.Sequential):
    """A flattened run of ``sequential`` modules: x -> m0 -> m1 -> ..."""


class Clone(nn.Module):
    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [x] * self.k


class Group(nn.Module):
    """Split into k equal chunks along ``dim``."""

    def __init__(self, k: int, dim: int):
        super().__init__()
        self.k, self.dim = k, dim

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.chunk(x, self.k, dim=self.dim))


class Add(nn.Module):
    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


class Cat(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=self.dim)


class DotProduct(nn.Module):
    """a @ b, optionally scaled by 1/sqrt(d) with d the contracted size."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        out = torch.matmul(xs[0], xs[1])  # [B, .., n, m] @ [B, .., m, p] -> [B, .., n, p]
        return out * self.scale if self.scale != 1.0 else out


class Branch(nn.Module):
    """split x into k parts, apply one module per part, merge the results."""

    def __init__(self, split: nn.Module, branches: list[nn.Module], merge: nn.Module):
        super().__init__()
        self.split = split
        self.branches = nn.ModuleList(branches)
        self.merge = merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.split(x)
        return self.merge([branch(p) for branch, p in zip(self.branches, parts)])


class Permute(nn.Module):
    def __init__(self, order: tuple[int, ...]):
        super().__init__()
        self.order = (0, *order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.order)


class Im2Col(nn.Module):
    """[B, C, H, W] -> [B, H'*W', C*k*k] (unfold, tokens first)."""

    def __init__(self, kernel: int, stride: int, padding: int):
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cols = F.unfold(x, self.kernel, padding=self.padding, stride=self.stride)  # [B, Ckk, L]
        return cols.transpose(1, 2)


class Col2Im(nn.Module):
    """[B, L, D] -> [B, D, H', W'] with L = H'*W' (the inverse layout of Im2Col)."""

    def __init__(self, h: int, w: int):
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], self.h, self.w)


class PosEnc(nn.Module):
    """Learnable additive positional encoding, one value per non-batch element."""

    def __init__(self, shape: tuple[int, ...]):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, *shape))
        nn.init.trunc_normal_(self.pos, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pos


class Softmax(nn.Softmax):
    def __init__(self):
        super().__init__(dim=-1)


class Head(nn.Module):
    """Classification head: mean over spatial positions (im) or tokens (col), then linear."""

    def __init__(self, in_shape: tuple[int, ...], num_classes: int):
        super().__init__()
        rank = len(in_shape)
        self.pool_dims = (2, 3) if rank == 3 else (1,) if rank == 2 else ()
        features = in_shape[0] if rank == 3 else in_shape[-1] if rank == 2 else math.prod(in_shape)
        self.flatten = rank > 3
        if rank == 1 and features == num_classes:
            self.fc: nn.Module = nn.Identity()  # the space already ends in its own classifier
        else:
            self.fc = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_dims and not self.flatten:
            x = x.mean(dim=self.pool_dims)  # [B, C, H, W] -> [B, C] | [B, L, D] -> [B, D]
        elif self.flatten:
            x = x.flatten(1)
        return self.fc(x)


class Network(nn.Module):
    """backbone (the derived architecture) + classification head."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

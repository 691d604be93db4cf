"""Hand-written PyTorch reference of einspace's resnet18 seed (same structure, same parameters).

Used by the core benchmark (compiled vs hand-written speed) and by a test that checks the compiled
seed has exactly this parameter count. Every conv has a bias because every einspace ``linear`` does.
"""

from __future__ import annotations

import torch
from torch import nn


def conv(cin: int, cout: int, k: int, s: int, p: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, s, p, bias=True)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv(cin, cout, 3, stride, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                                  conv(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout))
        self.shortcut = (nn.Sequential(conv(cin, cout, 1, stride, 0), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(conv(in_channels, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.ReLU(),
                                  conv(64, 64, 3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))  # [B, 512, H/16, W/16]
        return self.fc(x.mean(dim=(2, 3)))

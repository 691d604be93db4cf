"""Training-batch augmentation for image tasks: random crop after zero padding, horizontal flip.

Applied by the trainer to each training batch on the batch's device, with draws from the
trainer's seeded ``torch.Generator`` (the same seed gives the same crops). Inputs are already
normalised, so zero padding pads with the training mean.

>>> x = torch.arange(16.).reshape(1, 1, 4, 4)
>>> gen = torch.Generator().manual_seed(0)
>>> augment_batch(x, ("flip",), 0, gen).shape
torch.Size([1, 1, 4, 4])
>>> y = augment_batch(x.repeat(64, 1, 1, 1), ("crop",), 1, gen)
>>> bool((y == 0).any()), bool((y.sum((1, 2, 3)) != x.sum()).any())  # some crops shifted
(True, True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def augment_batch(x: torch.Tensor, augment: tuple[str, ...], padding: int,
                  gen: torch.Generator) -> torch.Tensor:
    """``x [B, C, H, W]`` with each sample randomly cropped (offsets in ``[-padding, padding]``,
    zero fill) and/or flipped left-right with probability 1/2, as ``augment`` says."""
    b, _, h, w = x.shape
    if "crop" in augment and padding > 0:
        offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=gen).to(x.device)
        padded = F.pad(x, (padding, padding, padding, padding))  # [B, C, H + 2p, W + 2p]
        rows = (offsets[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (offsets[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows, cols]  # [B, C, H, W]: one window per sample
    if "flip" in augment:
        flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    return x

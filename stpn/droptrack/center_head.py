"""OSTrack's centre head: three conv branches on the ``F×F`` search map — target-centre score,
sub-cell centre offset and box size — and the decoding of their maps into one box.

Conventions: boxes are normalised search-crop ``x1, y1, x2, y2``. Cell ``(i, j)`` (row, column)
covers ``[j/F, (j+1)/F) × [i/F, (i+1)/F)``; the centre is ``((j + offset_x)/F, (i + offset_y)/F)``
with the offset in ``[0, 1]`` (sigmoid), and the size ``(w, h)`` is a fraction of the crop
(sigmoid), as in OSTrack. Each branch reuses MixFormer's corner tower
(:func:`stpn.tracking.heads.corner_tower`: four conv-BN-ReLU units then a 1×1 conv), the
architecture OSTrack's centre head has too, with 1 (score) or 2 (offset, size) outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from stpn.tracking.heads import corner_tower


def conv_branch(dim_in: int, channels: int, out_channels: int) -> nn.Sequential:
    """``(B, dim_in, F, F)`` → ``(B, out_channels, F, F)`` logits."""
    tower = corner_tower(dim_in, channels)
    tower[-1] = nn.Conv2d(channels // 8, out_channels, 1)
    return tower


@dataclass
class CenterMaps:
    """``score (B, 1, F, F)`` logits; ``offset``, ``size (B, 2, F, F)`` in ``[0, 1]`` (x, y / w, h)."""

    score: Tensor
    offset: Tensor
    size: Tensor


# CenterNet's prior (Zhou et al., 2019): the score logits start at sigmoid⁻¹(0.1), so the focal
# loss of an untrained map is not dominated by F·F cells at probability 0.5
SCORE_PRIOR_BIAS = -2.19


class CenterHead(nn.Module):
    """``forward(search_map (B, C, F, F)) → CenterMaps``.

    Args:
        dim_in: width ``C`` of the search tokens.
        channels: width of each branch's first conv (halved three times; a multiple of 8).
    """

    def __init__(self, dim_in: int, channels: int = 256) -> None:
        super().__init__()
        if channels < 8 or channels % 8:
            raise ValueError(f"centre head channels must be a positive multiple of 8, got {channels}")
        self.score = conv_branch(dim_in, channels, 1)
        nn.init.constant_(self.score[-1].bias, SCORE_PRIOR_BIAS)
        self.offset = conv_branch(dim_in, channels, 2)
        self.size = conv_branch(dim_in, channels, 2)

    def forward(self, search_map: Tensor) -> CenterMaps:
        return CenterMaps(self.score(search_map), self.offset(search_map).sigmoid(), self.size(search_map).sigmoid())


def hann_window(size: int, device=None, dtype=None) -> Tensor:
    """``(size, size)`` outer product of symmetric Hann windows (OSTrack's test-time penalty on
    large displacements; ``torch.hann_window(periodic=False)``, zero at the border)."""
    w = torch.hann_window(size, periodic=False, device=device, dtype=dtype)
    return w[:, None] * w[None, :]


def decode_boxes(maps: CenterMaps, window: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
    """The box at the score map's peak: ``(boxes (B, 4) xyxy, peak scores (B,) in [0, 1])``.

    ``window (F, F)``: multiplied onto the sigmoid scores before the arg-max (test time); the
    returned score is the unwindowed one at the chosen cell. Gradients reach offset and size
    (the arg-max itself is not differentiable, as in OSTrack).
    """
    b, _, h, w = maps.score.shape
    prob = maps.score.sigmoid().flatten(1)  # (B, F·F)
    ranked = prob * window.flatten()[None].to(prob) if window is not None else prob
    index = ranked.argmax(1)  # (B,)
    rows, cols = index // w, index % w
    gather = index[:, None, None].expand(-1, 2, 1)
    offset = maps.offset.flatten(2).gather(2, gather).squeeze(2)  # (B, 2)
    size = maps.size.flatten(2).gather(2, gather).squeeze(2)
    cx = (cols.to(offset.dtype) + offset[:, 0]) / w
    cy = (rows.to(offset.dtype) + offset[:, 1]) / h
    boxes = torch.stack([cx - size[:, 0] / 2, cy - size[:, 1] / 2, cx + size[:, 0] / 2, cy + size[:, 1] / 2], -1)
    return boxes, prob.gather(1, index[:, None]).squeeze(1)

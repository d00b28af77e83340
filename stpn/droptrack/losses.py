"""DropTrack's (OSTrack's) training losses: weighted focal loss on a Gaussian centre heat map
(weight 1) + GIoU (2) + L1 (5) on the box decoded at the score map's peak.

The box terms are the tracking package's :func:`stpn.tracking.losses.box_losses` (target
clipped to the crop, torchvision's GIoU). Choices where OSTrack's paper is vague:

* heat map: the target centre's cell ``(⌊cy·F⌋, ⌊cx·F⌋)`` (clamped to the grid) is exactly 1,
  the rest a Gaussian around it with one standard deviation per axis, ``max(side·F / 6, 0.5)``
  cells (a box covers about ±3σ), in place of CenterNet's overlap-based radius;
* focal loss: CornerNet's variant (α = 2, β = 4) on the sigmoid scores, computed from the
  logits (``logsigmoid``) for stability, summed over the map and divided by the number of
  positive cells (one per sample); per-sample weights (0 for a negative sample) as for the box
  terms.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from stpn.tracking.losses import GIOU_WEIGHT, L1_WEIGHT, box_losses

FOCAL_WEIGHT = 1.0


def gaussian_heatmap(boxes: Tensor, size: int) -> Tensor:
    """``(B, 4)`` normalised xyxy (clipped to ``[0, 1]``) → ``(B, size, size)`` heat maps, 1 at
    the centre cell (rows = y, columns = x)."""
    boxes = boxes.clamp(0.0, 1.0)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2 * size
    cell = centre.floor().clamp(0, size - 1)  # (B, 2) column, row
    sigma = ((boxes[:, 2:] - boxes[:, :2]) * size / 6).clamp(min=0.5)
    grid = torch.arange(size, device=boxes.device, dtype=boxes.dtype)
    gx = ((grid[None] - cell[:, :1]) / sigma[:, :1]) ** 2  # (B, size)
    gy = ((grid[None] - cell[:, 1:]) / sigma[:, 1:]) ** 2
    return torch.exp(-0.5 * (gy[:, :, None] + gx[:, None, :]))


def focal_loss(score_logits: Tensor, heatmap: Tensor, weight: Optional[Tensor] = None,
               alpha: float = 2.0, beta: float = 4.0) -> Tensor:
    """``score_logits (B, 1, F, F)``, ``heatmap (B, F, F)`` → weighted mean of the per-sample
    focal losses (a scalar)."""
    logits = score_logits.flatten(1)
    heat = heatmap.flatten(1).to(logits.dtype)
    if logits.shape != heat.shape:
        raise ValueError(f"score map {tuple(score_logits.shape)} and heat map {tuple(heatmap.shape)} differ")
    prob = logits.sigmoid()
    positive = heat >= 1.0
    pos = -((1 - prob) ** alpha) * F.logsigmoid(logits)
    neg = -((1 - heat) ** beta) * prob**alpha * F.logsigmoid(-logits)
    per_sample = torch.where(positive, pos, neg).sum(1) / positive.sum(1).clamp(min=1)
    if weight is None:
        weight = torch.ones_like(per_sample)
    return (per_sample * weight).sum() / weight.sum().clamp(min=1e-6)


def droptrack_losses(score_logits: Tensor, boxes: Tensor, target: Tensor, weight: Optional[Tensor] = None,
                     focal_weight: float = FOCAL_WEIGHT, giou_weight: float = GIOU_WEIGHT,
                     l1_weight: float = L1_WEIGHT) -> dict[str, Tensor]:
    """``score_logits (B, 1, F, F)``, decoded ``boxes`` and ``target (B, 4)`` normalised xyxy,
    ``weight (B,)`` → ``{"loss_focal", "loss_giou", "loss_l1"}``, already weighted."""
    heat = gaussian_heatmap(target.to(score_logits.dtype), score_logits.shape[-1])
    losses = {"loss_focal": focal_weight * focal_loss(score_logits, heat, weight)}
    losses.update(box_losses(boxes, target, weight, giou_weight=giou_weight, l1_weight=l1_weight))
    return losses

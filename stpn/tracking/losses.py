"""MixFormer's training losses: ``2.0 · GIoU + 5.0 · L1`` on the boxes (stage 1) and binary
cross-entropy on the score logits (stage 2).

Boxes are normalised crop ``x1, y1, x2, y2``. As in MixFormer (and STARK), the target is clipped
to ``[0, 1]`` (the part of the object inside the search crop); the L1 term is the mean over the
four coordinates and the batch, the GIoU term the mean over the batch. The corner head does not
order its corners, so the GIoU term reads the predicted box with sorted corners (a box is never
inverted for torchvision's GIoU; the L1 term sees the raw corners and pushes them into order).

Not in MixFormer: :func:`corner_map_loss`, an optional dense term on the corner head's maps for
training from scratch (see its docstring).
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import generalized_box_iou_loss

GIOU_WEIGHT = 2.0
L1_WEIGHT = 5.0
SCORE_WEIGHT = 1.0


def ordered_corners(boxes: Tensor) -> Tensor:
    """``(..., 4)`` boxes with ``x1 ≤ x2`` and ``y1 ≤ y2`` (corners swapped where needed)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([torch.minimum(x1, x2), torch.minimum(y1, y2), torch.maximum(x1, x2), torch.maximum(y1, y2)], -1)


def box_losses(
    pred: Tensor, target: Tensor, weight: Optional[Tensor] = None,
    giou_weight: float = GIOU_WEIGHT, l1_weight: float = L1_WEIGHT,
) -> dict[str, Tensor]:
    """``pred``, ``target (B, 4)`` normalised xyxy → ``{"loss_giou", "loss_l1"}``, already
    weighted (their sum is the box loss). ``weight (B,)``: per-sample weights (e.g. 0 for a
    negative sample), the means then run over the weighted samples."""
    if pred.shape != target.shape or pred.dim() != 2 or pred.shape[-1] != 4:
        raise ValueError(f"pred and target must both be (B, 4), got {tuple(pred.shape)} and {tuple(target.shape)}")
    target = target.to(pred.dtype).clamp(0.0, 1.0)
    giou = generalized_box_iou_loss(ordered_corners(pred), target, reduction="none")
    l1 = F.l1_loss(pred, target, reduction="none").mean(-1)
    if weight is None:
        weight = torch.ones_like(giou)
    total = weight.sum().clamp(min=1e-6)
    return {
        "loss_giou": giou_weight * (giou * weight).sum() / total,
        "loss_l1": l1_weight * (l1 * weight).sum() / total,
    }


def corner_target(coords: Tensor, size: int) -> Tensor:
    """``(B,)`` normalised coordinates → ``(B, size)`` target distributions over the cells
    (cell ``i`` at ``i / size``, :mod:`stpn.tracking.heads`): the coordinate, clipped to
    ``[0, (size - 1) / size]``, splits its mass between its two neighbouring cells in linear
    proportion, so the distribution's mean is the clipped coordinate itself."""
    position = coords.clamp(0.0, (size - 1) / size) * size
    low = position.floor().clamp(max=size - 1)
    high = (low + 1).clamp(max=size - 1)
    frac = position - low
    target = coords.new_zeros(coords.shape[0], size)
    target.scatter_add_(1, low.long()[:, None], (1 - frac)[:, None])
    return target.scatter_add_(1, high.long()[:, None], frac[:, None])


def corner_map_loss(
    corner_logits: tuple[Tensor, Tensor], target: Tensor, weight: Optional[Tensor] = None, scale: float = 1.0
) -> dict[str, Tensor]:
    """Cross-entropy of the corner maps against the target corners → ``{"loss_corner"}``.

    ``corner_logits``: top-left and bottom-right ``(B, 1, F, F)`` logits; ``target (B, 4)``
    normalised xyxy (clipped to ``[0, 1]`` first, as for the box losses); ``weight (B,)``
    per-sample weights. Each corner's target is the outer product of :func:`corner_target` along
    x and y; the loss is the two corners' cross-entropies summed, averaged over the batch, times
    ``scale``.

    Why (not in MixFormer, whose pretrained backbone makes the soft-argmax L1/GIoU enough): the
    L1 gradient reaches a cell's logit only through ``p_i (x_i - E[x])``, which is weak while the
    maps are flat, and a from-scratch tracker then settles on a fixed "centre of the crop" box;
    a loss on the whole map tells every cell directly where the corner is. On the built-in
    tracking benchmark this is what turned the tiny tracker from the centre prior into one that
    localises (numbers in the README).
    """
    target = target.clamp(0.0, 1.0)
    if weight is None:
        weight = target.new_ones(target.shape[0])
    per_sample = target.new_zeros(target.shape[0])
    for k, logits in enumerate(corner_logits):
        b, _, h, w = logits.shape
        if tuple(target.shape) != (b, 4):
            raise ValueError(f"target must be (B, 4) = ({b}, 4), got {tuple(target.shape)}")
        wanted = corner_target(target[:, 2 * k + 1].to(logits.dtype), h)[:, :, None] * corner_target(
            target[:, 2 * k].to(logits.dtype), w)[:, None, :]
        per_sample = per_sample - (wanted.flatten(1) * logits.flatten(1).log_softmax(-1)).sum(-1)
    return {"loss_corner": scale * (per_sample * weight).sum() / weight.sum().clamp(min=1e-6)}


def score_loss(logits: Tensor, labels: Tensor, weight: float = SCORE_WEIGHT) -> dict[str, Tensor]:
    """``logits``, ``labels (B,)`` (1 = the target is in the search crop) → ``{"loss_score"}``,
    mean binary cross-entropy with logits."""
    if logits.shape != labels.shape:
        raise ValueError(f"score logits {tuple(logits.shape)} and labels {tuple(labels.shape)} differ in shape")
    return {"loss_score": weight * F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))}


@torch.no_grad()
def mean_iou(pred: Tensor, target: Tensor) -> Tensor:
    """Mean IoU of ``(B, 4)`` predictions with the clipped targets (a readable training metric)."""
    from torchvision.ops import box_iou

    target = target.to(pred.dtype).clamp(0.0, 1.0)
    return box_iou(ordered_corners(pred), target).diagonal().mean()

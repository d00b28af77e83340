"""Segmentation metrics: confusion-matrix mIoU and temporal consistency (TC) as ETC computes it.

Label maps are ``(H, W)`` (or any shape) integer tensors; ``ignore_index`` pixels of the target
are left out. Flow convention: ``flow[:, y, x] = (dx, dy)`` is where the point at pixel centre
``(x, y)`` of frame ``t`` lies in frame ``t + 1`` (forward flow, pixels).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE_INDEX = 255


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> Tensor:
    """``(C, C)`` int64 counts, rows = target class, columns = predicted class; target pixels
    equal to ``ignore_index`` (or outside ``0..C-1``) are skipped."""
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    keep = (target != ignore_index) & (target >= 0) & (target < num_classes)
    pred = pred[keep].clamp(0, num_classes - 1)
    codes = target[keep] * num_classes + pred
    return torch.bincount(codes, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_from_confusion(confusion: Tensor) -> Tensor:
    """Per-class IoU ``(C,)`` float64; NaN for classes absent from both target and prediction."""
    confusion = confusion.double()
    intersection = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.full_like(union, float("nan")))


def mean_iou(confusion: Tensor) -> float:
    """Mean IoU over the classes that occur (target or prediction)."""
    return float(torch.nanmean(iou_from_confusion(confusion)))


def warp_labels(labels_next: Tensor, flow: Tensor, fill: int = IGNORE_INDEX) -> Tensor:
    """Frame ``t + 1``'s labels ``(H, W)`` pulled back into frame ``t`` along ``flow`` ``(2, H, W)``:
    ``out[y, x] = labels_next[y + dy, x + dx]`` by nearest-neighbour ``grid_sample``; points that
    leave the frame get ``fill``."""
    height, width = labels_next.shape
    if flow.shape != (2, height, width):
        raise ValueError(f"flow must be (2, {height}, {width}), got {tuple(flow.shape)}")
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    x = xs + 0.5 + flow[0].float()
    y = ys + 0.5 + flow[1].float()
    grid = torch.stack([2 * x / width - 1, 2 * y / height - 1], dim=-1)[None]  # align_corners=False
    shifted = labels_next.float()[None, None] + 1.0  # 0 marks outside
    warped = F.grid_sample(shifted, grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0]
    out = warped.round().long() - 1
    out[warped < 0.5] = fill
    return out


class TemporalConsistency:
    """TC as ETC (Liu et al., "Efficient semantic video segmentation with per-frame inference")
    computes it: for each pair (t, t + 1) the prediction of ``t + 1`` is warped into ``t`` with
    the flow and compared with the prediction of ``t``; per-class intersections and unions are
    summed over all pairs of all videos, and TC is the mean IoU over classes with a non-empty
    union. Warped pixels from outside the frame (and optional ``valid`` == False pixels, e.g.
    occlusions) are left out."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, pred_t: Tensor, pred_next: Tensor, flow: Tensor, valid: Tensor | None = None) -> None:
        """Add one pair: predictions ``(H, W)`` of frames ``t`` and ``t + 1``, flow ``(2, H, W)``."""
        warped = warp_labels(pred_next, flow)
        if valid is not None:
            warped = torch.where(valid.bool(), warped, torch.full_like(warped, IGNORE_INDEX))
        self.confusion += confusion_matrix(pred_t, warped, self.num_classes)

    def compute(self) -> float:
        """The TC over every pair added (NaN if none)."""
        if int(self.confusion.sum()) == 0:
            return float("nan")
        return mean_iou(self.confusion)

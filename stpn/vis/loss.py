"""Mask2Former's set loss (transformers' ``Mask2FormerLoss``), with the mask count reduced over
processes under plain DDP.

Per frame, the Hungarian matcher assigns queries to the ground-truth instances on the cost
``class 2 · (−p_class) + mask 5 · BCE + dice 5 · dice`` over 12544 random points; the loss is
cross-entropy over classes + no-object (weight 0.1) and, on the matched pairs, BCE and dice on
12544 points of which 75 % are the most uncertain of 3 × 12544 candidates. Every auxiliary
prediction (the learnable queries' and every decoder layer's but the last) is matched anew.
The BCE and dice terms are divided by the mean number of instances per process: transformers
reduces that count only through ``accelerate``, so :func:`mean_mask_count` does it with
``torch.distributed`` when a process group is running.

:class:`SetCriterion` returns the weighted terms summed over the decoder stages:
``{"loss_ce", "loss_mask", "loss_dice"}`` (scalars; the engine adds them up).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss

TERMS = {"loss_cross_entropy": "loss_ce", "loss_mask": "loss_mask", "loss_dice": "loss_dice"}


def mean_mask_count(local_count: float, device: torch.device) -> Tensor:
    """The number of target masks averaged over the processes of the running group (this
    process's count alone without one), at least 1: a scalar float tensor on ``device``."""
    count = torch.as_tensor(float(local_count), dtype=torch.float32, device=device)
    world = 1
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(count)
        world = dist.get_world_size()
    return torch.clamp(count / world, min=1.0)


class _DistributedMask2FormerLoss(Mask2FormerLoss):
    """``Mask2FormerLoss`` whose mask count is averaged over the torch.distributed group;
    ``count``, when set, is used instead (one all-reduce per batch, not one per decoder stage)."""

    count: Optional[Tensor] = None

    def get_num_masks(self, class_labels: Sequence[Tensor], device: torch.device) -> Tensor:
        if self.count is not None:
            return self.count
        return mean_mask_count(sum(len(c) for c in class_labels), device)


class SetCriterion(nn.Module):
    """Losses of one batch of frames.

    ``outputs``: :class:`~stpn.vis.head.Mask2FormerHead` outputs (lists over decoder stages of
    ``class_logits (B, Q, C + 1)`` and ``mask_logits (B, Q, h, w)``); ``targets``: per frame
    ``{"masks": (M, H, W) bool/float, "labels": (M,) int64 in 0..C-1}`` (``M`` may be 0)."""

    def __init__(self, config: Mask2FormerConfig) -> None:
        super().__init__()
        self.weights = {"loss_cross_entropy": config.class_weight, "loss_mask": config.mask_weight,
                        "loss_dice": config.dice_weight}
        self.loss = _DistributedMask2FormerLoss(config, self.weights)

    def forward(self, outputs: dict[str, list[Tensor]], targets: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
        masks = [t["masks"].float() for t in targets]
        labels = [t["labels"].long() for t in targets]
        class_logits = [c.float() for c in outputs["class_logits"]]
        mask_logits = [m.float() for m in outputs["mask_logits"]]
        aux = [{"class_queries_logits": c, "masks_queries_logits": m}
               for c, m in zip(class_logits[:-1], mask_logits[:-1])]
        self.loss.count = mean_mask_count(sum(len(c) for c in labels), class_logits[-1].device)
        try:
            raw = self.loss(mask_logits[-1], class_logits[-1], masks, labels, auxiliary_predictions=aux)
        finally:
            self.loss.count = None
        totals = {name: class_logits[-1].new_zeros(()) for name in TERMS.values()}
        for key, value in raw.items():
            base = next(term for term in TERMS if key == term or key.startswith(term + "_"))
            totals[TERMS[base]] = totals[TERMS[base]] + self.weights[base] * value
        return totals

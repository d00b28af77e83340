"""Query selection of STT: which positions of the current frame get temporal help.

The main paper's definition is not available; the supplementary shows the selected positions on
*semantic* boundaries (not colour or object edges) with a neighbouring ratio r = 5. Our
definition (stated here because it is a choice):

* the current frame's per-frame prediction (argmax of the PSP decoder on its own encoder
  features, no gradient) labels each feature-map position;
* a position's boundary score is the share of the other positions of its r × r neighbourhood
  (clipped at the frame border) whose label differs from its own, plus 0.001 × (1 − its top
  softmax probability) to break ties, so that uncertain positions come first when the map has
  no boundary at all (e.g. early in training);
* the ``count`` positions with the highest scores are the queries. A fixed count keeps batches
  rectangular and makes the random ablation (:func:`random_queries`, same count) fair.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

NEIGHBOURING_RATIO = 5
QUERY_FRACTION = 0.25
SELECTIONS = ("boundary", "random")


def query_count(height: int, width: int, fraction: float = QUERY_FRACTION) -> int:
    """Queries per frame: ``ceil(fraction · h · w)``, at least 1, at most ``h · w``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"query fraction must be in (0, 1], got {fraction}")
    return min(max(1, math.ceil(fraction * height * width)), height * width)


def boundary_scores(labels: Tensor, num_classes: int, ratio: int = NEIGHBOURING_RATIO) -> Tensor:
    """``(B, h, w)`` labels → ``(B, h, w)`` share in [0, 1] of the r × r neighbours (the position
    itself excluded, positions outside the frame not counted) with another label."""
    if ratio < 1 or ratio % 2 == 0:
        raise ValueError(f"the neighbouring ratio must be an odd positive integer, got {ratio}")
    one_hot = F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float()
    ones = torch.ones_like(one_hot[:, :1])
    kernel = torch.ones(1, 1, ratio, ratio, device=labels.device)
    counts = F.conv2d(one_hot.flatten(0, 1)[:, None], kernel, padding=ratio // 2).reshape(one_hot.shape)
    total = F.conv2d(ones, kernel, padding=ratio // 2)[:, 0]  # neighbours inside the frame, self included
    same = counts.gather(1, labels.long()[:, None])[:, 0]
    return (total - same) / (total - 1).clamp_min(1)


def boundary_queries(logits: Tensor, count: int, ratio: int = NEIGHBOURING_RATIO) -> Tensor:
    """Flat indices ``(B, count)`` of the selected positions for logits ``(B, C, h, w)``."""
    probs = logits.detach().softmax(1)
    confidence, labels = probs.max(1)
    score = boundary_scores(labels, logits.shape[1], ratio) + 1e-3 * (1 - confidence)
    return score.flatten(1).topk(count, dim=1).indices


def random_queries(batch: int, height: int, width: int, count: int, device: torch.device,
                   generator: Optional[torch.Generator] = None) -> Tensor:
    """``count`` distinct random positions per sample: ``(B, count)`` flat indices."""
    scores = torch.rand(batch, height * width, generator=generator, device="cpu").to(device)
    return scores.topk(count, dim=1).indices

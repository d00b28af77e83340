"""SELSA's box head: key-frame RoI features enhanced by relation attention over support RoIs.

SELSA (Wu et al., "Sequence Level Semantics Aggregation for Video Object Detection", ICCV 2019)
keeps Faster R-CNN and changes only the box head: after each of its two FC layers, the features
of the key frame's RoIs attend to the features of proposals from support frames (semantic
similarity, 16 heads, :class:`~stpn.prompts.relation.RelationAttention`) and the result is added
back (residual) before the ReLU::

    x = relu(fc6(x) + A6(fc6(x), s6)),   x = relu(fc7(x) + A7(fc7(x), s7))
    s6 = fc6(s),   s7 = fc7(relu(s6))      (support RoIs go through the same FCs, no attention)

The support features are *not* aggregated among themselves (as in mmtracking's SELSA head, the
OpenMMLab implementation with 16-head released configs), so a frame's support features depend on
that frame only and can be cached per frame at inference.

How it plugs into torchvision's unchanged ``RoIHeads`` (sampling, losses, predictor, NMS):
``RoIHeads`` calls ``box_head(box_roi_pool(features, proposals, image_shapes))``. The detector
passes :class:`FeaturesWithSupport` (the FPN maps, carrying the packed support RoIs);
:class:`SelsaRoIPool` pools the key RoIs as before and hands the head a :class:`KeyRoIs` bundle
(pooled features, RoIs per image, support). A plain tensor or a bundle without support gives
exactly torchvision's ``TwoMLPHead`` (same parameter names ``fc6`` / ``fc7``).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pad_sequence
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import MultiScaleRoIAlign

from stpn.prompts.relation import RelationAttention

NUM_LAYERS = 2  # fc6, fc7


@dataclass
class SupportRoIs:
    """Packed support RoI features per clip: ``features`` (2, B, M, R) after fc6 and after fc7
    (pre-activation), ``mask`` (B, M) bool, True for real RoIs (False for padding)."""

    features: Tensor
    mask: Tensor


class FeaturesWithSupport(OrderedDict):
    """The key frames' FPN maps (an ordinary ``OrderedDict`` of maps for the RPN and RoIAlign)
    that also carry ``support`` (:class:`SupportRoIs` or None) to the SELSA head."""

    def __init__(self, maps: "OrderedDict[str, Tensor]", support: Optional[SupportRoIs]) -> None:
        super().__init__(maps)
        self.support = support


@dataclass
class KeyRoIs:
    """Pooled key-frame RoIs ``(N, C, h, w)`` (all images concatenated), the number of RoIs per
    image (summing to N) and the support RoIs of each image's clip (or None)."""

    pooled: Tensor
    counts: list[int]
    support: Optional[SupportRoIs]


class SelsaRoIPool(nn.Module):
    """torchvision's RoIAlign (``pool``) plus the bookkeeping the SELSA head needs."""

    def __init__(self, pool: MultiScaleRoIAlign) -> None:
        super().__init__()
        self.pool = pool

    def forward(self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes) -> KeyRoIs:
        pooled = self.pool(features, proposals, image_shapes)
        return KeyRoIs(pooled, [len(p) for p in proposals], getattr(features, "support", None))


class SelsaBoxHead(nn.Module):
    """``TwoMLPHead`` with a relation attention after fc6 and after fc7 (residual add).

    ``forward(KeyRoIs or (N, C, h, w)) → (N, R)``; ``support_features((M, C, h, w)) →
    (2, M, R)``, the per-layer features support RoIs contribute.
    """

    def __init__(self, in_channels: int, representation_size: int = 1024, num_heads: int = 16) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_channels, representation_size)
        self.fc7 = nn.Linear(representation_size, representation_size)
        self.aggregators = nn.ModuleList(RelationAttention(representation_size, num_heads) for _ in range(NUM_LAYERS))

    def support_features(self, pooled: Tensor) -> Tensor:
        x, out = pooled.flatten(1), []
        for fc in (self.fc6, self.fc7):
            x = fc(x)
            out.append(x)
            x = F.relu(x)
        return torch.stack(out)

    def forward(self, rois: Union[KeyRoIs, Tensor]) -> Tensor:
        if isinstance(rois, Tensor):
            rois = KeyRoIs(rois, [rois.shape[0]], None)
        x = rois.pooled.flatten(1)
        for layer, (fc, aggregator) in enumerate(zip((self.fc6, self.fc7), self.aggregators)):
            x = fc(x)
            if rois.support is not None:
                x = x + _aggregate(aggregator, x, rois.counts, rois.support.features[layer], rois.support.mask)
            x = F.relu(x)
        return x


def _aggregate(attention: RelationAttention, x: Tensor, counts: list[int], support: Tensor, mask: Tensor) -> Tensor:
    """Relation attention of each image's RoIs ``x`` (N, R) over its clip's support (B, M, R).

    Clips without any valid support RoI get zero (their RoIs keep the plain head's features)."""
    if len(counts) != mask.shape[0]:
        raise ValueError(f"support RoIs for {mask.shape[0]} clips, but RoIs of {len(counts)} images")
    if x.shape[0] == 0:
        return torch.zeros_like(x)
    queries = pad_sequence(list(x.split(counts)), batch_first=True)  # (B, N_max, R)
    has = mask.any(dim=1)
    if bool(has.all()):
        out = attention(queries, support, mask)
    else:
        out = queries.new_zeros(queries.shape)
        if bool(has.any()):
            out[has] = attention(queries[has], support[has], mask[has])
    return torch.cat([out[b, :n] for b, n in enumerate(counts)])


def pack_support(clips: Sequence[Sequence[Tensor]]) -> Optional[SupportRoIs]:
    """Per clip, per support frame ``(2, n_f, R)`` features → :class:`SupportRoIs` padded to the
    longest clip (M = max Σ n_f). A clip may have no frames; None if no clip has any RoI."""
    flat = [torch.cat(list(frames), dim=1) if len(frames) else None for frames in clips]
    template = next((f for f in flat if f is not None and f.shape[1] > 0), None)
    if template is None:
        return None
    empty = template.new_zeros(template.shape[0], 0, template.shape[2])
    flat = [empty if f is None else f for f in flat]
    lengths = torch.tensor([f.shape[1] for f in flat], device=template.device)
    features = pad_sequence([f.transpose(0, 1) for f in flat], batch_first=True)  # (B, M, 2, R)
    mask = torch.arange(features.shape[1], device=template.device)[None] < lengths[:, None]
    return SupportRoIs(features.permute(2, 0, 1, 3), mask)


def make_selsa_roi_heads(roi_heads: RoIHeads, num_heads: int = 16) -> RoIHeads:
    """Turn torchvision ``RoIHeads`` with a ``TwoMLPHead`` into SELSA's, in place: RoIAlign wrapped
    by :class:`SelsaRoIPool`, box head replaced by :class:`SelsaBoxHead` of the same sizes."""
    plain = roi_heads.box_head
    if not isinstance(roi_heads.box_roi_pool, MultiScaleRoIAlign) or not hasattr(plain, "fc6"):
        raise ValueError("expected torchvision RoIHeads with MultiScaleRoIAlign and TwoMLPHead")
    roi_heads.box_roi_pool = SelsaRoIPool(roi_heads.box_roi_pool)
    roi_heads.box_head = SelsaBoxHead(plain.fc6.in_features, plain.fc6.out_features, num_heads)
    return roi_heads

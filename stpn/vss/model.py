"""PSPNet18 with or without STT, as one module the shared engine trains.

``temporal=False`` is the per-frame baseline. ``temporal=True``: the current frame's stage-4
features are decoded once (no gradient) to pick the queries (:mod:`stpn.vss.query_selection`),
the STT adds context from the key frames' stage-4 features at those positions, and the decoder
runs again on the enhanced features. Key-frame features are computed without gradient (in
inference they come from memory, :class:`stpn.vss.inference.StreamingSegmenter`).

Training batch: clips ``(B, T, 3, H, W)`` (the last frame is the current one, the ``T - 1``
before it its key frames; the baseline only reads the last frame) and labels ``(B, H, W)`` of
the current frame (255 = ignore). Loss: cross-entropy on the logits upsampled to ``H × W``
plus 0.4 × the auxiliary head's.

Unlabelled frames (the second training phase on Cityscapes / CamVid, :mod:`stpn.vss.train`; the
supplementary says only that the last 40k of the 80k iterations use "both labeled and unlabeled
data"): a sample whose ``labelled`` flag is False is trained on pseudo-labels, the model's own
detached prediction for that frame (the full model's, with STT) where its softmax confidence is
at least ``PSEUDO_LABEL_CONFIDENCE``, ignored elsewhere; the same targets serve the auxiliary head.
Its key frames are the frames before it, as for a labelled frame.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stpn.vss.metrics import IGNORE_INDEX
from stpn.vss.pspnet import AUX_WEIGHT, PSPNet18
from stpn.vss.query_selection import SELECTIONS, boundary_queries, query_count, random_queries
from stpn.vss.stt import SparseTemporalTransformer

PSEUDO_LABEL_CONFIDENCE = 0.9


class VideoSegmenter(nn.Module):
    def __init__(self, num_classes: int, temporal: bool = True, selection: str = "boundary",
                 query_fraction: float = 0.25, num_key_frames: int = 7, dim: int = 128, heads: int = 4,
                 weights: Optional[Union[str, Path]] = None) -> None:
        super().__init__()
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        query_count(1, 1, query_fraction)  # checks the fraction
        self.num_classes = num_classes
        self.selection = selection
        self.query_fraction = query_fraction
        self.num_key_frames = num_key_frames if temporal else 0
        self.psp = PSPNet18(num_classes, weights)
        self.stt = SparseTemporalTransformer(self.psp.feature_channels, dim, heads, num_key_frames) if temporal else None

    @property
    def temporal(self) -> bool:
        return self.stt is not None

    def select_queries(self, features: Tensor) -> Tensor:
        """Flat query indices ``(B, N)`` for current features ``(B, C, h, w)``."""
        batch, _, height, width = features.shape
        count = query_count(height, width, self.query_fraction)
        if self.selection == "random":
            return random_queries(batch, height, width, count, features.device)
        with torch.no_grad():
            first_pass = self.psp.decode(features)
        return boundary_queries(first_pass, count)

    def segment(self, images: Tensor, key_features: Sequence[Tensor] = ()) -> dict[str, Tensor]:
        """Images ``(B, 3, H, W)`` and up to ``num_key_frames`` stage-4 maps (nearest first) →
        ``logits`` and ``aux`` ``(B, C, H/8, W/8)``, the frame's own ``features`` (to remember as
        a key frame) and, with STT, the ``queries`` ``(B, N)``."""
        stage3, features = self.psp.encode(images)
        out = {"features": features, "aux": self.psp.aux_head(stage3)}
        enhanced = features
        if self.temporal and len(key_features):
            queries = self.select_queries(features)
            enhanced = self.stt(features, list(key_features)[: self.num_key_frames], queries)
            out["queries"] = queries
        out["logits"] = self.psp.decode(enhanced)
        return out

    def key_features(self, clips: Tensor) -> list[Tensor]:
        """The stage-4 features of a clip's frames before the last, nearest first, no gradient."""
        if not self.temporal or clips.shape[1] < 2:
            return []
        previous = clips[:, :-1].flip(1)[:, : self.num_key_frames]
        with torch.no_grad():
            _, features = self.psp.encode(previous.flatten(0, 1))
        return list(features.unflatten(0, previous.shape[:2]).unbind(1))

    def forward(self, clips: Tensor, labels: Tensor, labelled: Optional[Tensor] = None) -> dict[str, Tensor]:
        """Training losses ``{"seg": ..., "aux": ...}`` (the aux term already weighted by 0.4);
        ``labelled`` ``(B,)`` bool: False rows are trained on pseudo-labels (module docstring)."""
        if clips.ndim != 5:
            raise ValueError(f"clips must be (B, T, 3, H, W), got {tuple(clips.shape)}")
        out = self.segment(clips[:, -1], self.key_features(clips))
        size = labels.shape[-2:]
        logits = F.interpolate(out["logits"], size=size, mode="bilinear", align_corners=False)
        aux = F.interpolate(out["aux"], size=size, mode="bilinear", align_corners=False)
        labels = labels.long()
        if labelled is not None and not bool(labelled.all()):
            labels = torch.where(labelled.view(-1, 1, 1), labels, pseudo_labels(logits))
        return {"seg": masked_cross_entropy(logits, labels), "aux": AUX_WEIGHT * masked_cross_entropy(aux, labels)}


def masked_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over the pixels not labelled 255; 0 (not NaN) when every pixel is
    ignored (a crop of padding, an unlabelled frame without a confident pixel)."""
    total = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp_min(1)


def pseudo_labels(logits: Tensor, confidence: float = PSEUDO_LABEL_CONFIDENCE) -> Tensor:
    """Logits ``(B, C, H, W)`` → detached argmax ``(B, H, W)``, 255 where the top softmax
    probability is below ``confidence``."""
    with torch.no_grad():
        top, classes = logits.softmax(1).max(1)
        return torch.where(top >= confidence, classes, torch.full_like(classes, IGNORE_INDEX))


def build_segmenter(num_classes: int, temporal: bool = True, selection: str = "boundary",
                    query_fraction: float = 0.25, num_key_frames: int = 7, dim: int = 128, heads: int = 4,
                    weights: Optional[Union[str, Path]] = None) -> VideoSegmenter:
    """The factory the configs and run directories name (same arguments as the class)."""
    return VideoSegmenter(num_classes, temporal, selection, query_fraction, num_key_frames, dim, heads, weights)

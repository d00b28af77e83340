"""Faster R-CNN for video: a (prompt-aware) backbone + norms/FPN + torchvision RPN and RoI heads.

With STPN the support frames travel with the key frame (:class:`~stpn.detection.clip_batch.ClipBatch`);
only the backbone sees them, the heads stay the unchanged image detector's (paper §4.3).
"""
from __future__ import annotations

from typing import Optional, Union

from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork

from stpn.detection.clip_batch import ClipBatch
from stpn.detection.neck import NormFPN
from stpn.prompts.stpn import STPN


class VideoFasterRCNN(nn.Module):
    """``forward(batch, targets)`` → loss dict (training) or detections (eval).

    Args:
        extractor: an :class:`~stpn.prompts.stpn.STPN` model (video detector) or a bare
            prompt-aware backbone (per-frame baseline; support frames are ignored).
        neck: per-stage norms + FPN. ``rpn``, ``roi_heads``: torchvision modules.

    Targets follow torchvision: per key frame ``{"boxes": (M, 4) xyxy, "labels": (M,) int64}``
    with labels 1..num_classes (0 is background). Detections are in the key frame's pixel
    coordinates (the clip batch only pads, it never rescales).
    """

    def __init__(
        self,
        extractor: Union[STPN, nn.Module],
        neck: NormFPN,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
    ) -> None:
        super().__init__()
        self.extractor = extractor
        self.neck = neck
        self.rpn = rpn
        self.roi_heads = roi_heads

    uses_selsa = False  # SELSA box-head aggregation (stpn.detection.selsa_detector)

    @property
    def uses_prompts(self) -> bool:
        return isinstance(self.extractor, STPN)

    @property
    def backbone_prefix(self) -> str:
        """Dotted name of the backbone's parameters (``extractor.backbone`` under STPN, whose
        predictor sits beside it; ``extractor`` for the per-frame detector), the key for a
        backbone learning-rate multiplier (``TrainConfig.lr_multipliers``) that means the same
        weights in both detectors."""
        return "extractor.backbone" if self.uses_prompts else "extractor"

    def features(self, batch: ClipBatch) -> dict[str, Tensor]:
        """FPN maps of the key frames (with prompts from the support frames under STPN)."""
        images = batch.images.tensors
        if self.uses_prompts:
            maps = self.extractor(images, batch.support, batch.mask)
        else:
            maps = self.extractor.forward_features(images)
        return self.neck(maps)

    def forward(self, batch: ClipBatch, targets: Optional[list[dict[str, Tensor]]] = None):
        if self.training and targets is None:
            raise ValueError("targets are required in training mode")
        if self.uses_prompts and batch.support is None:
            raise ValueError("this STPN detector needs support frames (use copies of the key frame for still images)")
        return self.heads(batch.images, self.features(batch), targets)

    def heads(self, images: ImageList, features: dict[str, Tensor], targets=None):
        """RPN + RoI heads on FPN maps: loss dict (training) or per-image detections."""
        proposals, rpn_losses = self.rpn(images, features, targets)
        detections, roi_losses = self.roi_heads(features, proposals, images.image_sizes, targets)
        if self.training:
            return {**rpn_losses, **roi_losses}
        return detections

    def detect_from_maps(self, maps: list[Tensor], image_sizes: list[tuple[int, int]], padded_size: tuple[int, int]):
        """Detections from backbone stage maps ``[(B, C_i, H_i, W_i)]`` computed elsewhere (the
        streaming extractor); ``padded_size`` is the (H, W) of the padded input frames."""
        if self.training:
            raise ValueError("detect_from_maps is for inference; call model.eval() first")
        return self.heads(placeholder_images(maps[0], image_sizes, padded_size), self.neck(maps))


def placeholder_images(ref: Tensor, image_sizes: list[tuple[int, int]], padded_size: tuple[int, int]) -> ImageList:
    """An ``ImageList`` with the right shape and sizes but no pixels (the heads read only shapes)."""
    placeholder = ref.new_zeros(1).expand(len(image_sizes), 3, *padded_size)
    return ImageList(placeholder, list(image_sizes))

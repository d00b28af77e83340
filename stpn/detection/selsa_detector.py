"""SELSA video detector: Faster R-CNN whose box head aggregates RoIs of support-frame proposals.

Support RoIs (choices where SELSA / the STPN paper leave it open):

* Support frames go through the **plain shared backbone** (no prompts, also under STPN) + the
  same norms/FPN, **with gradients** in training, as SELSA (mmtracking) does. Under STPN the
  predicting stage embeds the support frames a second time (unprompted, no_grad) for the
  prompts; prompting the support frames would need support frames of their own.
* Their proposals are the RPN's top ``support_proposals`` (300, mmtracking's SELSA) after NMS,
  from the RPN's current (training / testing) pre/post-NMS setting, no RPN loss.
* Training: the references are the support frames' RoIs only. Evaluation (``model.eval()``,
  also :meth:`detect_from_maps`): the key frame's own top proposals join them, as SELSA's test
  mode does (mmtracking appends the key frame to the reference frames), taken from the key
  frame's own (under STPN: prompted) maps.

Masked support frames (``ClipBatch.mask`` False) contribute no RoIs; a clip left without any
support RoI is detected by the plain box head (zero aggregation).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, concat_box_prediction_layers

from stpn.detection.clip_batch import ClipBatch
from stpn.detection.detector import VideoFasterRCNN, placeholder_images
from stpn.detection.neck import NormFPN
from stpn.detection.selsa import FeaturesWithSupport, SelsaBoxHead, SelsaRoIPool, pack_support


@torch.no_grad()
def top_proposals(rpn: RegionProposalNetwork, images: ImageList, features: dict[str, Tensor], top_n: int) -> list[Tensor]:
    """The RPN's proposals (its own pre-NMS / NMS / post-NMS filtering) cut to the ``top_n``
    highest-scoring per image, without losses: ``[(n_i ≤ top_n, 4)]`` xyxy."""
    maps = list(features.values())
    objectness, deltas = rpn.head(maps)
    anchors = rpn.anchor_generator(images, maps)
    per_level = [o[0].numel() for o in objectness]
    objectness, deltas = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(deltas, anchors).view(len(anchors), -1, 4)
    boxes, _ = rpn.filter_proposals(proposals, objectness, images.image_sizes, per_level)
    return [b[:top_n] for b in boxes]  # filter_proposals keeps them sorted by score


class SelsaFasterRCNN(VideoFasterRCNN):
    """:class:`VideoFasterRCNN` + SELSA: ``forward(batch, targets)`` as the plain detector (loss
    dict or detections), but the clip's support frames also feed the box head.

    Args: as :class:`VideoFasterRCNN` (``roi_heads`` from
    :func:`stpn.detection.selsa.make_selsa_roi_heads`); ``support_proposals``: RoIs per support
    frame.
    """

    uses_selsa = True

    def __init__(
        self,
        extractor: nn.Module,
        neck: NormFPN,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
        support_proposals: int = 300,
    ) -> None:
        super().__init__(extractor, neck, rpn, roi_heads)
        if not isinstance(roi_heads.box_head, SelsaBoxHead) or not isinstance(roi_heads.box_roi_pool, SelsaRoIPool):
            raise ValueError("SelsaFasterRCNN needs SELSA RoI heads (stpn.detection.selsa.make_selsa_roi_heads)")
        if support_proposals < 1:
            raise ValueError(f"support_proposals must be >= 1, got {support_proposals}")
        self.support_proposals = support_proposals

    @property
    def backbone(self) -> nn.Module:
        """The shared backbone, run without prompts on support frames."""
        return self.extractor.backbone if self.uses_prompts else self.extractor

    def frame_support(self, images: ImageList, fpn: dict[str, Tensor]) -> list[Tensor]:
        """Support features ``[(2, n_f, R)]`` of frames whose FPN maps are ``fpn``."""
        boxes = top_proposals(self.rpn, images, fpn, self.support_proposals)
        pooled = self.roi_heads.box_roi_pool.pool(fpn, boxes, images.image_sizes)
        return list(self.roi_heads.box_head.support_features(pooled).split([len(b) for b in boxes], dim=1))

    def support_frames(self, frames: Tensor, image_sizes: Sequence[tuple[int, int]]) -> list[Tensor]:
        """Normalised, padded frames ``(F, 3, H, W)`` with true sizes → ``[(2, n_f, R)]``."""
        fpn = self.neck(self.backbone.forward_features(frames))
        return self.frame_support(ImageList(frames, list(image_sizes)), fpn)

    def forward(self, batch: ClipBatch, targets: Optional[list[dict[str, Tensor]]] = None):
        if self.training and targets is None:
            raise ValueError("targets are required in training mode")
        if batch.support is None:
            raise ValueError("this SELSA detector needs support frames (use copies of the key frame for still images)")
        b, k = batch.support.shape[:2]
        sizes = [size for size in batch.images.image_sizes for _ in range(k)]
        per_frame = self.support_frames(batch.support.flatten(0, 1), sizes)
        valid = batch.mask.tolist() if batch.mask is not None else [[True] * k] * b
        clips = [[f for f, ok in zip(per_frame[i * k : (i + 1) * k], valid[i]) if ok] for i in range(b)]
        return self._heads_with_support(batch.images, self.features(batch), clips, targets)

    def detect_from_maps(
        self,
        maps: list[Tensor],
        image_sizes: list[tuple[int, int]],
        padded_size: tuple[int, int],
        support: Optional[Sequence[Sequence[Tensor]]] = None,
    ):
        """As :meth:`VideoFasterRCNN.detect_from_maps`, with ``support``: per key frame, the
        support features ``[(2, n_f, R)]`` of its support frames (:meth:`support_frames`)."""
        if self.training:
            raise ValueError("detect_from_maps is for inference; call model.eval() first")
        images = placeholder_images(maps[0], image_sizes, padded_size)
        support = support if support is not None else [[] for _ in image_sizes]
        if len(support) != len(image_sizes):
            raise ValueError(f"support for {len(support)} key frames, maps of {len(image_sizes)}")
        return self._heads_with_support(images, self.neck(maps), [list(s) for s in support])

    def _heads_with_support(self, images: ImageList, fpn, clips: list[list[Tensor]], targets=None):
        if not self.training:  # SELSA's test mode: the key frame is one of its references
            clips = [clip + [own] for clip, own in zip(clips, self.frame_support(images, fpn))]
        return self.heads(images, FeaturesWithSupport(fpn, pack_support(clips)), targets)

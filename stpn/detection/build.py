"""Plain factory functions that assemble the video detectors (no registry)."""
from __future__ import annotations

from typing import Optional, Sequence

from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead

from stpn.backbones.swin import build_swin
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.neck import NormFPN
from stpn.detection.roi_align import SeparableMultiScaleRoIAlign
from stpn.detection.selsa import make_selsa_roi_heads
from stpn.detection.selsa_detector import SelsaFasterRCNN
from stpn.prompts.build import build_predictor, support_tokens
from stpn.prompts.stpn import STPN

def fpn_levels(num_maps: int) -> tuple[str, ...]:
    """The FPN's names of a backbone's ``num_maps`` stage maps (RoIAlign pools from these)."""
    return tuple(str(i) for i in range(num_maps))


def build_faster_rcnn_heads(
    num_classes: int,
    channels: int = 256,
    anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
    representation_size: int = 1024,
    rpn_batch_size_per_image: int = 256,
    box_batch_size_per_image: int = 512,
    box_score_thresh: float = 0.05,
    box_detections_per_img: int = 100,
    rpn_pre_nms_top_n: tuple[int, int] = (2000, 1000),
    rpn_post_nms_top_n: tuple[int, int] = (2000, 1000),
    num_maps: int = 4,
) -> tuple[RegionProposalNetwork, RoIHeads]:
    """torchvision's standard FPN Faster R-CNN heads: one anchor size per FPN level
    (P2–P6 for ``num_maps = 4`` backbone maps: the maps and the FPN's extra max-pooled level) with
    aspect ratios 0.5/1/2, RoIAlign 7×7 on the backbone maps' levels (P2–P5; torchvision's kernel
    on the GPU, :mod:`stpn.detection.roi_align`'s equal and faster one on the CPU), two 1024-d FC layers and a
    (num_classes + 1)-way classifier with class-specific box regression.
    ``rpn_pre_nms_top_n`` / ``rpn_post_nms_top_n`` are (training, testing) counts."""
    levels = fpn_levels(num_maps)
    if len(anchor_sizes) != len(levels) + 1:
        raise ValueError(f"need one anchor size per FPN level ({len(levels) + 1}), got {len(anchor_sizes)}")
    anchors = AnchorGenerator(tuple((s,) for s in anchor_sizes), ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    rpn = RegionProposalNetwork(
        anchors,
        RPNHead(channels, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=rpn_batch_size_per_image,
        positive_fraction=0.5,
        pre_nms_top_n={"training": rpn_pre_nms_top_n[0], "testing": rpn_pre_nms_top_n[1]},
        post_nms_top_n={"training": rpn_post_nms_top_n[0], "testing": rpn_post_nms_top_n[1]},
        nms_thresh=0.7,
    )
    roi_pool = SeparableMultiScaleRoIAlign(list(levels), output_size=7, sampling_ratio=2)
    roi_heads = RoIHeads(
        roi_pool,
        TwoMLPHead(channels * 7 * 7, representation_size),
        FastRCNNPredictor(representation_size, num_classes + 1),
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=box_batch_size_per_image,
        positive_fraction=0.25,
        bbox_reg_weights=None,
        score_thresh=box_score_thresh,
        nms_thresh=0.5,
        detections_per_img=box_detections_per_img,
    )
    return rpn, roi_heads


def build_vid_detector(
    num_classes: int = 30,
    variant: str = "swin_tiny_patch4_window7_224",
    predictor: Optional[str] = "relation",
    num_prompts: int = 5,
    weights: Optional[str] = None,
    fpn_channels: int = 256,
    support_grad: bool = False,
    support_grid: Optional[Sequence[int]] = None,
    swin_kwargs: Optional[dict] = None,
    selsa: bool = False,
    selsa_heads: int = 16,
    selsa_support_proposals: int = 300,
    **head_kwargs,
) -> VideoFasterRCNN:
    """Faster R-CNN + FPN on a prompt-aware Swin; ``predictor=None`` gives the per-frame
    baseline, otherwise one of ``"relation"`` (released "att", the default), ``"topk"``
    (released "avg"), ``"transformer"`` or ``"mixer"`` (the paper's); the released names
    ``"att"`` / ``"avg"`` are accepted (:data:`stpn.prompts.build.PREDICTOR_ALIASES`).

    ``weights``: a local timm Swin checkpoint for the backbone (ImageNet pre-training).
    ``support_grad``: let gradients reach the support frames' pass too (default off, as the
    released code; :class:`~stpn.prompts.stpn.STPN`).
    ``swin_kwargs`` go to :func:`stpn.backbones.swin.build_swin` (e.g. ``embed_dim``,
    ``depths``, ``window_size`` for small models); ``head_kwargs`` to
    :func:`build_faster_rcnn_heads`.

    ``selsa=True`` adds SELSA's RoI aggregation over support frames
    (:class:`~stpn.detection.selsa_detector.SelsaFasterRCNN`, ``selsa_heads`` attention heads,
    ``selsa_support_proposals`` RoIs per support frame): "SELSA" with ``predictor=None``,
    "STPN + SELSA" otherwise (paper Table 2).
    """
    backbone = build_swin(variant, weights=weights, **(swin_kwargs or {}))
    extractor = backbone
    if predictor is not None:
        support_grid, extra = support_tokens(predictor, support_grid)
        dvp = build_predictor(
            predictor,
            support_dim=backbone.support_dim,
            prompt_dim=backbone.prompt_dims[0],
            num_prompts=num_prompts,
            **extra,
        )
        extractor = STPN(backbone, dvp, support_grid=support_grid, support_grad=support_grad)
    in_channels = [f["num_chs"] for f in backbone.feature_info]
    rpn, roi_heads = build_faster_rcnn_heads(num_classes, fpn_channels, num_maps=len(in_channels), **head_kwargs)
    neck = NormFPN(in_channels, fpn_channels)
    if selsa:
        roi_heads = make_selsa_roi_heads(roi_heads, selsa_heads)
        return SelsaFasterRCNN(extractor, neck, rpn, roi_heads, selsa_support_proposals)
    return VideoFasterRCNN(extractor, neck, rpn, roi_heads)

"""The video instance segmenter: a MinVIS-style per-frame Mask2Former on the prompt-aware Swin.

Per frame: prompt-aware Swin (plain for the baseline, or wrapped in
:class:`~stpn.prompts.stpn.STPN`, whose prompts come from the frame's support frames) →
four maps (strides 4, 8, 16, 32) → one LayerNorm per stage (Mask2Former's Swin has them) →
Mask2Former pixel decoder and masked-attention decoder (:mod:`stpn.vis.head`) → per query a
class (classes + no-object), a mask and an embedding. Videos are segmented frame by frame and
the queries associated over time afterwards (MinVIS; :mod:`stpn.vis.association`).

Inference API (what video inference codes against)
    ``model.features(images (B, 3, H, W), prompts=None) -> list[Tensor]``: the backbone's
        multi-scale maps ``[(B, C_i, H / 2^(i+2), W / 2^(i+2))]``, un-normalised, exactly what
        :class:`stpn.prompts.streaming.StreamingExtractor` yields for ``model.stpn``. With STPN,
        ``prompts`` come from ``model.stpn.predict_prompts(model.stpn.embed_support(...))`` (or
        the streaming extractor); ``None`` gives the unprompted pass. Plain: ``prompts`` must be
        ``None``. ``H`` and ``W`` should be multiples of 32.
    ``model.decode(features) -> dict``: ``class_logits (B, Q, C + 1)`` (the last is no-object),
        ``mask_logits (B, Q, H/4, W/4)``, ``query_embeddings (B, Q, hidden)`` (the decoder's
        final LayerNormed query states, not L2-normalised). The per-stage LayerNorms are
        applied here, so ``features`` are raw backbone maps.
    ``model.stpn``: the :class:`~stpn.prompts.stpn.STPN` module, or ``None`` for the baseline;
    ``model.backbone``: the prompt-aware Swin; ``model.class_names``, ``model.num_classes``.

Training: ``model(images (B, 3, H, W), support (B, K, 3, H, W) or None, targets)`` with
``targets[b] = {"masks": (M, H, W) bool, "labels": (M,) int64 0-based}`` returns the losses of
:class:`stpn.vis.loss.SetCriterion` (the loss runs in float32 outside autocast).

Parameter names: the Swin is ``extractor.backbone.*`` in both variants (so the recipe's
``lr_multipliers: {backbone: 0.1}`` reaches it), the DVP predictor ``extractor.predictor.*``,
the stage norms ``output_norms.*``, the head ``head.*``. timm's final ``norm`` of the Swin feeds
only STPN's support embeddings, which get no gradient by default: it is frozen then (and always
in the baseline, which never uses it), so DDP runs without ``find_unused_parameters``.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import Tensor, nn

from stpn.backbones.swin import build_swin
from stpn.prompts.build import build_predictor, support_tokens
from stpn.prompts.stpn import STPN
from stpn.vis.head import Mask2FormerHead, mask2former_config
from stpn.vis.loss import SetCriterion


class PlainExtractor(nn.Module):
    """The baseline's backbone holder (same parameter names as :class:`STPN`'s ``backbone``)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: Tensor, support_frames: Optional[Tensor] = None) -> list[Tensor]:
        return self.backbone.forward_features(images)


class VideoInstanceSegmenter(nn.Module):
    def __init__(self, extractor: nn.Module, head: Mask2FormerHead, class_names: Sequence[str]) -> None:
        super().__init__()
        if len(class_names) != head.config.num_labels:
            raise ValueError(f"{len(class_names)} class names for a head of {head.config.num_labels} classes")
        self.class_names = list(class_names)
        self.extractor = extractor
        channels = [info["num_chs"] for info in extractor.backbone.feature_info]
        if len(channels) != 4:
            raise ValueError(f"the backbone must give 4 maps (strides 4-32), it gives {len(channels)}")
        self.output_norms = nn.ModuleList(nn.LayerNorm(c) for c in channels)
        stpn = extractor if isinstance(extractor, STPN) else None
        if stpn is None or not stpn.support_grad:  # timm's final norm only serves the no-grad support pass:
            extractor.backbone.norm.requires_grad_(False)  # frozen, so plain DDP finds no unused parameter
        self.head = head
        self.criterion = SetCriterion(head.config)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def stpn(self) -> Optional[STPN]:
        return self.extractor if isinstance(self.extractor, STPN) else None

    @property
    def backbone(self) -> nn.Module:
        return self.extractor.backbone

    def features(self, images: Tensor, prompts: Any = None) -> list[Tensor]:
        """Raw multi-scale backbone maps of ``images`` (module docstring)."""
        if self.stpn is None:
            if prompts is not None:
                raise ValueError("this segmenter has no STPN: prompts must be None")
            return self.backbone.forward_features(images)
        return self.stpn(images, prompts=prompts)

    def _head(self, features: Sequence[Tensor]) -> dict[str, list[Tensor]]:
        if len(features) != len(self.output_norms):
            raise ValueError(f"expected {len(self.output_norms)} feature maps, got {len(features)}")
        normed = [norm(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2) for norm, f in zip(self.output_norms, features)]
        return self.head(normed)

    def decode(self, features: Sequence[Tensor]) -> dict[str, Tensor]:
        """``class_logits (B, Q, C + 1)``, ``mask_logits (B, Q, H/4, W/4)``,
        ``query_embeddings (B, Q, hidden)`` of the last decoder layer."""
        out = self._head(features)
        return {key: values[-1] for key, values in out.items()}

    def forward(self, images: Tensor, support: Optional[Tensor], targets: Sequence[dict[str, Tensor]]
                ) -> dict[str, Tensor]:
        if len(targets) != images.shape[0]:
            raise ValueError(f"{len(targets)} targets for {images.shape[0]} frames")
        if self.stpn is not None and support is not None and support.shape[1] > 0:
            features = self.stpn(images, support)
        else:
            features = self.backbone.forward_features(images)
        out = self._head(features)
        with torch.autocast(images.device.type, enabled=False):
            return self.criterion(out, targets)


def build_vis_model(
    class_names: Sequence[str],
    variant: str = "swin_tiny_patch4_window7_224",
    predictor: Optional[str] = None,
    num_prompts: int = 5,
    support_grad: bool = False,
    support_grid: Optional[Sequence[int]] = None,
    swin_kwargs: Optional[dict] = None,
    head_kwargs: Optional[dict] = None,
    backbone_weights: Optional[str] = None,
) -> VideoInstanceSegmenter:
    """The segmenter: ``predictor=None`` is the per-frame baseline (MinVIS), otherwise the STPN
    predictor (``"relation"`` = released "att", ``"topk"``, ``"transformer"``, ``"mixer"``;
    built as the detector builds it, :func:`stpn.detection.build.build_vid_detector`).
    ``swin_kwargs`` go to :func:`stpn.backbones.swin.build_swin`, ``head_kwargs`` to
    :func:`stpn.vis.head.mask2former_config`; ``backbone_weights``: a local timm Swin checkpoint
    (a COCO Mask2Former checkpoint is loaded afterwards with
    :func:`stpn.vis.coco_weights.load_coco_mask2former`)."""
    backbone = build_swin(variant, weights=backbone_weights, **(swin_kwargs or {}))
    if predictor is None:
        extractor: nn.Module = PlainExtractor(backbone)
    else:
        grid, extra = support_tokens(predictor, support_grid)
        dvp = build_predictor(predictor, support_dim=backbone.support_dim, prompt_dim=backbone.prompt_dims[0],
                              num_prompts=num_prompts, **extra)
        extractor = STPN(backbone, dvp, support_grid=grid, support_grad=support_grad)
    config = mask2former_config(len(class_names), **(head_kwargs or {}))
    channels = [info["num_chs"] for info in backbone.feature_info]
    return VideoInstanceSegmenter(extractor, Mask2FormerHead(config, channels), class_names)

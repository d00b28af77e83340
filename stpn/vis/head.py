"""The Mask2Former head (pixel decoder, masked-attention decoder, class head) from transformers.

:func:`mask2former_config` builds the ``Mask2FormerConfig`` the pieces read; :class:`Mask2FormerHead`
holds them under the names of transformers' ``Mask2FormerForUniversalSegmentation``
(``pixel_decoder`` = ``model.pixel_level_module.decoder``, ``transformer_module`` =
``model.transformer_module``, ``class_predictor``), so a COCO checkpoint maps onto it key for key
(:mod:`stpn.vis.coco_weights`).

Two pitfalls of building the pieces standalone, both handled here (and tested):

* the pixel decoder creates ``level_embed`` with ``torch.Tensor(...)`` (uninitialised memory) and
  the deformable attention's sampling offsets need their special grid initialisation; both only
  happen in ``Mask2FormerPreTrainedModel._init_weights``, which is applied to every submodule;
* the multi-scale deformable attention is run in float32 even under bf16 autocast (as the
  original CUDA kernel); the rest of the head follows the autocast.

transformers counts the decoder's ``decoder_layers`` including the prediction made from the
learnable queries before the first layer: ``decoder_layers=10`` is 9 layers + that prediction,
Mask2Former's ``DEC_LAYERS: 10``. Here ``decoder_layers`` is the number of *layers* (9), and
the config gets ``decoder_layers + 1``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import (
    Mask2FormerPixelDecoder,
    Mask2FormerPreTrainedModel,
    Mask2FormerTransformerModule,
)


def mask2former_config(
    num_classes: int,
    hidden_dim: int = 256,
    num_queries: int = 100,
    num_heads: int = 8,
    dim_feedforward: int = 2048,
    decoder_layers: int = 9,
    encoder_layers: int = 6,
    encoder_feedforward_dim: int = 1024,
    train_num_points: int = 12544,
    oversample_ratio: float = 3.0,
    importance_sample_ratio: float = 0.75,
    class_weight: float = 2.0,
    mask_weight: float = 5.0,
    dice_weight: float = 5.0,
    no_object_weight: float = 0.1,
) -> Mask2FormerConfig:
    """Mask2Former's instance-segmentation settings (defaults: the Swin-T YouTube-VIS model:
    hidden 256, 100 queries, 8 heads, FFN 2048, 9 decoder layers, 6 pixel-decoder encoder layers
    with FFN 1024, post-norm; loss on 12544 points, oversample 3, importance 0.75, weights class 2 /
    mask 5 / dice 5 / no-object 0.1). ``hidden_dim`` must be a multiple of 32 (GroupNorm groups)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if hidden_dim % 32 or hidden_dim % num_heads:
        raise ValueError(f"hidden_dim {hidden_dim} must be a multiple of 32 and of num_heads {num_heads}")
    for name, value in (("num_queries", num_queries), ("decoder_layers", decoder_layers),
                        ("encoder_layers", encoder_layers)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return Mask2FormerConfig(
        num_labels=num_classes, hidden_dim=hidden_dim, feature_size=hidden_dim, mask_feature_size=hidden_dim,
        num_queries=num_queries, num_attention_heads=num_heads, dim_feedforward=dim_feedforward,
        decoder_layers=decoder_layers + 1, encoder_layers=encoder_layers,
        encoder_feedforward_dim=encoder_feedforward_dim, pre_norm=False, dropout=0.0,
        train_num_points=train_num_points, oversample_ratio=oversample_ratio,
        importance_sample_ratio=importance_sample_ratio, class_weight=class_weight, mask_weight=mask_weight,
        dice_weight=dice_weight, no_object_weight=no_object_weight, use_auxiliary_loss=True,
    )


class Mask2FormerHead(nn.Module):
    """Four maps ``[(B, C_i, H/s, W/s) for s in 4, 8, 16, 32]`` → per decoder stage (the learnable
    queries' prediction first, the last layer's last): class logits ``(B, Q, classes + 1)``, mask
    logits ``(B, Q, H/4, W/4)`` and the LayerNormed query states ``(B, Q, hidden)``."""

    def __init__(self, config: Mask2FormerConfig, feature_channels: Sequence[int]) -> None:
        super().__init__()
        if len(feature_channels) != 4:
            raise ValueError(f"the pixel decoder takes 4 maps (strides 4, 8, 16, 32), got {len(feature_channels)}")
        self.config = config
        self.pixel_decoder = Mask2FormerPixelDecoder(config, feature_channels=list(feature_channels))
        self.transformer_module = Mask2FormerTransformerModule(in_features=config.feature_size, config=config)
        self.class_predictor = nn.Linear(config.hidden_dim, config.num_labels + 1)
        initialiser = Mask2FormerPreTrainedModel(config)
        for module in reversed(list(self.modules())):  # children first, so a parent's own rule wins,
            initialiser._init_weights(module)  # as transformers' post_init does

    def forward(self, features: Sequence[Tensor]) -> dict[str, list[Tensor]]:
        """``{"class_logits": [...], "mask_logits": [...], "query_embeddings": [...]}``, one
        entry per decoder stage."""
        with torch.autocast(features[0].device.type, enabled=False):  # deformable attention in fp32
            pixels = self.pixel_decoder([f.float() for f in features])
        decoded = self.transformer_module(list(pixels.multi_scale_features), pixels.mask_features)
        states = [s.transpose(0, 1) for s in decoded.intermediate_hidden_states]  # (Q, B, C) -> (B, Q, C)
        return {"class_logits": [self.class_predictor(s) for s in states],
                "mask_logits": list(decoded.masks_queries_logits), "query_embeddings": states}

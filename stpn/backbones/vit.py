"""Prompt-aware ViT (Dosovitskiy et al., ICLR 2021) for STPN; loads timm weights unchanged.

:class:`PromptViT` *is* timm's ``VisionTransformer`` with a prompted forward pass. Prompts go
after the position embedding (they get none), between the prefix tokens (class / register) and
the patch tokens: ``[prefix, prompts, patches]``, the VPT convention (Jia et al., 2022) that
STPN follows (paper §4.3). STPN deep replaces the prompt tokens before every block.
Without prompts every output equals timm's to float rounding (tested).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor
from timm.models.vision_transformer import VisionTransformer

from stpn.backbones.base import Prompts, check_images, check_prompts, tokens_to_map
from stpn.backbones.weights import drop_classifier, load_weights

VIT_VARIANTS = {
    "vit_tiny_patch16_224": dict(patch_size=16, embed_dim=192, depth=12, num_heads=3),
    "vit_small_patch16_224": dict(patch_size=16, embed_dim=384, depth=12, num_heads=6),
    "vit_base_patch16_224": dict(patch_size=16, embed_dim=768, depth=12, num_heads=12),
    "vit_large_patch16_224": dict(patch_size=16, embed_dim=1024, depth=24, num_heads=16),
}


class PromptViT(VisionTransformer):
    """timm ``VisionTransformer`` + prompts, without classifier (``num_classes=0``) and with
    ``dynamic_img_size=True`` by default (position embeddings resampled to the input grid).

    Args:
        out_indices: blocks whose patch-token maps :meth:`forward_features` returns.
        **kwargs: timm ``VisionTransformer`` arguments.
    """

    def __init__(self, out_indices: Sequence[int] = (-1,), **kwargs) -> None:
        kwargs.setdefault("dynamic_img_size", True)
        kwargs["num_classes"] = 0
        super().__init__(**kwargs)
        depth = len(self.blocks)
        self.out_indices = tuple(i % depth for i in out_indices)
        reduction = self.patch_embed.patch_size[0]
        self.feature_info = [dict(num_chs=self.embed_dim, reduction=reduction, module=f"blocks.{i}") for i in self.out_indices]
        self.prompt_dims = (self.embed_dim,) * depth
        self.support_dim = self.embed_dim
        self.required_num_prompts = None

    def _grid(self, images: Tensor) -> tuple[int, int]:
        return tuple(self.patch_embed.dynamic_feat_size(images.shape[-2:]))

    def embed(self, images: Tensor) -> Tensor:
        """Support embeddings: patch tokens of timm's ``forward_features`` (final norm)."""
        check_images(images)
        tokens = super().forward_features(images)[:, self.num_prefix_tokens :]
        return tokens_to_map(tokens, *self._grid(images))

    def forward_features(self, images: Tensor, prompts: Prompts = None) -> list[Tensor]:
        """``(B, 3, H, W)`` (+ prompts) → ``[(B, C, H/16, W/16) for i in out_indices]``, patch
        tokens of those blocks without the final norm (timm's ``forward_intermediates``)."""
        check_images(images)
        sets = check_prompts(prompts, self.prompt_dims, images.shape[0])
        x = self.norm_pre(self.patch_drop(self._pos_embed(self.patch_embed(images))))
        prefix = self.num_prefix_tokens
        num_prompts = 0 if sets is None else sets[0].shape[1]
        if sets is not None:
            x = torch.cat([x[:, :prefix], sets[0], x[:, prefix:]], 1)
        outs = []
        for i, blk in enumerate(self.blocks):
            if sets is not None and len(sets) > 1 and i > 0:
                x = torch.cat([x[:, :prefix], sets[i], x[:, prefix + num_prompts :]], 1)
            x = blk(x)
            if i in self.out_indices:
                outs.append(tokens_to_map(x[:, prefix + num_prompts :], *self._grid(images)))
        return outs


def build_vit(variant: str = "vit_base_patch16_224", weights: Optional[str] = None, **kwargs) -> PromptViT:
    """A prompt-aware ViT; ``kwargs`` override timm's arguments (``embed_dim``, ``depth``,
    ``num_heads``, ``class_token``, ``reg_tokens``, ``out_indices``…). ``weights``: a local timm
    checkpoint; its classifier head is dropped."""
    if variant not in VIT_VARIANTS:
        raise ValueError(f"unknown ViT variant {variant!r}; choose one of {', '.join(VIT_VARIANTS)}")
    model = PromptViT(**{**VIT_VARIANTS[variant], **kwargs})
    if weights is not None:
        load_weights(model, weights, convert=drop_classifier)
    return model

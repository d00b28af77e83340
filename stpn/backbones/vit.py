"""Prompt-aware ViT (Dosovitskiy et al., ICLR 2021) for STPN; loads timm weights unchanged.

:class:`PromptViT` *is* timm's ``VisionTransformer`` (same modules, same state-dict keys) with a
prompted forward pass. Choices where the paper (§4.3, eq. 9 and 11) is vague:

* placement: ``[prefix, prompts, patches]`` with prefix = class / register tokens, the VPT
  convention (Jia et al., 2022) that STPN cites. Prompts get no position embedding and skip
  ``norm_pre`` (CLIP-style models): a shallow prompt set is exactly block 0's input, like deep set 0;
* deep prompting (eq. 11): before block ``i > 0`` the prompt outputs of block ``i - 1`` are
  replaced by set ``i``;
* prompts pass through every block (attention, MLP, DropPath, like any token) and are stripped
  from the outputs; the final norm works per token, so it never mixes them in.

Without prompts every output equals timm's to float rounding (tested).
"""
from __future__ import annotations

from typing import Optional, Sequence

import timm
import torch
from timm.models import split_model_name_tag
from timm.models.vision_transformer import VisionTransformer
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from stpn.backbones.base import Prompts, check_images, check_prompts, tokens_to_map
from stpn.backbones.weights import drop_classifier, load_weights

TIMM_VIT_MODULES = ("vision_transformer", "deit")  # timm files whose models may be plain ViTs


class PromptViT(VisionTransformer):
    """timm ``VisionTransformer`` + prompts, without classifier (``num_classes=0``) and with
    ``dynamic_img_size=True`` by default (position embeddings resampled to the input grid, as
    timm does, so any multiple of the patch size works).

    Args:
        out_indices: blocks whose patch-token maps :meth:`forward_features` returns (negative
            counts from the end; returned in block order).
        **kwargs: timm ``VisionTransformer`` arguments.
    """

    def __init__(self, out_indices: Sequence[int] = (-1,), **kwargs) -> None:
        kwargs.setdefault("dynamic_img_size", True)
        super().__init__(**{**kwargs, "num_classes": 0})
        self._init_prompting(out_indices)

    @classmethod
    def from_timm(cls, vit: VisionTransformer, out_indices: Sequence[int] = (-1,)) -> "PromptViT":
        """Give a timm-built ``VisionTransformer`` the prompted methods, in place (the object,
        its parameters and state-dict keys stay as they are). This lets :func:`build_vit` use
        any architecture timm registers instead of copying timm's argument tables."""
        if type(vit) is not VisionTransformer:
            raise ValueError(f"expected a timm VisionTransformer, got {type(vit).__name__}")
        vit.__class__ = cls
        vit._init_prompting(out_indices)
        return vit

    def _init_prompting(self, out_indices: Sequence[int]) -> None:
        depth = len(self.blocks)
        if not out_indices or any(not -depth <= i < depth for i in out_indices):
            raise ValueError(f"out_indices {tuple(out_indices)} must name blocks in [-{depth}, {depth})")
        self.out_indices = tuple(sorted({i % depth for i in out_indices}))
        reduction = self.patch_embed.feat_ratio()
        self.feature_info = [dict(num_chs=self.embed_dim, reduction=reduction, module=f"blocks.{i}") for i in self.out_indices]
        self.prompt_dims = (self.embed_dim,) * depth
        self.support_dim = self.embed_dim
        self.required_num_prompts = None

    def _grid(self, images: Tensor) -> tuple[int, int]:
        """Validate ``images (B, 3, H, W)`` for this model and return the patch grid ``(h, w)``."""
        check_images(images)
        size, embed = tuple(images.shape[-2:]), self.patch_embed
        if not self.dynamic_img_size and size != tuple(embed.img_size):
            raise ValueError(f"image size {size} != model img_size {tuple(embed.img_size)} (build with dynamic_img_size=True)")
        if not embed.dynamic_img_pad and (size[0] % embed.patch_size[0] or size[1] % embed.patch_size[1]):
            raise ValueError(f"image size {size} is not a multiple of the patch size {tuple(embed.patch_size)}")
        return tuple(embed.dynamic_feat_size(size))

    def embed(self, images: Tensor) -> Tensor:
        """Support embeddings ``(B, d_L, h, w)``: patch tokens of timm's ``forward_features``
        (final norm applied where the model has one), prefix tokens dropped."""
        grid = self._grid(images)
        return tokens_to_map(super().forward_features(images)[:, self.num_prefix_tokens :], *grid)

    def forward_features(self, images: Tensor, prompts: Prompts = None) -> list[Tensor]:
        """``images (B, 3, H, W)``, prompts ``None | (B, N_P, C) | [(B, N_P, C)] * depth`` →
        ``[(B, C, H/p, W/p) for i in out_indices]``: patch tokens after block ``i``, without the
        final norm (timm's ``forward_intermediates`` default)."""
        grid = self._grid(images)
        sets = check_prompts(prompts, self.prompt_dims, images.shape[0]) or []
        x = self.norm_pre(self.patch_drop(self._pos_embed(self.patch_embed(images))))
        prefix = self.num_prefix_tokens
        skip = prefix + (sets[0].shape[1] if sets else 0)  # tokens before the patches
        outs = []
        for i, blk in enumerate(self.blocks):
            if i == 0 and sets:
                x = torch.cat([x[:, :prefix], sets[0], x[:, prefix:]], 1)
            elif len(sets) > 1:
                x = torch.cat([x[:, :prefix], sets[i], x[:, skip:]], 1)
            use_checkpoint = self.grad_checkpointing and torch.is_grad_enabled()
            x = checkpoint(blk, x, use_reentrant=False) if use_checkpoint else blk(x)
            if i in self.out_indices:
                outs.append(tokens_to_map(x[:, skip:], *grid))
        return outs

    def forward(self, images: Tensor, prompts: Prompts = None) -> list[Tensor]:
        """Same as :meth:`forward_features` (the classifier head is not part of a backbone)."""
        return self.forward_features(images, prompts)


def build_vit(
    variant: str = "vit_base_patch16_224",
    weights: Optional[str] = None,
    out_indices: Sequence[int] = (-1,),
    **timm_kwargs,
) -> PromptViT:
    """A prompt-aware ViT of any plain timm ViT / DeiT architecture, built by timm with
    ``pretrained=False`` (nothing is downloaded), ``num_classes=0`` and, unless overridden,
    ``dynamic_img_size=True``.

    Args:
        variant: timm model name, optionally with a tag (``"vit_base_patch16_224.mae"``).
        weights: local timm checkpoint (``.pth`` / ``.safetensors``), loaded strictly after
            dropping its classifier head; a mismatch raises ``ValueError``.
        out_indices: blocks returned by ``forward_features``.
        **timm_kwargs: override timm's arguments (``embed_dim``, ``depth``, ``num_heads``,
            ``img_size``, ``class_token``, ``reg_tokens``…).
    """
    if split_model_name_tag(variant)[0] not in timm.list_models(module=TIMM_VIT_MODULES):
        raise ValueError(f"{variant!r} is not a timm ViT (e.g. 'vit_base_patch16_224', 'deit_small_patch16_224')")
    timm_kwargs.setdefault("dynamic_img_size", True)
    vit = timm.create_model(variant, pretrained=False, **{**timm_kwargs, "num_classes": 0})
    model = PromptViT.from_timm(vit, out_indices)
    if weights is not None:
        load_weights(model, weights, convert=drop_classifier)
    return model

"""Prompt-aware Swin Transformer (Liu et al., ICCV 2021) for STPN; loads timm weights unchanged.

:class:`PromptSwin` *is* timm's ``SwinTransformer`` (same modules, same state-dict keys) with a
prompted forward pass that follows the authors' released code (DESIGN.md §3):

* prompts enter after patch embedding (no position information);
* in every block the same prompts join every window (:mod:`stpn.backbones.swin_attention`);
  LayerNorm, MLP and DropPath apply to them as to patch tokens (one DropPath draw per image for
  both, as if they were one sequence);
* at patch merging the prompts are tiled 4× along channels and go through the same norm and
  reduction as the 2×2 patch groups (per prompt, so it is correct for any batch size);
* STPN deep replaces the prompts before every block with that block's set.

Without prompts every output equals timm's to float rounding (tested).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from timm.models.swin_transformer import SwinTransformer, SwinTransformerBlock, window_partition, window_reverse

from stpn.backbones.base import Prompts, check_images, check_prompts
from stpn.backbones.swin_attention import prompted_window_attention
from stpn.backbones.weights import drop_classifier, load_weights

# timm's architectures (patch 4): embed_dim, depths, num_heads, window_size, img_size
SWIN_VARIANTS = {
    "swin_tiny_patch4_window7_224": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, img_size=224),
    "swin_small_patch4_window7_224": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24), window_size=7, img_size=224),
    "swin_base_patch4_window7_224": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=7, img_size=224),
    "swin_base_patch4_window12_384": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32), window_size=12, img_size=384),
    "swin_large_patch4_window7_224": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48), window_size=7, img_size=224),
}


class PromptSwin(SwinTransformer):
    """timm ``SwinTransformer`` + prompts. Built without classifier (``num_classes=0``) and,
    by default, ``strict_img_size=False`` so any input size works (windows pad as in timm).

    Args:
        out_indices: stages whose maps :meth:`forward_features` returns.
        **kwargs: timm ``SwinTransformer`` arguments.
    """

    def __init__(self, out_indices: Sequence[int] = (0, 1, 2, 3), **kwargs) -> None:
        kwargs.setdefault("strict_img_size", False)
        kwargs["num_classes"] = 0
        super().__init__(**kwargs)
        self.out_indices = tuple(out_indices)
        if any(not 0 <= i < len(self.layers) for i in self.out_indices):
            raise ValueError(f"out_indices {self.out_indices} outside the {len(self.layers)} stages")
        self.feature_info = [self.feature_info[i] for i in self.out_indices]
        for stage in self.layers:  # fused SDPA kernels, as the prompted path uses (same math)
            for blk in stage.blocks:
                blk.attn.fused_attn = True
        self.prompt_dims = tuple(blk.dim for stage in self.layers for blk in stage.blocks)
        self.support_dim = self.num_features
        self.required_num_prompts = None

    def embed(self, images: Tensor) -> Tensor:
        """Support embeddings: timm's ``forward_features`` (final norm) as ``(B, d_L, h, w)``."""
        check_images(images)
        return super().forward_features(images).permute(0, 3, 1, 2)

    def forward_features(self, images: Tensor, prompts: Prompts = None) -> list[Tensor]:
        """``(B, 3, H, W)`` (+ prompts) → ``[(B, C_i, H/2^(i+2), W/2^(i+2)) for i in out_indices]``.

        Stage maps are not normalised (timm's ``forward_intermediates`` default).
        """
        check_images(images)
        sets = check_prompts(prompts, self.prompt_dims, images.shape[0])
        x = self.patch_embed(images)  # (B, H, W, C)
        p = sets[0] if sets is not None else None
        deep = sets is not None and len(sets) > 1
        outs, block = [], 0
        for i, stage in enumerate(self.layers):
            if p is None:
                x = stage(x)
            else:
                if not isinstance(stage.downsample, nn.Identity):
                    x = stage.downsample(x)
                    p = None if deep else _merge_prompts(stage.downsample, p)
                for blk in stage.blocks:
                    if deep:
                        p = sets[block]
                    x, p = prompted_block(blk, x, p)
                    block += 1
            if i in self.out_indices:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return outs


def _merge_prompts(merging: nn.Module, prompts: Tensor) -> Tensor:
    """``(B, P, C)`` → ``(B, P, 2C)``: each prompt tiled 4× (as a 2×2 group of itself)."""
    return merging.reduction(merging.norm(prompts.repeat(1, 1, 4)))


def prompted_block(blk: SwinTransformerBlock, x: Tensor, prompts: Tensor) -> tuple[Tensor, Tensor]:
    """One Swin block on ``x (B, H, W, C)`` and ``prompts (B, P, C)``.

    When DropPath is active (training) prompts and tokens are joined first so that one draw
    per image drops both, as if they were one sequence; otherwise they run side by side.
    """
    b, h, w, c = x.shape
    attn_x, attn_p = _prompted_attn(blk, blk.norm1(x), blk.norm1(prompts))
    if blk.training and not isinstance(blk.drop_path1, nn.Identity):
        seq = torch.cat([prompts, x.reshape(b, h * w, c)], 1)
        seq = seq + blk.drop_path1(torch.cat([attn_p, attn_x.reshape(b, h * w, c)], 1))
        seq = seq + blk.drop_path2(blk.mlp(blk.norm2(seq)))
        p = prompts.shape[1]
        return seq[:, p:].reshape(b, h, w, c), seq[:, :p]
    x = (x + attn_x).reshape(b, h * w, c)
    x = x + blk.mlp(blk.norm2(x))
    prompts = prompts + attn_p
    prompts = prompts + blk.mlp(blk.norm2(prompts))
    return x.reshape(b, h, w, c), prompts


def _prompted_attn(blk: SwinTransformerBlock, x: Tensor, prompts: Tensor) -> tuple[Tensor, Tensor]:
    """timm's ``SwinTransformerBlock._attn`` (shift, pad, partition) with prompts in every window."""
    b, h, w, c = x.shape
    wh, ww = blk.window_size
    shifted = torch.roll(x, shifts=(-blk.shift_size[0], -blk.shift_size[1]), dims=(1, 2)) if any(blk.shift_size) else x
    shifted = F.pad(shifted, (0, 0, 0, (ww - w % ww) % ww, 0, (wh - h % wh) % wh))
    hp, wp = shifted.shape[1:3]
    windows = window_partition(shifted, blk.window_size).view(-1, blk.window_area, c)
    mask = blk.get_attn_mask(shifted) if getattr(blk, "dynamic_mask", False) else blk.attn_mask
    out_x, out_p = prompted_window_attention(blk.attn, windows, prompts, mask)
    shifted = window_reverse(out_x.view(-1, wh, ww, c), blk.window_size, hp, wp)[:, :h, :w]
    out = torch.roll(shifted, shifts=blk.shift_size, dims=(1, 2)) if any(blk.shift_size) else shifted
    return out, out_p


def build_swin(
    variant: str = "swin_tiny_patch4_window7_224",
    weights: Optional[str] = None,
    **kwargs,
) -> PromptSwin:
    """A prompt-aware Swin; ``variant`` names timm's architecture, ``kwargs`` override its
    arguments (e.g. ``embed_dim=32, depths=(1, 1, 2, 1)`` for a small model). ``weights``: a
    local timm checkpoint file (``.pth`` / ``.safetensors``); its classifier head is dropped."""
    if variant not in SWIN_VARIANTS:
        raise ValueError(f"unknown Swin variant {variant!r}; choose one of {', '.join(SWIN_VARIANTS)}")
    model = PromptSwin(**{**SWIN_VARIANTS[variant], **kwargs})
    if weights is not None:
        load_weights(model, weights, convert=drop_classifier)
    return model

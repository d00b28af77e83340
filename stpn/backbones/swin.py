"""Prompt-aware Swin Transformer (Liu et al., ICCV 2021) for STPN; loads timm weights unchanged.

:class:`PromptSwin` *is* timm's ``SwinTransformer`` (same modules, same state-dict keys) with a
prompted forward pass that follows the authors' released code (docs/design.md §3.3):

* prompts enter after patch embedding (no position information);
* inside a stage the prompts and the patch tokens form one sequence ``[prompts; tokens]``
  ``(B, P + H·W, C)``: LayerNorms, MLP, residuals and DropPath (one draw per image for both)
  treat prompts like tokens, one call each for the whole sequence (separate calls for a few
  prompt rows would read every weight matrix twice, which costs most in the last stages);
* in every block the same prompts join every window, and their outputs are averaged over the
  windows of their image (:mod:`stpn.backbones.swin_attention`);
* at patch merging each prompt is tiled 4× along channels (a 2×2 group made of itself) and goes
  through the same norm and reduction as the patch groups, per image, so any batch size is right
  (the released code mixes images here when the batch has more than one);
* deep prompting replaces the prompts before every block with that block's set.

Without prompts every output equals timm's to float rounding (tested). Inputs may have any size
timm accepts (``strict_img_size=False`` by default): windows and merging pad as timm does.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from timm.models.swin_transformer import PatchMerging, SwinTransformer, SwinTransformerBlock

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
    """timm ``SwinTransformer`` + prompts, built without classifier (``num_classes=0``) and,
    by default, with ``strict_img_size=False`` so any input size works (timm pads windows).

    Args:
        out_indices: stages whose maps :meth:`forward_features` returns (default: all).
        **kwargs: timm ``SwinTransformer`` arguments.
    """

    def __init__(self, out_indices: Optional[Sequence[int]] = None, **kwargs) -> None:
        kwargs.setdefault("strict_img_size", False)
        kwargs["num_classes"] = 0
        super().__init__(**kwargs)
        indices = tuple(range(len(self.layers)) if out_indices is None else out_indices)
        if not indices or any(not 0 <= i < len(self.layers) for i in indices):
            raise ValueError(f"out_indices {indices} must name stages 0..{len(self.layers) - 1}")
        self.out_indices = tuple(sorted(set(indices)))  # maps come out in stage order
        self.stage_info = self.feature_info  # timm's, one per stage
        self.feature_info = [self.stage_info[i] for i in self.out_indices]  # same dicts
        for stage in self.layers:  # fused SDPA, as the prompted path uses (same math, faster)
            for blk in stage.blocks:
                blk.attn.fused_attn = True
        self.prompt_dims = tuple(blk.dim for stage in self.layers for blk in stage.blocks)
        self.support_dim = self.num_features
        self.required_num_prompts = None

    def set_input_size(self, *args, **kwargs) -> None:
        """timm's ``set_input_size`` (it indexes ``feature_info`` by stage)."""
        subset, self.feature_info = self.feature_info, self.stage_info
        try:
            super().set_input_size(*args, **kwargs)
        finally:
            self.feature_info = subset

    def embed(self, images: Tensor) -> Tensor:
        """Support embeddings: timm's ``forward_features`` (final norm) as ``(B, d_L, h, w)``."""
        check_images(images)
        return super().forward_features(images).permute(0, 3, 1, 2)

    def forward_features(self, images: Tensor, prompts: Prompts = None) -> list[Tensor]:
        """``(B, 3, H, W)`` (+ prompts) → ``[(B, C_i, H/2^(i+2), W/2^(i+2)) for i in out_indices]``.

        Stage maps are not normalised (timm's ``forward_intermediates`` default); prompts are
        stripped. ``prompts``: ``(B, P, prompt_dims[0])`` or one set per block (deep).
        """
        check_images(images)
        sets = check_prompts(prompts, self.prompt_dims, images.shape[0])
        x = self.patch_embed(images)  # (B, H, W, C)
        p = None if sets is None else sets[0]
        outs, first_block = [], 0
        for i, stage in enumerate(self.layers[: max(self.out_indices) + 1]):
            if sets is None:
                x = stage(x)
            else:
                x, p = self._prompted_stage(stage, x, p, sets[first_block:] if len(sets) > 1 else None)
            first_block += len(stage.blocks)
            if i in self.out_indices:
                outs.append(x.permute(0, 3, 1, 2).contiguous())
        return outs

    def _prompted_stage(
        self, stage: nn.Module, x: Tensor, prompts: Tensor, deep_sets: Optional[list[Tensor]]
    ) -> tuple[Tensor, Tensor]:
        """One stage on ``x (B, H, W, C)`` and ``prompts (B, P, C_prev)``; ``deep_sets`` (from
        this stage's first block on) replace the prompts before each block when given."""
        x = stage.downsample(x)
        if isinstance(stage.downsample, PatchMerging) and deep_sets is None:
            prompts = merge_prompts(stage.downsample, prompts)
        b, h, w, c = x.shape
        p = prompts.shape[1]
        seq = torch.cat([prompts if deep_sets is None else deep_sets[0], x.reshape(b, h * w, c)], 1)
        for j, blk in enumerate(stage.blocks):
            if deep_sets is not None and j > 0:
                seq = torch.cat([deep_sets[j], seq[:, p:]], 1)
            if stage.grad_checkpointing and torch.is_grad_enabled():
                seq = checkpoint(prompted_block, blk, seq, h, w, use_reentrant=False)
            else:
                seq = prompted_block(blk, seq, h, w)
        return seq[:, p:].reshape(b, h, w, c), seq[:, :p]


def merge_prompts(merging: PatchMerging, prompts: Tensor) -> Tensor:
    """``(B, P, C)`` → ``(B, P, 2C)``: each prompt tiled 4× along channels, then timm's
    merging norm and reduction (what a 2×2 patch group made of copies of it would give)."""
    return merging.reduction(merging.norm(prompts.repeat(1, 1, 4)))


def prompted_block(blk: SwinTransformerBlock, seq: Tensor, height: int, width: int) -> Tensor:
    """timm's ``SwinTransformerBlock.forward`` on ``seq = [prompts; tokens]`` ``(B, P + H·W, C)``."""
    seq = seq + blk.drop_path1(prompted_window_attention(blk, blk.norm1(seq), height, width))
    return seq + blk.drop_path2(blk.mlp(blk.norm2(seq)))


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

"""MixFormer's tracking heads (Cui et al., CVPR 2022): the corner box head and the score
prediction module (SPM) of MixFormer-1k / online MixFormer.

Box coordinates are normalised to the search crop, ``(x1, y1, x2, y2)``; feature cell ``i`` of
the ``F×F`` search map sits at coordinate ``i / F`` (MixFormer's convention: cell ``i`` ↔
pixel ``i · stride``, close to the centre of the CvT token's receptive field, pixel
``16 i + 1``), so soft-argmax boxes lie in ``[0, (F - 1) / F]``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

from stpn.backbones.cvt_attention import multi_head_attention


def conv_bn_relu(dim_in: int, dim_out: int) -> nn.Sequential:
    """3×3 conv (bias) + BatchNorm + ReLU, MixFormer's corner-head unit."""
    return nn.Sequential(nn.Conv2d(dim_in, dim_out, 3, padding=1), nn.BatchNorm2d(dim_out), nn.ReLU(inplace=True))


def corner_tower(dim_in: int, channels: int) -> nn.Sequential:
    """``(B, dim_in, F, F)`` → ``(B, 1, F, F)`` corner logits: four conv units halving
    ``channels`` each time after the first, then a 1×1 conv."""
    widths = [dim_in, channels, channels // 2, channels // 4, channels // 8]
    units = [conv_bn_relu(a, b) for a, b in zip(widths[:-1], widths[1:])]
    return nn.Sequential(*units, nn.Conv2d(widths[-1], 1, 1))


def soft_argmax(logits: Tensor) -> Tensor:
    """``(B, 1, F, F)`` logits → expected normalised ``(x, y)`` ``(B, 2)`` under their softmax."""
    b, _, h, w = logits.shape
    prob = logits.flatten(1).softmax(-1).view(b, h, w)
    xs = torch.arange(w, device=logits.device, dtype=prob.dtype) / w
    ys = torch.arange(h, device=logits.device, dtype=prob.dtype) / h
    return torch.stack([(prob.sum(1) * xs).sum(-1), (prob.sum(2) * ys).sum(-1)], -1)


class CornerHead(nn.Module):
    """Two conv towers (top-left, bottom-right) → probability maps → soft-argmax.

    ``forward(search_map (B, C, F, F)) → boxes (B, 4)`` normalised ``x1, y1, x2, y2``
    (``x1 ≤ x2`` is not enforced, as in MixFormer). BatchNorm is ordinary (MixFormer's stage 1);
    MixFormer freezes it in stage 2, together with the rest of the model but the score head.
    """

    def __init__(self, dim_in: int, channels: int = 384) -> None:
        super().__init__()
        if channels < 8 or channels % 8:
            raise ValueError(f"corner head channels must be a positive multiple of 8, got {channels}")
        self.top_left = corner_tower(dim_in, channels)
        self.bottom_right = corner_tower(dim_in, channels)

    def corner_logits(self, search_map: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, C, F, F)`` → top-left and bottom-right logits, each ``(B, 1, F, F)``."""
        return self.top_left(search_map), self.bottom_right(search_map)

    def forward(self, search_map: Tensor) -> Tensor:
        return boxes_from_corner_logits(*self.corner_logits(search_map))


def boxes_from_corner_logits(top_left: Tensor, bottom_right: Tensor) -> Tensor:
    """Two ``(B, 1, F, F)`` corner logit maps → ``(B, 4)`` normalised ``x1, y1, x2, y2``."""
    return torch.cat([soft_argmax(top_left), soft_argmax(bottom_right)], -1)


class CrossAttentionStep(nn.Module):
    """One SPM step: ``LN(W_o · MHA(W_q x, W_k m, W_v m))`` (no residual, as in MixFormer),
    ``x (B, 1, C)``, memory ``m (B, M, C)`` → ``(B, 1, C)``; logits scaled by ``C^-0.5``."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads, self.scale = num_heads, dim**-0.5
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        mixed = multi_head_attention(self.query(x), self.key(memory), self.value(memory), self.num_heads, self.scale)
        return self.norm(self.out(mixed))


class ScoreHead(nn.Module):
    """Score prediction module: is the predicted box still the target?

    A learnable score token (LayerNorm-ed) reads the search features RoI-aligned on the predicted
    box (``pool_size × pool_size``, torchvision ``roi_align`` in place of MixFormer's compiled
    PrRoIPool), then the template tokens; a 3-layer MLP gives one logit. The boxes are detached:
    the score loss trains neither the box head nor, through the RoI, the box coordinates.

    ``forward(search_map (B, C, F, F), template_map (B, C, h, w), boxes (B, 4)) → (B,)`` logits.
    """

    def __init__(self, dim: int, num_heads: int = 0, pool_size: int = 4) -> None:
        super().__init__()
        num_heads = num_heads or max(1, dim // 64)  # MixFormer: hidden_dim // 64
        if dim % num_heads:
            raise ValueError(f"score head width {dim} not divisible by {num_heads} heads")
        self.pool_size = pool_size
        self.score_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.score_token, std=0.02)
        self.token_norm = nn.LayerNorm(dim)
        self.read_search = CrossAttentionStep(dim, num_heads)
        self.read_template = CrossAttentionStep(dim, num_heads)
        self.mlp = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 1)
        )

    def forward(self, search_map: Tensor, template_map: Tensor, boxes: Tensor) -> Tensor:
        b, _, h, w = search_map.shape
        scale = torch.tensor([w, h, w, h], dtype=search_map.dtype, device=search_map.device)
        rois = torch.cat([torch.arange(b, dtype=search_map.dtype, device=search_map.device)[:, None],
                          boxes.detach().to(search_map.dtype) * scale], 1)
        # aligned=False: cell i at coordinate i, the corner head's convention
        pooled = roi_align(search_map, rois, self.pool_size, spatial_scale=1.0, aligned=False)
        token = self.token_norm(self.score_token.expand(b, -1, -1))
        token = self.read_search(token, pooled.flatten(2).transpose(1, 2))
        token = self.read_template(token, template_map.flatten(2).transpose(1, 2))
        return self.mlp(token).view(b)

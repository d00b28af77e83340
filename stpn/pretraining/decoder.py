"""The DropMAE decoder: pre-norm transformer blocks over the 2N tokens of a frame pair, with
ASAD on every block's attention logits (``drop_ratio = 0`` gives TwinMAE's plain decoder).

The decoder carries no class token (the encoder's is dropped before it): ASAD is defined on the
patch tokens of the two frames only, and MAE's decoder class token predicts nothing.
"""
from __future__ import annotations

from typing import Optional

import torch
from timm.layers import Mlp
from torch import Tensor, nn

from stpn.pretraining.asad import apply_asad, frame_layout
from stpn.pretraining.position import sincos_position_embedding


class ASADAttention(nn.Module):
    """Multi-head self-attention over ``(B, 2N, C)`` with ASAD before the softmax in training.

    ``record_attention = True`` keeps, in ``attention_split``, the mean share of each query's
    attention that stays in its own frame and the share that goes to the other frame (averaged
    over batch, heads and queries; after ASAD), the statistic of the DropMAE slides.
    """

    def __init__(self, dim: int, num_heads: int, drop_ratio: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"decoder width {dim} is not divisible by its {num_heads} heads")
        self.num_heads, self.drop_ratio = num_heads, drop_ratio
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.record_attention = False
        self.attention_split: Optional[tuple[float, float]] = None

    def forward(self, x: Tensor, tokens_per_frame: int) -> Tensor:
        """``x (B, 2N, C)`` → ``(B, 2N, C)``."""
        b, m, c = x.shape
        q, k, v = self.qkv(x).reshape(b, m, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        logits = (q * self.scale) @ k.transpose(-2, -1)  # (B, H, 2N, 2N)
        if self.training and self.drop_ratio > 0:
            logits = apply_asad(logits, tokens_per_frame, self.drop_ratio)
        attn = logits.softmax(-1)
        if self.record_attention:
            with torch.no_grad():
                same, _ = frame_layout(tokens_per_frame, x.device)
                within = (attn * same).sum(-1).mean().item()
                self.attention_split = (within, 1.0 - within)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, m, c))


class DecoderBlock(nn.Module):
    """``x + attn(norm(x))``, then ``x + mlp(norm(x))`` (timm's ViT block layout)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_ratio: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = ASADAttention(dim, num_heads, drop_ratio)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, tokens_per_frame: int) -> Tensor:
        """``x (B, 2N, C)`` → ``(B, 2N, C)``."""
        x = x + self.attn(self.norm1(x), tokens_per_frame)
        return x + self.mlp(self.norm2(x))


class PairDecoder(nn.Module):
    """Encoder tokens + mask tokens → predicted pixels of every patch of both frames.

    Args:
        encoder_dim: width of the encoder tokens; dim / depth / num_heads: the decoder's
            (512 / 8 / 16 in DropMAE); patch_pixels: ``p * p * 3`` values predicted per patch;
        drop_ratio: ASAD's P in every block (0 = TwinMAE).
    """

    def __init__(self, encoder_dim: int, patch_pixels: int, grid: tuple[int, int], dim: int = 512, depth: int = 8,
                 num_heads: int = 16, mlp_ratio: float = 4.0, drop_ratio: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos_embed", sincos_position_embedding(grid, dim), persistent=False)
        self.temporal_embed = nn.Parameter(torch.zeros(2, dim))
        self.blocks = nn.ModuleList(DecoderBlock(dim, num_heads, mlp_ratio, drop_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, patch_pixels)
        nn.init.normal_(self.mask_token, std=0.02)
        nn.init.normal_(self.temporal_embed, std=0.02)

    def forward(self, visible: Tensor, keep: Tensor, tokens_per_frame: int) -> Tensor:
        """``visible (B, K, C_enc)`` encoder outputs of the kept tokens, ``keep (B, K)`` their
        indices among the 2N tokens → predictions ``(B, 2N, p*p*3)`` in token order."""
        b, n2 = visible.shape[0], 2 * tokens_per_frame
        x = self.mask_token.expand(b, n2, -1).clone()
        x.scatter_(1, keep[..., None].expand(-1, -1, x.shape[-1]), self.embed(visible))
        x = x + self.pos_embed.repeat(2, 1) + self.temporal_embed.repeat_interleave(tokens_per_frame, 0)
        for block in self.blocks:
            x = block(x, tokens_per_frame)
        return self.pred(self.norm(x))

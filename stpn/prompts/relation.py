"""SELSA-style relation attention (Wu et al., ICCV 2019), as used by the released STPN "att"
predictor and by SELSA's RoI feature aggregation.

Per head ``h``: ``softmax(q_h k_hᵀ / sqrt(C / H)) v_h`` with ``q = W_q x``, ``k = W_k y``,
``v = W_v y``, then an output linear ``W_o``. Four ``C × C`` linears, no LayerNorm, no FFN, no
residual: the caller decides what to add the result to.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn


class RelationAttention(nn.Module):
    """``forward(queries (B, Nq, C), keys (B, Nk, C), key_mask (B, Nk) bool True=valid)
    → (B, Nq, C)``. Masked keys get zero attention weight."""

    def __init__(self, dim: int, num_heads: int = 16) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.query_embed = nn.Linear(dim, dim)
        self.key_embed = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        b, nq, c = queries.shape
        nk, h = keys.shape[1], self.num_heads
        q = self.query_embed(queries).view(b, nq, h, c // h).transpose(1, 2)
        k = self.key_embed(keys).view(b, nk, h, c // h).transpose(1, 2)
        v = self.value(keys).view(b, nk, h, c // h).transpose(1, 2)
        logits = q @ k.transpose(-2, -1) / (c // h) ** 0.5  # (B, H, Nq, Nk)
        if key_mask is not None:
            logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(b, nq, c)
        return self.out(out)

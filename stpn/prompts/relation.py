"""SELSA-style relation attention (Wu et al., "Sequence Level Semantics Aggregation for Video
Object Detection", ICCV 2019), used by the released STPN "att" predictor and by SELSA's RoI
feature aggregation.

Queries attend to keys, which also provide the values (SELSA aggregates the reference features
themselves). With ``H`` heads of width ``C / H``::

    q = W_q x,  k = W_k y,  v = W_v y                       (four C × C linears with bias)
    out = W_o concat_h softmax(q_h k_hᵀ / sqrt(C / H)) v_h

No LayerNorm, FFN or residual: the caller decides what to add the result to.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RelationAttention(nn.Module):
    """``forward(queries (B, Nq, C), keys (B, Nk, C), key_mask (B, Nk)) → (B, Nq, C)``.

    ``key_mask`` (bool, True = valid) removes padded keys: they are zeroed and excluded from the
    softmax, so the output equals the one computed without them. Every batch element needs at
    least one valid key.
    """

    def __init__(self, dim: int, num_heads: int = 16) -> None:
        super().__init__()
        if dim < 1 or num_heads < 1 or dim % num_heads != 0:
            raise ValueError(f"dim {dim} must be a positive multiple of num_heads {num_heads}")
        self.dim, self.num_heads = dim, num_heads
        self.query_embed = nn.Linear(dim, dim)
        self.key_embed = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, queries: Tensor, keys: Tensor, key_mask: Optional[Tensor] = None) -> Tensor:
        self._check(queries, keys, key_mask)
        attn_mask = None
        if key_mask is not None:
            key_mask = key_mask.to(device=keys.device, dtype=torch.bool)
            keys = keys.masked_fill(~key_mask[:, :, None], 0.0)
            attn_mask = key_mask[:, None, None, :]  # (B, 1, 1, Nk), True = attend
        q = self._split_heads(self.query_embed(queries))  # (B, H, Nq, C/H)
        k = self._split_heads(self.key_embed(keys))  # (B, H, Nk, C/H)
        v = self._split_heads(self.value(keys))
        mixed = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, H, Nq, C/H)
        return self.out(mixed.transpose(1, 2).flatten(2))

    def _split_heads(self, x: Tensor) -> Tensor:
        """``(B, N, C)`` → ``(B, H, N, C/H)``."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def _check(self, queries: Tensor, keys: Tensor, key_mask: Optional[Tensor]) -> None:
        for name, x in (("queries", queries), ("keys", keys)):
            if not isinstance(x, Tensor) or x.dim() != 3:
                shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(f"{name} must be (B, N, C), got {shape}")
            if x.shape[-1] != self.dim:
                raise ValueError(f"{name} width {x.shape[-1]} != relation attention dim {self.dim}")
        if queries.shape[0] != keys.shape[0]:
            raise ValueError(f"queries batch size {queries.shape[0]} != keys batch size {keys.shape[0]}")
        if keys.shape[1] == 0:
            raise ValueError("keys are empty (Nk = 0): nothing to attend to")
        if key_mask is None:
            return
        if tuple(key_mask.shape) != tuple(keys.shape[:2]):
            raise ValueError(
                f"key_mask shape {tuple(key_mask.shape)} != keys (B, Nk) = {tuple(keys.shape[:2])}"
            )
        empty = (~key_mask.bool().any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"batch elements {empty} have no valid key (key_mask all False)")

"""The Sparse Temporal Transformer: selected queries of the current frame attend to windows of
the previous key frames; the attended vectors are added back (residual) at their positions.

Shapes: current features ``(B, C, h, w)``; key frames a list of up to 7 ``(B, C, h, w)`` maps,
nearest first; output ``(B, C, h, w)``. Queries, keys and values are 1×1 projections ``C → dim``
computed once per map (keys also get a learned embedding of their key frame), *then* the
windows are gathered, so the windows' overlap costs no projection work; each query attends to
its own ≤ 407 keys with multi-head scaled dot-product attention (keys outside the frame masked).
The result goes back to ``C`` channels through a zero-initialised linear layer, so an untrained
STT leaves the per-frame features unchanged.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stpn.vss.key_windows import NUM_KEY_FRAMES, gather_windows, key_count, window_half_sizes


class SparseTemporalTransformer(nn.Module):
    def __init__(self, channels: int, dim: int = 128, heads: int = 4, num_key_frames: int = NUM_KEY_FRAMES) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.half_sizes = window_half_sizes(num_key_frames)
        self.query_proj = nn.Conv2d(channels, dim, 1)
        self.key_proj = nn.Conv2d(channels, dim, 1)
        self.value_proj = nn.Conv2d(channels, dim, 1)
        self.frame_embed = nn.Parameter(torch.zeros(num_key_frames, dim))  # which key frame a key is from
        self.out = nn.Linear(dim, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def num_keys(self) -> int:
        """Keys per query with all key frames present (407 for the paper's settings)."""
        return key_count(self.half_sizes)

    def gather_keys(self, key_frames: Sequence[Tensor], positions: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Keys and values ``(B, N, K, dim)`` and the ``valid`` mask ``(B, N, K)`` over the given
        key frames (K = the sum of their window areas)."""
        if len(key_frames) > len(self.half_sizes):
            raise ValueError(f"at most {len(self.half_sizes)} key frames, got {len(key_frames)}")
        keys, values, valid = [], [], []
        for k, frame in enumerate(key_frames):
            key_map = self.key_proj(frame) + self.frame_embed[k][:, None, None]
            window, inside = gather_windows(key_map, positions, self.half_sizes[k])
            keys.append(window)
            values.append(gather_windows(self.value_proj(frame), positions, self.half_sizes[k])[0])
            valid.append(inside)
        return torch.cat(keys, dim=2), torch.cat(values, dim=2), torch.cat(valid, dim=2)

    def forward(self, features: Tensor, key_frames: Sequence[Tensor], positions: Tensor) -> Tensor:
        """``features`` ``(B, C, h, w)`` with the attended context added at ``positions``
        ``(B, N)``; unchanged when there are no key frames."""
        if not key_frames:
            return features
        batch, channels, height, width = features.shape
        count = positions.shape[1]
        queries = self.query_proj(features).flatten(2).transpose(1, 2)  # (B, hw, dim)
        dim = queries.shape[-1]
        queries = torch.gather(queries, 1, positions[..., None].expand(-1, -1, dim))  # (B, N, dim)
        keys, values, valid = self.gather_keys(key_frames, positions)  # (B, N, K, dim), (B, N, K)

        def heads(x: Tensor) -> Tensor:  # (B, N, L, dim) -> (B·N, heads, L, dim / heads)
            return x.reshape(batch * count, x.shape[2], self.heads, dim // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            heads(queries[:, :, None]), heads(keys), heads(values),
            attn_mask=valid.reshape(batch * count, 1, 1, -1))  # (B·N, heads, 1, dim / heads)
        update = self.out(attended.reshape(batch, count, dim))  # (B, N, C)
        flat = features.flatten(2)
        delta = torch.zeros_like(flat).scatter(2, positions[:, None, :].expand(-1, channels, -1),
                                               update.transpose(1, 2))
        return (flat + delta).reshape(batch, channels, height, width)

"""The Sparse Temporal Transformer: selected queries of the current frame attend to windows of
the previous key frames; the attended vectors are added back (residual) at their positions.

Shapes: current features ``(B, C, h, w)``; key frames a list of up to 7 ``(B, C, h, w)`` maps,
nearest first; output ``(B, C, h, w)``. Queries, keys and values are projected to ``dim``
channels by :class:`torch.nn.MultiheadAttention` inputs (1×1 reductions ``C → dim`` first, so
the 407 gathered keys stay small), the result goes back to ``C`` with a zero-initialised
projection: an untrained STT leaves the per-frame features unchanged.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from stpn.vss.key_windows import NUM_KEY_FRAMES, gather_windows, key_count, window_half_sizes


class SparseTemporalTransformer(nn.Module):
    def __init__(self, channels: int, dim: int = 128, heads: int = 4, num_key_frames: int = NUM_KEY_FRAMES) -> None:
        super().__init__()
        self.half_sizes = window_half_sizes(num_key_frames)
        self.query_proj = nn.Conv2d(channels, dim, 1)
        self.key_proj = nn.Conv2d(channels, dim, 1)
        self.frame_embed = nn.Parameter(torch.zeros(num_key_frames, dim))  # which key frame a key is from
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def num_keys(self) -> int:
        """Keys per query with all key frames present (407 for the paper's settings)."""
        return key_count(self.half_sizes)

    def gather_keys(self, key_frames: Sequence[Tensor], positions: Tensor) -> tuple[Tensor, Tensor]:
        """Projected keys ``(B, N, K, dim)`` and their ``valid`` mask ``(B, N, K)`` over the given
        key frames (K = the sum of their window areas)."""
        if len(key_frames) > len(self.half_sizes):
            raise ValueError(f"at most {len(self.half_sizes)} key frames, got {len(key_frames)}")
        keys, valid = [], []
        for k, frame in enumerate(key_frames):
            window, inside = gather_windows(self.key_proj(frame), positions, self.half_sizes[k])
            keys.append(window + self.frame_embed[k])
            valid.append(inside)
        return torch.cat(keys, dim=2), torch.cat(valid, dim=2)

    def forward(self, features: Tensor, key_frames: Sequence[Tensor], positions: Tensor) -> Tensor:
        """``features`` ``(B, C, h, w)`` with the attended context added at ``positions``
        ``(B, N)``; unchanged when there are no key frames."""
        if not key_frames:
            return features
        batch, channels, height, width = features.shape
        count = positions.shape[1]
        queries = self.query_proj(features).flatten(2).transpose(1, 2)  # (B, hw, dim)
        queries = torch.gather(queries, 1, positions[..., None].expand(-1, -1, queries.shape[-1]))
        keys, valid = self.gather_keys(key_frames, positions)
        dim = queries.shape[-1]
        attended, _ = self.attention(self.norm(queries).reshape(batch * count, 1, dim),
                                     self.norm(keys).reshape(batch * count, -1, dim),
                                     keys.reshape(batch * count, -1, dim),
                                     key_padding_mask=~valid.reshape(batch * count, -1), need_weights=False)
        update = self.out(attended.reshape(batch, count, dim))  # (B, N, C)
        flat = features.flatten(2)
        delta = torch.zeros_like(flat).scatter(2, positions[:, None, :].expand(-1, channels, -1),
                                               update.transpose(1, 2))
        return (flat + delta).reshape(batch, channels, height, width)

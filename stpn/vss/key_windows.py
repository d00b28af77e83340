"""Key selection of STT: a square window around each query's position in each previous key frame.

For the k-th previous key frame (k = 0 for the nearest) the window's half side is
``min(s + eps * k, e)``; with s = 1, e = 4, eps = 1 the sides are 3, 5, 7, 9, 9, 9, 9, i.e.
9 + 25 + 49 + 4·81 = 407 keys per query over seven key frames (the supplementary's printed
sum leaves out one 9²). Windows are gathered by indexing a zero-padded feature map, so memory is
``B × N × K × C`` for N queries and K keys, never ``(h·w)²``.
"""
from __future__ import annotations

import torch
from torch import Tensor

START_SIZE, END_SIZE, EXPANSION = 1, 4, 1
NUM_KEY_FRAMES = 7


def window_half_sizes(num_frames: int = NUM_KEY_FRAMES, start: int = START_SIZE, end: int = END_SIZE,
                      expansion: int = EXPANSION) -> list[int]:
    """Half sides ``min(start + expansion * k, end)`` for k = 0 .. num_frames - 1."""
    return [min(start + expansion * k, end) for k in range(num_frames)]


def key_count(half_sizes: list[int]) -> int:
    """Keys per query: the sum of the window areas ``(2a + 1)²``."""
    return sum((2 * a + 1) ** 2 for a in half_sizes)


def gather_windows(features: Tensor, positions: Tensor, half: int) -> tuple[Tensor, Tensor]:
    """The ``(2·half + 1)²`` feature vectors around each query position.

    Args:
        features: key frame ``(B, C, h, w)``.
        positions: flat query indices ``(B, N)`` into ``h·w`` (row-major).
        half: the window's half side.

    Returns:
        keys ``(B, N, K, C)`` in row-major window order (top-left first) and ``valid`` ``(B, N, K)``
        bool, False where the window reaches past the frame (those keys are zeros).
    """
    batch, channels, height, width = features.shape
    side = 2 * half + 1
    padded = torch.nn.functional.pad(features, (half, half, half, half))
    padded_width = width + 2 * half
    flat = padded.flatten(2).transpose(1, 2)  # (B, (h + 2a)(w + 2a), C)
    rows, cols = positions // width, positions % width  # (B, N)
    offsets = torch.arange(-half, half + 1, device=features.device)
    dy, dx = offsets.repeat_interleave(side), offsets.repeat(side)  # (K,)
    key_rows = rows[..., None] + dy  # (B, N, K)
    key_cols = cols[..., None] + dx
    index = (key_rows + half) * padded_width + (key_cols + half)
    keys = torch.gather(flat, 1, index.reshape(batch, -1, 1).expand(-1, -1, channels))
    valid = (key_rows >= 0) & (key_rows < height) & (key_cols >= 0) & (key_cols < width)
    return keys.reshape(batch, positions.shape[1], side * side, channels), valid

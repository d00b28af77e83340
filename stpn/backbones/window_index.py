"""Row indices that move a ``[prompts; tokens]`` sequence into Swin windows and back.

Shifted-window attention reorders the ``H × W`` map: cyclic shift by ``-shift``, zero padding at
the bottom/right up to whole windows, window partition; the output goes back by the reverse
steps (timm's ``SwinTransformerBlock._attn``). With prompts prepended to every window, all of
that is one row gather each way; :func:`window_indices` computes the two index vectors once per
map size (cached) so each block pays one ``index_select`` in and one out.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class WindowIndex:
    """``gather``: ``(nW·(P + M),)`` rows of ``[prompts; tokens]`` (plus, when ``padded``, one
    zero row at index ``P + H·W``) forming the windows ``[P prompts, M window tokens]`` in
    timm's window order. ``scatter``: ``(P + H·W,)`` rows of the windowed output giving
    ``[prompts; tokens]`` back (the prompts from window 0). ``grid``: windows per (column, row)
    of the padded map as ``(rows, cols)``."""

    gather: Tensor
    scatter: Tensor
    grid: tuple[int, int]
    padded: bool


@functools.lru_cache(maxsize=64)
def window_indices(height: int, width: int, window: tuple[int, int], shift: tuple[int, int],
                   num_prompts: int, device: torch.device) -> WindowIndex:
    """Indices for an ``height × width`` map, ``window = (wh, ww)``, ``shift = (sh, sw)``, on ``device``."""
    (wh, ww), (sh, sw), p = window, shift, num_prompts
    rows, cols = -(-height // wh), -(-width // ww)
    padded = rows * wh != height or cols * ww != width
    # position (y, x) of the shifted, padded map reads the original token ((y + sh) % H, (x + sw) % W)
    y = torch.arange(rows * wh).view(rows, wh, 1, 1)
    x = torch.arange(cols * ww).view(1, 1, cols, ww)
    token = p + ((y + sh) % height) * width + (x + sw) % width
    token = torch.where((y < height) & (x < width), token, p + height * width)  # padding: zero row
    token = token.permute(0, 2, 1, 3).reshape(rows * cols, wh * ww)  # (nW, M) in window order
    prompts = torch.arange(p).expand(rows * cols, p)
    gather = torch.cat([prompts, token], 1).flatten()
    # original token (i, j) sits at shifted position ((i - sh) % H, (j - sw) % W)
    sy = (torch.arange(height) - sh) % height
    sx = (torch.arange(width) - sw) % width
    win = (sy // wh).view(-1, 1) * cols + (sx // ww).view(1, -1)
    within = (sy % wh).view(-1, 1) * ww + (sx % ww).view(1, -1)
    scatter = torch.cat([torch.arange(p), (win * (p + wh * ww) + p + within).flatten()])
    return WindowIndex(gather.to(device), scatter.to(device), (rows, cols), padded)

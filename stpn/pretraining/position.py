"""Fixed 2-D sin-cos position embedding of a patch grid (MAE's), built by timm."""
from __future__ import annotations

from timm.layers import build_sincos2d_pos_embed
from torch import Tensor


def sincos_position_embedding(grid: tuple[int, int], dim: int) -> Tensor:
    """``(h, w)``, width ``dim`` (a multiple of 4) → ``(h * w, dim)`` in row-major token order."""
    if dim % 4:
        raise ValueError(f"a 2-D sin-cos position embedding needs a width divisible by 4, got {dim}")
    return build_sincos2d_pos_embed(list(grid), dim)

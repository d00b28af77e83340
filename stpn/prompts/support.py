"""Input checks and masked reductions shared by the DVP predictors."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def check_support(support: Tensor, mask: Optional[Tensor], support_dim: int) -> Tensor:
    """Validate ``support (B, K, N, d_L)`` and ``mask (B, K)``; return the mask (all True if None).

    Raises ``ValueError`` for a wrong rank or width, a mask of another shape, or a clip with no
    valid support frame.
    """
    if not isinstance(support, Tensor) or support.dim() != 4:
        shape = tuple(support.shape) if isinstance(support, Tensor) else type(support).__name__
        raise ValueError(f"support embeddings must be (B, K, N, d_L), got {shape}")
    if support.shape[-1] != support_dim:
        raise ValueError(f"support embedding width {support.shape[-1]} != predictor support_dim {support_dim}")
    b, k = support.shape[:2]
    if mask is None:
        return torch.ones(b, k, dtype=torch.bool, device=support.device)
    if tuple(mask.shape) != (b, k):
        raise ValueError(f"mask shape {tuple(mask.shape)} != (B, K) = {(b, k)}")
    mask = mask.to(device=support.device, dtype=torch.bool)
    if not bool(mask.any(dim=1).all()):
        empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"clips {empty} have no valid support frame (mask all False)")
    return mask


def masked_mean_over_frames(support: Tensor, mask: Tensor) -> Tensor:
    """``(B, K, N, C)`` with ``(B, K)`` validity → mean over valid frames ``(B, N, C)``."""
    weights = mask.to(support.dtype)[:, :, None, None]
    return (support * weights).sum(1) / weights.sum(1)


def token_padding_mask(mask: Tensor, tokens_per_frame: int) -> Tensor:
    """``(B, K)`` frame validity → ``(B, K·N)`` token validity (frame-major, as ``flatten(1, 2)``)."""
    return mask[:, :, None].expand(-1, -1, tokens_per_frame).flatten(1)

"""Adaptive spatial attention dropout (ASAD, DropMAE §3.2) on one attention map over two frames.

The tokens are ``[frame 0 (N tokens), frame 1 (N tokens)]``. Per head, on the pre-softmax logits
``A (2N, 2N)``:

* ``S = softmax(A)`` over all 2N keys;
* ``f_tem(i) = max_{j in the other frame} S_ij`` (how well query ``i`` matches the other frame);
* spatial importance of key ``j`` for ``i``: ``S_ij`` over the other ``N - 1`` keys of ``i``'s own
  frame (the self entry is 0), renormalised to sum to 1 over them;
* ``W_ij = f_tem(i) * importance_ij``: zero on the diagonal and across frames;
* ``int(P * (N - 1)) * 2N`` entries are drawn from ``W`` without replacement (a multinomial over
  all ``4N^2`` entries of the head) and set to ``-inf`` before the softmax.

Choices where the paper is vague: the weights are computed without gradient (they only choose
which entries to drop); an entry whose weight underflows to 0 in float32 gets the smallest
positive weight, so a head always has the ``2N(N - 1)`` candidates the count assumes (the count
is below that for any ``P < 1``); with ``P = 0`` (or ``N = 1``) no random number is drawn, so
DropMAE with ``P = 0`` follows TwinMAE's random stream exactly.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor


def frame_layout(tokens_per_frame: int, device: Optional[torch.device] = None) -> tuple[Tensor, Tensor]:
    """``(same_frame, candidates)``, both ``(2N, 2N)`` bool: keys in the query's frame, and those
    of them that ASAD may drop (the same without the diagonal)."""
    frame = torch.arange(2 * tokens_per_frame, device=device) // tokens_per_frame
    same = frame[:, None] == frame[None, :]
    return same, same & ~torch.eye(2 * tokens_per_frame, dtype=torch.bool, device=device)


def drop_count(tokens_per_frame: int, p: float) -> int:
    """Entries dropped per head: ``int(P * (N - 1)) * 2N``."""
    return int(p * (tokens_per_frame - 1)) * 2 * tokens_per_frame


@torch.no_grad()
def drop_weights(logits: Tensor, tokens_per_frame: int) -> Tensor:
    """``logits (..., 2N, 2N)`` → ``W (..., 2N, 2N)`` (float32), the dropout weights above."""
    n2 = 2 * tokens_per_frame
    if logits.shape[-2:] != (n2, n2):
        raise ValueError(f"ASAD expects (..., {n2}, {n2}) logits for two frames of {tokens_per_frame} tokens, "
                         f"got {tuple(logits.shape)}")
    same, candidates = frame_layout(tokens_per_frame, logits.device)
    scores = logits.float().softmax(-1)
    temporal = scores.masked_fill(same, 0).amax(-1, keepdim=True)  # (..., 2N, 1)
    spatial = scores.masked_fill(~candidates, 0)
    spatial = spatial / spatial.sum(-1, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    weights = temporal * spatial
    tiny = torch.finfo(torch.float32).tiny
    return torch.where(candidates, weights.clamp_min(tiny), torch.zeros((), device=logits.device))


@torch.no_grad()
def sample_drops(weights: Tensor, count: int, generator: Optional[torch.Generator] = None) -> Tensor:
    """``weights (..., M, M)`` → bool mask of the same shape with exactly ``count`` True entries
    per ``(M, M)`` map, drawn without replacement with probabilities proportional to ``weights``."""
    mask = torch.zeros(weights.shape, dtype=torch.bool, device=weights.device)
    if count == 0:
        return mask
    flat = weights.reshape(-1, weights.shape[-2] * weights.shape[-1])
    if count > int((flat > 0).sum(-1).min()):
        raise ValueError(f"cannot drop {count} entries: a map has only {int((flat > 0).sum(-1).min())} candidates")
    picks = torch.multinomial(flat, count, replacement=False, generator=generator)
    mask.view(flat.shape).scatter_(1, picks, True)
    return mask


def asad_mask(logits: Tensor, tokens_per_frame: int, p: float,
              generator: Optional[torch.Generator] = None) -> Tensor:
    """``logits (B, H, 2N, 2N)`` → bool ``(B, H, 2N, 2N)``: the entries ASAD drops (True)."""
    if not 0 <= p < 1:
        raise ValueError(f"ASAD drop ratio P must be in [0, 1), got {p}")
    count = drop_count(tokens_per_frame, p)
    if count == 0:
        return torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
    return sample_drops(drop_weights(logits, tokens_per_frame), count, generator)


def apply_asad(logits: Tensor, tokens_per_frame: int, p: float,
               generator: Optional[torch.Generator] = None) -> Tensor:
    """``logits (B, H, 2N, 2N)`` with the ASAD-dropped entries set to ``-inf`` (same shape)."""
    return logits.masked_fill(asad_mask(logits, tokens_per_frame, p, generator), float("-inf"))

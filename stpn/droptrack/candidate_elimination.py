"""OSTrack's early candidate elimination (Ye et al., ECCV 2022), as its code does it.

In each elimination block (OSTrack: blocks 3, 6 and 9, 0-based, of ViT-B's 12) the search tokens
are ranked by the attention the template gives them **in that block**: the softmax attention
probabilities of the block (computed from the block's input after ``norm1``, over every key of
the sequence, prompts included), rows = the chosen template queries, columns = the search keys,
averaged over the heads and over those rows. OSTrack's configs use ``CE_TEMPLATE_RANGE:
CTR_POINT``: one template query, the token at row and column ``(side - 1) // 2`` of the template
grid (``"centre"`` here); ``"all"`` averages over every template token (its ``ALL``). The
``ceil(keep_ratio · n)`` best of the ``n`` search tokens still present are kept (``n`` shrinks
block by block: 256 → 180 → 126 → 89 at keep 0.7), the others leave the sequence for the later
blocks. The ranking takes no gradient (OSTrack sorts probabilities; only the indices are used).

OSTrack drops the tokens after the block's attention and before its MLP; the MLP acts on each
token alone, so dropping them after the whole block leaves the same kept tokens, which is what
:func:`eliminate` does. After the final norm, :func:`restore_search` puts the kept tokens back in
their grid positions and fills the dropped ones with zeros (OSTrack's ``recover``) so the head
sees the full ``F × F`` map.

Training: OSTrack keeps every token before epoch ``CE_START_EPOCH`` (20) and then lowers the
keep ratio along a half-cosine to its final value over ``CE_WARM_EPOCH`` epochs (50 in the
GOT-10k configs), one value per epoch (its ``adjust_keep_rate`` with ``ITERS_PER_EPOCH=1``):
:class:`KeepRatioRamp`. At test time the final ratio applies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

TEMPLATE_RANGES = ("centre", "all")


@dataclass(frozen=True)
class KeepRatioRamp:
    """The training keep ratio per epoch: 1 before ``start_epoch``, the final ratio from
    ``start_epoch + warm_epochs`` on, a half-cosine between (OSTrack's ``adjust_keep_rate``)."""

    start_epoch: int = 20
    warm_epochs: int = 50

    def __post_init__(self) -> None:
        if self.start_epoch < 0 or self.warm_epochs < 0:
            raise ValueError(f"start_epoch and warm_epochs must be >= 0, got {self.start_epoch}, {self.warm_epochs}")

    def keep_ratio(self, epoch: int, final: float) -> float:
        if epoch < self.start_epoch:
            return 1.0
        if epoch >= self.start_epoch + self.warm_epochs:
            return final
        progress = (epoch - self.start_epoch) / self.warm_epochs
        return final + (1.0 - final) * (math.cos(progress * math.pi) + 1.0) * 0.5


def centre_index(side: int) -> int:
    """Flat index of OSTrack's ``CTR_POINT`` token in a ``side × side`` template grid (27 for 8 × 8)."""
    c = (side - 1) // 2
    return c * side + c


def template_attention(block: nn.Module, x: Tensor, rows: Tensor) -> Tensor:
    """Mean attention probability of the query tokens ``rows`` (indices into ``x``'s tokens)
    to every key, over heads and rows: ``x (B, L, C)`` → ``(B, L)``.

    ``block`` is a timm ViT block (``norm1``, ``attn.qkv``, ``attn.q_norm`` / ``k_norm``);
    its softmax is recomputed here because the fused attention does not return it."""
    attn = block.attn
    with torch.no_grad():
        h = block.norm1(x)
        b, n, _ = h.shape
        qkv = attn.qkv(h).reshape(b, n, 3, attn.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k = attn.q_norm(qkv[0][:, :, rows]), attn.k_norm(qkv[1])
        probs = ((q * attn.scale) @ k.transpose(-2, -1)).float().softmax(-1)  # (B, H, R, L)
        return probs.mean((1, 2))


def kept_count(num_search: int, keep_ratio: float) -> int:
    """``ceil(keep_ratio · num_search)`` (OSTrack's ``lens_keep``)."""
    return math.ceil(keep_ratio * num_search)


def eliminate(x: Tensor, search_start: int, scores: Tensor, keep_ratio: float,
              index: Tensor) -> tuple[Tensor, Tensor]:
    """Keep the best-scored search tokens.

    Args:
        x: ``(B, P + n, C)``: ``P = search_start`` tokens (prompts, template) always kept,
            then the ``n`` search tokens still present.
        scores: ``(B, n)`` their template attention (:func:`template_attention`'s search columns).
        index: ``(B, n)`` their positions in the full search grid.

    Returns ``(x (B, P + k, C), index (B, k))`` with ``k = ceil(keep_ratio · n)``; the kept
    tokens stay in their original order."""
    keep = kept_count(scores.shape[1], keep_ratio)
    if keep >= scores.shape[1]:
        return x, index
    top = scores.topk(keep, dim=1).indices.sort(dim=1).values  # (B, k)
    search = x[:, search_start:].gather(1, top.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
    return torch.cat([x[:, :search_start], search], 1), index.gather(1, top)


def restore_search(tokens: Tensor, index: Optional[Tensor], num_search: int) -> Tensor:
    """``tokens (B, k, C)`` kept search tokens at grid positions ``index (B, k)`` → ``(B, num_search, C)``
    with zeros where tokens were dropped; ``index=None`` (nothing dropped) returns ``tokens``."""
    if index is None:
        return tokens
    out = tokens.new_zeros(tokens.shape[0], num_search, tokens.shape[-1])
    return out.scatter(1, index.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]), tokens)

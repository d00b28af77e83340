"""The predictors of the authors' released code, which differ from the paper's text
(docs/design.md §3.2). With ``d = 96`` (Swin-T's first-stage width) they add the 0.11M / 0.07M
parameters behind the paper's 45.01M / 44.96M detector totals.

Same interface as :mod:`stpn.prompts.predictors`: ``forward(support (B, K, N, d_L),
mask (B, K)) → (B, N_P, d)``. The released code treats one clip's support frames as a single set
(no batch, no padding); here each batch element is its own set and padded frames are left out.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from stpn.prompts.predictors import check_sizes, valid_support
from stpn.prompts.relation import RelationAttention
from stpn.prompts.support import masked_mean_over_frames, token_padding_mask


class RelationPredictor(nn.Module):
    """Released "att": reduce, then learnable queries read all support tokens by relation attention.

    ``Linear(d_L → d)`` on every support token, ``N_P`` learnable queries (``N(0, 1)`` init, as
    released) and one SELSA :class:`~stpn.prompts.relation.RelationAttention` with 16 heads over
    all valid support tokens of the clip::

        R = E_sup W_r + b_r                       (B, K·N, d)
        P = RelationAttention(Q, R)               (B, N_P, d)   R gives keys and values

    No LayerNorm, FFN or residual. 111,552 parameters at d_L = 768, d = 96, N_P = 5.
    """

    def __init__(self, support_dim: int, prompt_dim: int, num_prompts: int = 5, num_heads: int = 16) -> None:
        super().__init__()
        check_sizes(
            support_dim=support_dim, prompt_dim=prompt_dim, num_prompts=num_prompts, num_heads=num_heads
        )
        self.support_dim, self.prompt_dim, self.num_prompts = support_dim, prompt_dim, num_prompts
        self.reduce = nn.Linear(support_dim, prompt_dim)
        self.query = nn.Parameter(torch.randn(num_prompts, prompt_dim))
        self.relation = RelationAttention(prompt_dim, num_heads)

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``(B, K, N, d_L)``, ``(B, K)`` → ``(B, N_P, d)``."""
        support, mask = valid_support(support, mask, self.support_dim)
        b, _, n, _ = support.shape
        reduced = self.reduce(support.flatten(1, 2))  # (B, K·N, d)
        return self.relation(self.query.expand(b, -1, -1), reduced, token_padding_mask(mask, n))


class TopKAveragePredictor(nn.Module):
    """Released "avg": the most salient tokens of each support frame, averaged, then reduced.

    Per support frame the ``N_P`` tokens with the largest L1 norm, sorted by norm (descending);
    rank ``r`` of the result is the mean of the rank-``r`` tokens over the valid frames; then
    ``Linear(d_L → d)``. The only parameters are that linear's (73,824 at 768 → 96). Needs
    ``N ≥ N_P`` tokens per frame. Token selection is not differentiable; gradients reach the
    selected tokens only.
    """

    def __init__(self, support_dim: int, prompt_dim: int, num_prompts: int = 5) -> None:
        super().__init__()
        check_sizes(support_dim=support_dim, prompt_dim=prompt_dim, num_prompts=num_prompts)
        self.support_dim, self.prompt_dim, self.num_prompts = support_dim, prompt_dim, num_prompts
        self.reduce = nn.Linear(support_dim, prompt_dim)

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``(B, K, N, d_L)``, ``(B, K)`` → ``(B, N_P, d)``."""
        support, mask = valid_support(support, mask, self.support_dim)
        if support.shape[2] < self.num_prompts:
            raise ValueError(
                f"TopKAveragePredictor needs at least N_P={self.num_prompts} tokens per frame, "
                f"got N={support.shape[2]}"
            )
        order = support.abs().sum(-1).topk(self.num_prompts, dim=-1).indices  # (B, K, N_P)
        top = support.gather(2, order[..., None].expand(-1, -1, -1, support.shape[-1]))  # (B, K, N_P, d_L)
        return self.reduce(masked_mean_over_frames(top, mask))

"""The predictors of the authors' released code, which differ from the paper's text
(DESIGN.md §3). With ``d = 96`` (Swin-T's first stage) they add the 0.11M / 0.07M parameters
behind the paper's 45.01M / 44.96M detector totals."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from stpn.prompts.relation import RelationAttention
from stpn.prompts.support import check_support, masked_mean_over_frames, token_padding_mask


class RelationPredictor(nn.Module):
    """Released "att": ``Linear(d_L → d)`` on all support tokens, ``N_P`` learnable queries
    (``N(0, 1)`` init) and one SELSA relation attention with 16 heads over all valid support
    tokens. No LayerNorm, FFN or residual. 111,552 parameters at d_L=768, d=96, N_P=5."""

    def __init__(self, support_dim: int, prompt_dim: int, num_prompts: int = 5, num_heads: int = 16) -> None:
        super().__init__()
        self.support_dim, self.prompt_dim, self.num_prompts = support_dim, prompt_dim, num_prompts
        self.reduce = nn.Linear(support_dim, prompt_dim)
        self.query = nn.Parameter(torch.randn(num_prompts, prompt_dim))
        self.relation = RelationAttention(prompt_dim, num_heads)

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        mask = check_support(support, mask, self.support_dim)
        b, _, n, _ = support.shape
        keys = self.reduce(support.flatten(1, 2))  # (B, K·N, d)
        return self.relation(self.query.expand(b, -1, -1), keys, token_padding_mask(mask, n))


class TopKAveragePredictor(nn.Module):
    """Released "avg": per support frame the ``N_P`` tokens with the largest L1 norm (in
    descending order), averaged rank by rank over the valid frames, then ``Linear(d_L → d)``."""

    def __init__(self, support_dim: int, prompt_dim: int, num_prompts: int = 5) -> None:
        super().__init__()
        self.support_dim, self.prompt_dim, self.num_prompts = support_dim, prompt_dim, num_prompts
        self.reduce = nn.Linear(support_dim, prompt_dim)

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        mask = check_support(support, mask, self.support_dim)
        if support.shape[2] < self.num_prompts:
            raise ValueError(f"need at least N_P={self.num_prompts} tokens per frame, got {support.shape[2]}")
        order = support.abs().sum(-1).topk(self.num_prompts, dim=-1).indices  # (B, K, N_P)
        top = support.gather(2, order[..., None].expand(-1, -1, -1, support.shape[-1]))
        return self.reduce(masked_mean_over_frames(top, mask))

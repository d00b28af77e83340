"""STPN deep (paper §4.3, eq. 11): one prompt set per transformer block."""
from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn


class DeepPrompts(nn.Module):
    """Wrap any predictor: its ``(B, N_P, d)`` output goes through ``L`` separate linear layers
    ``d → prompt_dims[i]`` ("L sets of DVPs are predicted via L separate FC layers").

    ``forward(support (B, K, N, d_L), mask (B, K)) → [(B, N_P, prompt_dims[i]) for i in range(L)]``.
    """

    def __init__(self, predictor: nn.Module, prompt_dims: Sequence[int]) -> None:
        super().__init__()
        if len(prompt_dims) == 0:
            raise ValueError("deep prompting needs at least one block width")
        self.predictor = predictor
        self.prompt_dims = tuple(int(d) for d in prompt_dims)
        self.projections = nn.ModuleList(nn.Linear(predictor.prompt_dim, d) for d in self.prompt_dims)

    @property
    def support_dim(self) -> int:
        return self.predictor.support_dim

    @property
    def num_prompts(self) -> int:
        return self.predictor.num_prompts

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> list[Tensor]:
        shared = self.predictor(support, mask)
        return [proj(shared) for proj in self.projections]

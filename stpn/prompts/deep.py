"""STPN deep (paper §4.3, eq. 11, after VPT-deep): one prompt set per transformer block."""
from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor, nn

from stpn.prompts.predictors import check_sizes


class DeepPrompts(nn.Module):
    """Wrap any predictor: "L sets of DVPs are predicted via L separate FC layers".

    The base predictor's prompts ``(B, N_P, d)`` go through ``L = len(prompt_dims)`` separate
    ``Linear(d → prompt_dims[i])`` layers, one per transformer block (the first set enters block
    1, as the shallow prompts do)::

        forward(support (B, K, N, d_L), mask (B, K)) → [(B, N_P, prompt_dims[i]) for i in range(L)]

    Exposes ``support_dim`` and ``num_prompts`` of the base predictor and ``prompt_dims``
    (a deep predictor has one width per block instead of a single ``prompt_dim``).
    """

    def __init__(self, predictor: nn.Module, prompt_dims: Sequence[int]) -> None:
        super().__init__()
        prompt_dims = tuple(prompt_dims)
        if len(prompt_dims) == 0:
            raise ValueError("deep prompting needs at least one block width in prompt_dims")
        check_sizes(**{f"prompt_dims[{i}]": d for i, d in enumerate(prompt_dims)})
        for attr in ("support_dim", "prompt_dim", "num_prompts"):
            if not hasattr(predictor, attr):
                raise ValueError(f"{type(predictor).__name__} has no `{attr}`: not a DVP predictor")
        self.predictor = predictor
        self.prompt_dims = prompt_dims
        self.projections = nn.ModuleList(nn.Linear(predictor.prompt_dim, d) for d in prompt_dims)

    @property
    def support_dim(self) -> int:
        return self.predictor.support_dim

    @property
    def num_prompts(self) -> int:
        return self.predictor.num_prompts

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> list[Tensor]:
        shared = self.predictor(support, mask)  # (B, N_P, d)
        return [proj(shared) for proj in self.projections]

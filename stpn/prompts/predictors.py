"""The DVP predictors of the paper (§4.2, Fig. 2b/c).

Every predictor maps support embeddings ``(B, K, N, d_L)`` (K frames, N tokens each) and an
optional validity mask ``(B, K)`` (True = real frame) to prompts ``(B, N_P, d)``. Masked frames
never influence the result: they are excluded from attention and from averages.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from stpn.prompts.support import check_support, masked_mean_over_frames, token_padding_mask


def _ffn(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.GELU(), nn.Linear(hidden, dim_out))


class TransformerPredictor(nn.Module):
    """Paper eq. 2–4: learnable prompt queries read the concatenated support tokens.

    ``K = Concat(E_sup)``; ``Q̂ = MHA(LN(Q), LN(K)) + Q``; ``P = FFN(LN(Q̂)) + LN(Q̂)``.
    The paper's eq. 4 gives ``P`` width ``d`` while the residual keeps width ``d_L``; we read it
    as a final ``Linear(d_L → d)`` to the backbone's prompt width (identity when ``d = d_L``).
    The FFN hidden width is ``mlp_ratio · d_L`` (4, as in DETR's decoder).
    """

    def __init__(
        self,
        support_dim: int,
        prompt_dim: int,
        num_prompts: int = 5,
        num_heads: int = 8,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if support_dim % num_heads != 0:
            raise ValueError(f"support_dim {support_dim} must be divisible by num_heads {num_heads}")
        self.support_dim, self.prompt_dim, self.num_prompts = support_dim, prompt_dim, num_prompts
        self.query = nn.Parameter(torch.randn(num_prompts, support_dim) * 0.02)
        self.norm_query = nn.LayerNorm(support_dim)
        self.norm_support = nn.LayerNorm(support_dim)
        self.attn = nn.MultiheadAttention(support_dim, num_heads, batch_first=True)
        self.norm_out = nn.LayerNorm(support_dim)
        self.ffn = _ffn(support_dim, int(support_dim * mlp_ratio), support_dim)
        self.proj = nn.Identity() if prompt_dim == support_dim else nn.Linear(support_dim, prompt_dim)

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        mask = check_support(support, mask, self.support_dim)
        b, _, n, _ = support.shape
        keys = self.norm_support(support.flatten(1, 2))  # (B, K·N, d_L)
        query = self.query.expand(b, -1, -1)
        attended, _ = self.attn(
            self.norm_query(query), keys, keys,
            key_padding_mask=~token_padding_mask(mask, n), need_weights=False,
        )
        z = self.norm_out(attended + query)
        return self.proj(self.ffn(z) + z)


class MixerPredictor(nn.Module):
    """Paper eq. 5–7: average over time, mix tokens down to ``N_P``, then mix channels to ``d``.

    ``Ē = mean_valid_frames(E_sup)``; ``h = FFN_tok(LN(Ē)ᵀ)`` (N → N_P tokens);
    ``P = FFN_ch(LN(hᵀ))`` (d_L → d). The token FFN needs a fixed token count ``num_tokens``:
    pool support maps to a fixed grid (``STPN(support_grid=...)``). Where the paper is vague we
    chose: the second LayerNorm normalises channels (after transposing back), the token FFN's
    hidden width is ``num_tokens`` and the channel FFN's is ``d`` (≈ 0.09M parameters at
    d_L = 768, d = 96, 7×7 tokens, close to the 0.06M the paper reports).
    """

    def __init__(
        self,
        support_dim: int,
        prompt_dim: int,
        num_prompts: int = 5,
        num_tokens: int = 49,
        token_hidden: Optional[int] = None,
        channel_hidden: Optional[int] = None,
    ) -> None:
        super().__init__()
        self.support_dim, self.prompt_dim, self.num_prompts = support_dim, prompt_dim, num_prompts
        self.num_tokens = num_tokens
        self.norm_tokens = nn.LayerNorm(support_dim)
        self.token_ffn = _ffn(num_tokens, token_hidden or num_tokens, num_prompts)
        self.norm_channels = nn.LayerNorm(support_dim)
        self.channel_ffn = _ffn(support_dim, channel_hidden or prompt_dim, prompt_dim)

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        mask = check_support(support, mask, self.support_dim)
        if support.shape[2] != self.num_tokens:
            raise ValueError(
                f"MixerPredictor was built for {self.num_tokens} tokens per frame, got "
                f"{support.shape[2]}; pool support maps to a fixed grid (STPN(support_grid=...))"
            )
        mean = masked_mean_over_frames(support, mask)  # (B, N, d_L)
        h = self.token_ffn(self.norm_tokens(mean).transpose(1, 2))  # (B, d_L, N_P)
        return self.channel_ffn(self.norm_channels(h.transpose(1, 2)))  # (B, N_P, d)

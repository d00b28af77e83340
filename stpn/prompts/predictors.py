"""The DVP predictors of the paper (§4.2, Fig. 2b/c) and the input handling all predictors share.

Every predictor maps support embeddings ``(B, K, N, d_L)`` (K frames of N tokens each) and an
optional validity mask ``(B, K)`` (True = real frame) to prompts ``(B, N_P, d)``, and exposes
``support_dim`` (d_L), ``prompt_dim`` (d) and ``num_prompts`` (N_P). Padded frames never
influence the result: they are zeroed first (so even NaN padding cannot leak) and then left out of
every attention and average, so a padded clip gives the prompts of the same clip without padding.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from stpn.prompts.support import check_support, masked_mean_over_frames, token_padding_mask


def check_sizes(**sizes: int) -> None:
    """Raise ``ValueError`` naming the first size that is not a positive integer."""
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def valid_support(support: Tensor, mask: Optional[Tensor], support_dim: int) -> tuple[Tensor, Tensor]:
    """Validate ``support (B, K, N, d_L)`` / ``mask (B, K)`` and zero the padded frames.

    Returns ``(support, mask)`` with ``mask`` all True when ``None`` was given. Raises
    ``ValueError`` for a wrong rank, width or mask shape and for a clip without valid frames.
    """
    mask = check_support(support, mask, support_dim)
    return support.masked_fill(~mask[:, :, None, None], 0.0), mask


def feed_forward(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    """``Linear → GELU → Linear`` (the FFN of the paper's eq. 4, 6 and 7)."""
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.GELU(), nn.Linear(hidden, dim_out))


class TransformerPredictor(nn.Module):
    """Paper eq. 2–4: learnable prompt queries read the concatenated support tokens (DETR-like).

    With ``Q`` the ``N_P × d_L`` learnable queries and ``K = Concat(E_sup)`` the ``K·N`` support
    tokens of a clip (padded frames excluded)::

        Q̂ = MHA(LN(Q), LN(K)) + Q                 (B, N_P, d_L)
        P = Linear(FFN(LN(Q̂)) + LN(Q̂))            (B, N_P, d)

    Choices where the paper is vague:

    * eq. 4 gives ``P`` width ``d`` although the residual keeps width ``d_L``; we add a final
      ``Linear(d_L → d)`` to the backbone's prompt width (``nn.Identity`` when ``d == d_L``);
    * queries and keys get separate LayerNorms; the FFN is ``Linear → GELU → Linear`` with hidden
      width ``mlp_ratio · d_L`` (4, as in DETR / ViT); queries start as ``N(0, 0.02²)``;
    * ``num_heads = 8`` by default (d_L must be divisible by it).

    At d_L = 768 this predictor has ≈ 7.2M parameters, far more than the +0.11M the paper reports
    for its detector: that number matches the released :class:`RelationPredictor` instead.
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
        check_sizes(
            support_dim=support_dim, prompt_dim=prompt_dim, num_prompts=num_prompts, num_heads=num_heads
        )
        if support_dim % num_heads != 0:
            raise ValueError(f"support_dim {support_dim} must be divisible by num_heads {num_heads}")
        self.support_dim, self.prompt_dim, self.num_prompts = support_dim, prompt_dim, num_prompts
        self.query = nn.Parameter(torch.randn(num_prompts, support_dim) * 0.02)
        self.norm_query = nn.LayerNorm(support_dim)
        self.norm_support = nn.LayerNorm(support_dim)
        self.attn = nn.MultiheadAttention(support_dim, num_heads, batch_first=True)
        self.norm_out = nn.LayerNorm(support_dim)
        self.ffn = feed_forward(support_dim, round(support_dim * mlp_ratio), support_dim)
        self.proj = nn.Identity() if prompt_dim == support_dim else nn.Linear(support_dim, prompt_dim)

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``(B, K, N, d_L)``, ``(B, K)`` → ``(B, N_P, d)``."""
        support, mask = valid_support(support, mask, self.support_dim)
        b, _, n, _ = support.shape
        keys = self.norm_support(support.flatten(1, 2))  # (B, K·N, d_L)
        query = self.query.expand(b, -1, -1)  # (B, N_P, d_L)
        attended, _ = self.attn(
            self.norm_query(query), keys, keys,
            key_padding_mask=~token_padding_mask(mask, n), need_weights=False,
        )
        z = self.norm_out(attended + query)  # LN(Q̂)
        return self.proj(self.ffn(z) + z)


class MixerPredictor(nn.Module):
    """Paper eq. 5–7: average over time, mix tokens down to ``N_P``, then mix channels to ``d``::

        Ē = mean over valid frames of E_sup        (B, N, d_L)
        h = FFN_tok(LN(Ē)ᵀ)                        (B, d_L, N_P)   tokens N → N_P
        P = FFN_ch(LN(hᵀ))                         (B, N_P, d)     channels d_L → d

    The token FFN has a fixed input size, so the predictor is built for ``num_tokens`` = N tokens
    per frame; pool support maps to a fixed grid (``STPN(support_grid=(h, w))``) to use it with
    any input size.

    Choices where the paper is vague:

    * eq. 7 writes ``LN(h)ᵀ``; we normalise over channels (transpose, then LN over ``d_L``), as
      every LayerNorm in MLP-Mixer does. Normalising ``h`` over its ``N_P`` entries would make the
      prompts zero-mean across prompts and collapse them to a constant when ``N_P = 1``;
    * hidden widths: ``num_tokens`` for the token FFN and ``d`` for the channel FFN (override with
      ``token_hidden`` / ``channel_hidden``). At d_L = 768, d = 96, 7×7 tokens, N_P = 5 this gives
      88,908 parameters (the paper reports ≈ 0.06M).
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
        token_hidden = num_tokens if token_hidden is None else token_hidden
        channel_hidden = prompt_dim if channel_hidden is None else channel_hidden
        check_sizes(
            support_dim=support_dim, prompt_dim=prompt_dim, num_prompts=num_prompts,
            num_tokens=num_tokens, token_hidden=token_hidden, channel_hidden=channel_hidden,
        )
        self.support_dim, self.prompt_dim, self.num_prompts = support_dim, prompt_dim, num_prompts
        self.num_tokens = num_tokens
        self.norm_tokens = nn.LayerNorm(support_dim)
        self.token_ffn = feed_forward(num_tokens, token_hidden, num_prompts)
        self.norm_channels = nn.LayerNorm(support_dim)
        self.channel_ffn = feed_forward(support_dim, channel_hidden, prompt_dim)

    def forward(self, support: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``(B, K, N, d_L)``, ``(B, K)`` → ``(B, N_P, d)``; N must equal ``num_tokens``."""
        support, mask = valid_support(support, mask, self.support_dim)
        if support.shape[2] != self.num_tokens:
            raise ValueError(
                f"MixerPredictor was built for num_tokens={self.num_tokens} tokens per frame, got "
                f"{support.shape[2]}; pool support maps to a fixed grid (STPN(support_grid=...))"
            )
        mean = masked_mean_over_frames(support, mask)  # (B, N, d_L)
        h = self.token_ffn(self.norm_tokens(mean).transpose(1, 2))  # (B, d_L, N_P)
        return self.channel_ffn(self.norm_channels(h.transpose(1, 2)))  # (B, N_P, d)

"""CvT's transformer block: attention with convolutional projections (Wu et al., ICCV 2021, §3.2).

Sub-module attribute names mirror transformers' ``CvtLayer`` (``attention.attention.
convolution_projection_query.convolution_projection.convolution`` …) so that state dicts match
key for key; the classes themselves are written here.

Tokens that are not on the spatial grid ("extra" tokens: CvT's class token and STPN's prompts)
skip the depthwise conv projection, exactly as CvT treats its class token: the sequence
``[extra (E tokens), patches (H·W tokens)]`` is split, only the patch map goes through the
depthwise conv + BatchNorm of q, k and v, and the extra tokens are concatenated back in front
before the linear q/k/v projections, which all tokens share.

The attention itself is split into steps a caller can recombine: :meth:`ConvSelfAttention.
project` gives ``q, k, v`` for one spatial map plus its extra tokens, :meth:`ConvSelfAttention.
attend` runs multi-head attention of any query set over any key/value set. A MixFormer-style
caller can project the template and search maps separately, concatenate, and attend template
queries to template keys only and search queries to all keys; this module does not do that.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from timm.layers import DropPath, QuickGELU

ACTIVATIONS = {"gelu": nn.GELU, "quick_gelu": QuickGELU}


class DepthwiseConvBN(nn.Module):
    """Depthwise ``k×k`` conv (no bias) + BatchNorm: ``(B, C, H, W)`` → ``(B, C, H/s, W/s)``."""

    def __init__(self, dim: int, kernel_size: int, padding: int, stride: int) -> None:
        super().__init__()
        self.convolution = nn.Conv2d(
            dim, dim, kernel_size, stride=stride, padding=padding, bias=False, groups=dim
        )
        self.normalization = nn.BatchNorm2d(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.normalization(self.convolution(x))


class ConvProjection(nn.Module):
    """A patch map through :class:`DepthwiseConvBN`, returned as tokens ``(B, h·w, C)``."""

    def __init__(self, dim: int, kernel_size: int, padding: int, stride: int) -> None:
        super().__init__()
        self.convolution_projection = DepthwiseConvBN(dim, kernel_size, padding, stride)

    def forward(self, patch_map: Tensor) -> Tensor:
        return self.convolution_projection(patch_map).flatten(2).transpose(1, 2)


def multi_head_attention(
    q: Tensor, k: Tensor, v: Tensor, num_heads: int, scale: float, dropout_p: float = 0.0
) -> Tensor:
    """Scaled dot-product attention: q ``(B, Nq, C)``, k/v ``(B, Nk, C)`` → ``(B, Nq, C)``."""
    def heads(t: Tensor) -> Tensor:  # (B, N, C) -> (B, heads, N, C / heads)
        return t.unflatten(-1, (num_heads, t.shape[-1] // num_heads)).transpose(1, 2)

    out = F.scaled_dot_product_attention(heads(q), heads(k), heads(v), dropout_p=dropout_p, scale=scale)
    return out.transpose(1, 2).flatten(2)


class ConvSelfAttention(nn.Module):
    """q/k/v by depthwise conv (stride ``stride_q`` / ``stride_kv``) then linear; attention.

    The logits are scaled by ``dim ** -0.5`` (the full width, not the head width), as in the
    official CvT code and transformers; pretrained weights expect it.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        kernel_size: int = 3,
        padding_q: int = 1,
        padding_kv: int = 1,
        stride_q: int = 1,
        stride_kv: int = 2,
        qkv_bias: bool = True,
        attention_drop_rate: float = 0.0,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = dim**-0.5
        self.convolution_projection_query = ConvProjection(dim, kernel_size, padding_q, stride_q)
        self.convolution_projection_key = ConvProjection(dim, kernel_size, padding_kv, stride_kv)
        self.convolution_projection_value = ConvProjection(dim, kernel_size, padding_kv, stride_kv)
        self.projection_query = nn.Linear(dim, dim, bias=qkv_bias)
        self.projection_key = nn.Linear(dim, dim, bias=qkv_bias)
        self.projection_value = nn.Linear(dim, dim, bias=qkv_bias)
        self.dropout = nn.Dropout(attention_drop_rate)

    def project(self, extra: Optional[Tensor], patch_map: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Extra tokens ``(B, E, C)`` (or None) and a patch map ``(B, C, H, W)`` → q, k, v.

        q is ``(B, E + Hq·Wq, C)``, k and v ``(B, E + Hkv·Wkv, C)``, extra tokens first (they
        skip the conv projection and only get the linear one).
        """
        projected = []
        for conv, linear in (
            (self.convolution_projection_query, self.projection_query),
            (self.convolution_projection_key, self.projection_key),
            (self.convolution_projection_value, self.projection_value),
        ):
            tokens = conv(patch_map)
            if extra is not None:
                tokens = torch.cat([extra, tokens], 1)
            projected.append(linear(tokens))
        return projected[0], projected[1], projected[2]

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Multi-head attention of queries ``(B, Nq, C)`` over keys/values ``(B, Nk, C)``."""
        p = self.dropout.p if self.training else 0.0
        return multi_head_attention(q, k, v, self.num_heads, self.scale, p)

    def forward(self, tokens: Tensor, height: int, width: int, num_extra: int) -> Tensor:
        """``(B, E + H·W, C)`` sequence ``[extra, patches]`` → ``(B, E + H·W, C)``."""
        b, n, c = tokens.shape
        if n != num_extra + height * width:
            raise ValueError(f"{n} tokens != {num_extra} extra + {height}x{width} patches")
        extra = tokens[:, :num_extra] if num_extra else None
        patch_map = tokens[:, num_extra:].transpose(1, 2).reshape(b, c, height, width)
        return self.attend(*self.project(extra, patch_map))


class Dense(nn.Module):
    """``Linear`` (attribute ``dense``, as transformers names it) + optional activation / dropout."""

    def __init__(self, dim_in: int, dim_out: int, activation: Optional[str] = None, drop_rate: float = 0.0) -> None:
        super().__init__()
        self.dense = nn.Linear(dim_in, dim_out)
        self.activation = ACTIVATIONS[activation]() if activation else nn.Identity()
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.activation(self.dense(x)))


class ConvAttention(nn.Module):
    """:class:`ConvSelfAttention` + output projection (``attention.output.dense``)."""

    def __init__(self, dim: int, drop_rate: float = 0.0, **attention_kwargs) -> None:
        super().__init__()
        self.attention = ConvSelfAttention(dim, **attention_kwargs)
        self.output = Dense(dim, dim, drop_rate=drop_rate)

    def forward(self, tokens: Tensor, height: int, width: int, num_extra: int) -> Tensor:
        return self.output(self.attention(tokens, height, width, num_extra))


class CvtBlock(nn.Module):
    """Pre-norm block: ``x + DropPath(attn(LN(x)))`` then ``x + DropPath(MLP(LN(x)))``.

    ``forward(tokens (B, E + H·W, C), height, width, num_extra) → (B, E + H·W, C)``; the first
    ``num_extra`` tokens (class token, prompts) go through LayerNorm, linear projections and MLP
    like patch tokens, but not through the conv projections.

    DropPath is on the two residual branches with the official CvT per-stage rates (transformers
    applies its rate to the whole block output instead; identical in eval mode, where the
    equality with transformers is tested); MLP dropout follows the official code too (after the
    activation and after the second linear; transformers omits the first).

    ``activation``: ``"gelu"`` (transformers) or ``"quick_gelu"`` (``x·σ(1.702x)``, the official
    CvT and MixFormer code).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        activation: str = "gelu",
        **attention_kwargs,
    ) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.attention = ConvAttention(dim, drop_rate=drop_rate, num_heads=num_heads, **attention_kwargs)
        self.intermediate = Dense(dim, hidden, activation=activation, drop_rate=drop_rate)
        self.output = Dense(hidden, dim, drop_rate=drop_rate)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        self.layernorm_before = nn.LayerNorm(dim)
        self.layernorm_after = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, height: int, width: int, num_extra: int) -> Tensor:
        return self.run(tokens, lambda normed: self.attention.attention(normed, height, width, num_extra))

    def run(self, tokens: Tensor, attention: Callable[[Tensor], Tensor]) -> Tensor:
        """The block with ``attention`` (LayerNorm-ed tokens ``(B, N, C)`` → ``(B, N, C)``, before
        the output projection) in place of :class:`ConvSelfAttention`; output projection,
        residuals, DropPath and MLP as in :meth:`forward`. MixFormer's mixed attention plugs in
        here (:mod:`stpn.tracking.mixed_attention`)."""
        tokens = tokens + self.drop_path(self.attention.output(attention(self.layernorm_before(tokens))))
        return tokens + self.drop_path(self.output(self.intermediate(self.layernorm_after(tokens))))

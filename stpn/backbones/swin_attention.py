"""Shifted-window attention with prompts, the released STPN semantics (DESIGN.md §3).

The same ``P`` prompts are prepended to every window of their image. Relative-position bias and
the shifted-window mask are zero for prompt rows and columns. After attention each window has
produced its own prompt outputs; they are averaged over the windows of the image.

Cost: the prompts go through the q/k/v and output projections once per image, not once per
window (the released code concatenates them to every window first, which makes every
projection, norm and MLP ``(P + M) / M`` times as expensive). Window-token queries then run in
one fused ``scaled_dot_product_attention`` over ``[prompt keys, window keys]``; for that the
small ``(P, head_dim)`` prompt keys/values are broadcast into each window (a copy of
``P / M ≈ 10 %`` of the keys, cheaper than a second, unfused softmax), and the key count is
padded to a multiple of 32 with masked keys, where the fused CPU kernel is fastest. Prompt queries meet all
window keys in one ``(B, h, nW, P, hd) @ (B, h, nW, hd, M)`` product with a softmax per window.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from timm.models.swin_transformer import WindowAttention


def _heads(t: Tensor, num_heads: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(..., N, 3·C)`` qkv → three ``(..., heads, N, hd)`` tensors."""
    *lead, n, c3 = t.shape
    q, k, v = t.reshape(*lead, n, 3, num_heads, c3 // (3 * num_heads)).unbind(-3)
    return q.transpose(-3, -2), k.transpose(-3, -2), v.transpose(-3, -2)


def prompted_window_attention(
    attn: WindowAttention, windows: Tensor, prompts: Tensor, mask: Optional[Tensor]
) -> tuple[Tensor, Tensor]:
    """One window-attention layer on window tokens plus shared prompts.

    Args:
        attn: timm's ``WindowAttention`` (its weights are used unchanged).
        windows: ``(B·nW, M, C)`` window tokens, image-major (as timm's ``window_partition``).
        prompts: ``(B, P, C)``, shared by all windows of an image.
        mask: ``(nW, M, M)`` shifted-window mask (0 / -100) or None.

    Returns:
        ``(B·nW, M, C)`` window outputs and ``(B, P, C)`` window-averaged prompt outputs.
    """
    b, p, _ = prompts.shape
    nw, m = windows.shape[0] // b, windows.shape[1]
    h = attn.num_heads
    qx, kx, vx = _heads(attn.qkv(windows).view(b, nw, m, -1), h)  # (B, nW, h, M, hd)
    qp, kp, vp = _heads(attn.qkv(prompts), h)  # (B, h, P, hd)
    hd = qx.shape[-1]

    # window-token queries: keys = [prompts (shared), padding, own window]; zero bias/mask on
    # prompts. Batch dims (B, nW·h) keep the inputs 4-D (the fused CPU kernel) and let the
    # per-window bias broadcast over the batch. The key count is padded to a multiple of 32 with
    # masked-out keys: the fused kernel runs about twice as fast on 64 keys as on 54.
    pad = -(p + m) % 32
    bias = attn._get_rel_pos_bias()[:, None]  # (1, 1, h, M, M)
    if mask is not None:
        bias = bias + mask[None, :, None]  # (1, nW, h, M, M)
    bias = F.pad(bias.expand(1, nw, h, m, m).reshape(1, nw * h, m, m), (p + pad, 0))
    bias[..., p : p + pad] = float("-inf")
    filler = kx.new_zeros(b, nw, h, pad, hd)
    keys = torch.cat([kp[:, None].expand(b, nw, h, p, hd), filler, kx], 3).view(b, nw * h, p + pad + m, hd)
    values = torch.cat([vp[:, None].expand(b, nw, h, p, hd), filler, vx], 3).view(b, nw * h, p + pad + m, hd)
    dropout = attn.attn_drop.p if attn.training else 0.0
    out_x = F.scaled_dot_product_attention(qx.reshape(b, nw * h, m, hd), keys, values, attn_mask=bias, dropout_p=dropout)
    out_x = out_x.view(b, nw, h, m, hd).transpose(2, 3).reshape(b * nw, m, h * hd)

    # prompt queries: keys = [prompts, window w], one softmax per window, then the window mean
    qp = qp * attn.scale
    kx_w, vx_w = kx.transpose(1, 2), vx.transpose(1, 2)  # (B, h, nW, M, hd)
    to_prompts = (qp @ kp.transpose(-2, -1))[:, :, None].expand(b, h, nw, p, p)
    to_window = qp[:, :, None] @ kx_w.transpose(-2, -1)  # (B, h, nW, P, M)
    weights = attn.attn_drop(torch.cat([to_prompts, to_window], -1).softmax(-1))
    out_p = weights[..., :p].mean(2) @ vp + (weights[..., p:] @ vx_w).mean(2)  # (B, h, P, hd)
    out_p = out_p.transpose(1, 2).reshape(b, p, h * hd)
    return attn.proj_drop(attn.proj(out_x)), attn.proj_drop(attn.proj(out_p))

"""Shifted-window attention with prompts, the released STPN semantics (DESIGN.md §3).

The same ``P`` prompts are prepended to every window of their image. Relative-position bias and
the shifted-window mask are zero for prompt rows and columns. After attention each window has
produced its own prompt outputs; they are averaged over the windows of the image.

Computed without materialising one copy of the prompt keys/values per window: window-token
queries meet the shared prompt keys in one ``(B, heads, nW·M, hd) @ (B, heads, hd, P)`` product,
prompt queries meet all window keys in one ``(B, heads, P, hd) @ (B, heads, hd, nW·M)`` product,
and the softmax runs jointly over ``[prompt keys, window keys]`` per query. Only logits are
concatenated (``P + M`` columns, the same count as a materialised window would have).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from timm.models.swin_transformer import WindowAttention


def _heads(t: Tensor, num_heads: int) -> Tensor:
    """``(..., N, 3·C)`` qkv → three ``(..., heads, N, hd)`` tensors."""
    *lead, n, c3 = t.shape
    t = t.reshape(*lead, n, 3, num_heads, c3 // (3 * num_heads))
    q, k, v = t.unbind(-3)
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
    b, p, c = prompts.shape
    nw, m = windows.shape[0] // b, windows.shape[1]
    h = attn.num_heads
    qx, kx, vx = _heads(attn.qkv(windows).view(b, nw * m, -1), h)  # (B, h, nW·M, hd)
    qp, kp, vp = _heads(attn.qkv(prompts), h)  # (B, h, P, hd)
    qx, qp = qx * attn.scale, qp * attn.scale
    hd = qx.shape[-1]

    # window-token queries: keys = [prompts (shared), own window]
    to_prompts = qx @ kp.transpose(-2, -1)  # (B, h, nW·M, P)
    qx_w = qx.view(b, h, nw, m, hd)
    kx_w, vx_w = kx.view(b, h, nw, m, hd), vx.view(b, h, nw, m, hd)
    to_window = qx_w @ kx_w.transpose(-2, -1) + attn._get_rel_pos_bias()[:, :, None]  # (B, h, nW, M, M)
    if mask is not None:
        to_window = to_window + mask[None, None]
    weights = torch.cat([to_prompts.view(b, h, nw, m, p), to_window], -1).softmax(-1)
    weights = attn.attn_drop(weights)
    out_x = weights[..., :p].reshape(b, h, nw * m, p) @ vp + (weights[..., p:] @ vx_w).reshape(b, h, nw * m, hd)
    out_x = out_x.view(b, h, nw, m, hd).permute(0, 2, 3, 1, 4).reshape(b * nw, m, h * hd)

    # prompt queries: keys = [prompts, window w], one softmax per window, then the window mean
    pp = (qp @ kp.transpose(-2, -1))[:, :, None].expand(b, h, nw, p, p)  # (B, h, nW, P, P)
    px = (qp @ kx.transpose(-2, -1)).view(b, h, p, nw, m).transpose(2, 3)  # (B, h, nW, P, M)
    weights = attn.attn_drop(torch.cat([pp, px], -1).softmax(-1))
    out_p = weights[..., :p].mean(2) @ vp + (weights[..., p:] @ vx_w).mean(2)  # (B, h, P, hd)
    out_p = out_p.transpose(1, 2).reshape(b, p, h * hd)
    return attn.proj_drop(attn.proj(out_x)), attn.proj_drop(attn.proj(out_p))

"""Shifted-window attention with prompts, the released STPN semantics (docs/design.md §3.3).

The same ``P`` prompts are prepended to every window of their image; relative-position bias and
shifted-window mask are zero for prompt rows and columns; each window produces its own prompt
outputs, which are averaged over the windows of that image (and only that image).

How it is computed: the prompts are written into each window by the same copy that partitions
the map into windows, so one q/k/v linear call and one fused ``scaled_dot_product_attention``
per layer serve window and prompt queries, with no copy of keys or values afterwards. The price
is the q/k/v projection of ``P`` rows per window (``P / M ≈ 10 %`` of one of the block's four
linears). The output projection runs once per image on the window-averaged prompt outputs (it is
linear, so this equals averaging projected outputs). Alternatives measured on Swin-T at 224
(one CPU thread, against +13-16 % per forward for this) were slower: splitting the logits into
window keys and broadcast prompt keys, so that no window holds a prompt copy, loses the fused
kernel (+45 %); concatenating the image's prompt keys/values to every window's keys copies all
keys and values (+20-25 %); padding Swin-T's 54 keys to 64 with masked filler rows (the fused
CPU kernel prefers 64) gained nothing, as the filler rows need q/k/v too.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from timm.models.swin_transformer import SwinTransformerBlock


def prompted_window_attention(block: SwinTransformerBlock, seq: Tensor, height: int, width: int) -> Tensor:
    """timm's ``SwinTransformerBlock._attn`` on ``[prompts; tokens]`` with prompts in every window.

    Args:
        block: a timm Swin block; its window/shift sizes, mask and attention weights are used.
        seq: ``(B, P + H·W, C)`` normalised prompts followed by the row-major ``H × W`` tokens.

    Returns:
        ``(B, P + H·W, C)``: window-averaged prompt outputs, then the token outputs.
    """
    b, n, c = seq.shape
    p = n - height * width
    if p < 0:
        raise ValueError(f"sequence of {n} tokens is shorter than the {height}x{width} map")
    (wh, ww), shift = block.window_size, block.shift_size
    tokens = seq[:, p:].view(b, height, width, c)
    if any(shift):
        tokens = torch.roll(tokens, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    tokens = F.pad(tokens, (0, 0, 0, -width % ww, 0, -height % wh))  # bottom/right, as timm
    rows, cols = tokens.shape[1] // wh, tokens.shape[2] // ww
    m = wh * ww
    length = p + m

    # windows (B·nW, P + M, C) = [prompts, window tokens], written in one copy
    windows = seq.new_empty(b, rows, cols, length, c)
    windows[:, :, :, :p] = seq[:, None, None, :p]
    windows[:, :, :, p:].view(b, rows, cols, wh, ww, c).copy_(
        tokens.view(b, rows, wh, cols, ww, c).permute(0, 1, 3, 2, 4, 5)
    )
    attn = block.attn
    heads = attn.num_heads
    hd = c // heads
    qkv = attn.qkv(windows.view(-1, length, c)).view(-1, length, 3, heads, hd)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B·nW, heads, P + M, hd) each
    bias = _attention_bias(block, tokens, b, p)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=attn.attn_drop.p if attn.training else 0.0)

    # back to (B, P + nW·M, C): window-mean of the prompt rows, window tokens in window order
    out = out.view(b, rows * cols, heads, length, hd)
    merged = seq.new_empty(b, p + rows * cols * m, c)
    merged[:, :p].view(b, p, heads, hd).copy_(out[:, :, :, :p].mean(1).transpose(1, 2))
    merged[:, p:].view(b, rows * cols, m, heads, hd).copy_(out[:, :, :, p:].transpose(2, 3))
    merged = attn.proj_drop(attn.proj(merged))
    tokens = merged[:, p:].view(b, rows, cols, wh, ww, c).permute(0, 1, 3, 2, 4, 5)
    tokens = tokens.reshape(b, rows * wh, cols * ww, c)[:, :height, :width]
    if any(shift):
        tokens = torch.roll(tokens, shifts=shift, dims=(1, 2))
    return torch.cat([merged[:, :p], tokens.reshape(b, height * width, c)], 1)


def _attention_bias(block: SwinTransformerBlock, padded: Tensor, batch: int, p: int) -> Tensor:
    """Additive attention bias ``(1 or B·nW, heads, P + M, P + M)`` for ``[P prompts, M tokens]``:
    relative-position bias (and, in shifted blocks, timm's 0 / -100 window mask) on the token
    block, zero on prompt rows and columns. ``padded``: the shifted, padded ``(B, H', W', C)`` map.
    """
    attn = block.attn
    mask = None
    if any(block.shift_size):
        mask = block.get_attn_mask(padded) if getattr(block, "dynamic_mask", False) else block.attn_mask
    windows = 1 if mask is None else mask.shape[0]
    bias = padded.new_zeros(windows, attn.num_heads, p + block.window_area, p + block.window_area)
    bias[:, :, p:, p:] = attn._get_rel_pos_bias()
    if mask is None:
        return bias
    bias[:, :, p:, p:] += mask[:, None]
    return bias if batch == 1 else bias.expand(batch, *bias.shape).flatten(0, 1)

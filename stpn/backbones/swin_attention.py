"""Shifted-window attention with prompts, the released STPN semantics (docs/design.md §3.3).

The same ``P`` prompts are prepended to every window of their image; relative-position bias and
shifted-window mask are zero for prompt rows and columns; each window produces its own prompt
outputs, which are averaged over the windows of that image (and only that image).

How it is computed: one row gather (``index_select`` with a cached index, :mod:`stpn.backbones.window_index`)
turns ``[prompts; tokens]`` into the windows ``[prompts, window tokens]``, doing timm's cyclic
shift, bottom/right padding, window partition and the prompt copy per window at once, so one
q/k/v linear call and one fused ``scaled_dot_product_attention`` per layer serve window and
prompt queries. A second gather takes the attention output back to sequence order (reverse
partition, crop and reverse shift at once), the window-mean of the prompt outputs in front; the
output projection then runs once on that sequence (it is linear, so projecting the mean equals
averaging projected outputs). The price over timm's plain block is the q/k/v projection of ``P``
rows per window (``P / M ≈ 10 %`` of one of the block's four linears) and ``P`` more keys per
window. Alternatives measured on Swin-T at 224 (one CPU thread) were slower: splitting the logits
into window keys and broadcast prompt keys, so that no window holds a prompt copy, loses the
fused kernel (+45 % per forward); concatenating the image's prompt keys/values to every window's
keys copies all keys and values (+20-25 %); padding Swin-T's 54 keys to 64 with masked filler
rows (the fused CPU kernel prefers 64) gained nothing, as the filler rows need q/k/v too; the
earlier version of this module (rolls, pad and a strided window copy in, then a merge buffer,
reverse permute, roll and concatenation out) cost 1.09x plain against about 1.05x for the gathers.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from timm.models.swin_transformer import SwinTransformerBlock

from stpn.backbones.window_index import window_indices


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
    index = window_indices(height, width, tuple(block.window_size), tuple(block.shift_size), p, seq.device)
    rows, cols = index.grid
    length = p + block.window_area
    if index.padded:
        seq = F.pad(seq, (0, 0, 0, 1))  # the zero row that padding positions read
    # windows (B·nW, P + M, C) = [prompts, window tokens]
    windows = seq.index_select(1, index.gather).view(-1, length, c)
    attn = block.attn
    heads = attn.num_heads
    hd = c // heads
    qkv = attn.qkv(windows).view(-1, length, 3, heads, hd)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B·nW, heads, P + M, hd) each
    bias = _attention_bias(block, seq, p, rows * block.window_size[0], cols * block.window_size[1])
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=attn.attn_drop.p if attn.training else 0.0)

    # (B, nW·(P + M), C) in window order; window 0's prompt rows take the window-mean
    windowed = out.transpose(1, 2).reshape(b, rows * cols, length, c)
    if windowed.data_ptr() == out.data_ptr() and torch.is_grad_enabled():
        windowed = windowed.clone()  # a view (CUDA's kernels lay heads inside): backward keeps out
    windowed[:, 0, :p] = windowed[:, :, :p].mean(1)
    merged = windowed.view(b, rows * cols * length, c).index_select(1, index.scatter)  # (B, P + H·W, C)
    return attn.proj_drop(attn.proj(merged))


def _attention_bias(block: SwinTransformerBlock, ref: Tensor, p: int, padded_h: int, padded_w: int) -> Tensor:
    """Additive attention bias ``(1 or B·nW, heads, P + M, P + M)`` for ``[P prompts, M tokens]``:
    relative-position bias (and, in shifted blocks, timm's 0 / -100 window mask) on the token
    block, zero on prompt rows and columns. ``ref``: the ``(B, ·, C)`` input (batch, dtype,
    device); ``padded_h × padded_w``: the padded map's size.

    Without autograd (inference) the bias is kept on the block and reused while the
    relative-position table and the mask are the same tensors, unchanged (``_version`` counts
    in-place writes such as optimiser steps and ``load_state_dict``); with autograd it is built
    per call so that gradients reach the table.
    """
    if torch.is_grad_enabled():
        return _build_bias(block, ref, p, padded_h, padded_w)
    table = block.attn.relative_position_bias_table
    mask = getattr(block, "attn_mask", None)
    index = block.attn.relative_position_index
    key = (table.data_ptr(), table._version, index.data_ptr(), index._version,
           None if mask is None else (mask.data_ptr(), mask._version), tuple(block.window_size),
           tuple(block.shift_size), ref.shape[0], ref.dtype, ref.device, p, padded_h, padded_w)
    cached = getattr(block, "_stpn_prompt_bias", None)
    if cached is None or cached[0] != key:
        cached = (key, _build_bias(block, ref, p, padded_h, padded_w))
        block._stpn_prompt_bias = cached
    return cached[1]


def _build_bias(block: SwinTransformerBlock, ref: Tensor, p: int, padded_h: int, padded_w: int) -> Tensor:
    attn = block.attn
    mask = None
    if any(block.shift_size):
        if getattr(block, "dynamic_mask", False):
            mask = block.get_attn_mask(ref.new_empty(1, padded_h, padded_w, 1))
        else:
            mask = block.attn_mask
    windows = 1 if mask is None else mask.shape[0]
    bias = ref.new_zeros(windows, attn.num_heads, p + block.window_area, p + block.window_area)
    bias[:, :, p:, p:] = attn._get_rel_pos_bias()
    if mask is None:
        return bias
    bias[:, :, p:, p:] += mask[:, None]
    batch = ref.shape[0]
    return bias if batch == 1 else bias.expand(batch, *bias.shape).flatten(0, 1)

"""The optimised prompted paths give what the previous (slower) ones gave, to 1e-5.

``previous_prompted_window_attention`` is the prompted window attention as it was before the
row-gather version (rolls, pad, strided window copy, merge buffer, reverse permute, roll and
concatenation), kept here as the reference.
"""
import pytest
import torch
import torch.nn.functional as F

import stpn.backbones.swin as swin_module
from stpn.backbones.swin import build_swin
from stpn.backbones.window_index import window_indices
from tests.test_backbone_swin import ALWAYS, OTHER, SMALL


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def previous_prompted_window_attention(block, seq, height, width):
    b, n, c = seq.shape
    p = n - height * width
    (wh, ww), shift = block.window_size, block.shift_size
    tokens = seq[:, p:].view(b, height, width, c)
    if any(shift):
        tokens = torch.roll(tokens, shifts=(-shift[0], -shift[1]), dims=(1, 2))
    tokens = F.pad(tokens, (0, 0, 0, -width % ww, 0, -height % wh))
    rows, cols = tokens.shape[1] // wh, tokens.shape[2] // ww
    m = wh * ww
    length = p + m
    windows = seq.new_empty(b, rows, cols, length, c)
    windows[:, :, :, :p] = seq[:, None, None, :p]
    windows[:, :, :, p:].view(b, rows, cols, wh, ww, c).copy_(
        tokens.view(b, rows, wh, cols, ww, c).permute(0, 1, 3, 2, 4, 5))
    attn = block.attn
    heads = attn.num_heads
    hd = c // heads
    qkv = attn.qkv(windows.view(-1, length, c)).view(-1, length, 3, heads, hd)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    mask = None
    if any(block.shift_size):
        mask = block.get_attn_mask(tokens) if getattr(block, "dynamic_mask", False) else block.attn_mask
    bias = tokens.new_zeros(1 if mask is None else mask.shape[0], heads, length, length)
    bias[:, :, p:, p:] = attn._get_rel_pos_bias()
    if mask is not None:
        bias[:, :, p:, p:] += mask[:, None]
        if b > 1:
            bias = bias.expand(b, *bias.shape).flatten(0, 1)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=attn.attn_drop.p if attn.training else 0.0)
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


def run_both(model, images, prompts, monkeypatch):
    """``(optimised, previous)`` outputs of ``forward_features`` (lists of stage maps)."""
    new = model.forward_features(images, prompts)
    with monkeypatch.context() as patch:
        patch.setattr(swin_module, "prompted_window_attention", previous_prompted_window_attention)
        old = model.forward_features(images, prompts)
    return new, old


def max_diff(xs, ys):
    assert [x.shape for x in xs] == [y.shape for y in ys]
    return max((x - y).abs().max().item() for x, y in zip(xs, ys))


@pytest.mark.parametrize("cfg", [SMALL, OTHER, ALWAYS], ids=["small", "other", "always-partition"])
@pytest.mark.parametrize("size", [(64, 64), (52, 76)], ids=["whole-windows", "padded"])
@pytest.mark.parametrize("batch", [1, 2])
def test_forward_equals_previous(cfg, size, batch, monkeypatch):
    torch.manual_seed(0)
    model = build_swin(**cfg).eval()
    images = torch.randn(batch, 3, *size)
    shallow = torch.randn(batch, 3, model.prompt_dims[0])
    deep = [torch.randn(batch, 3, d) for d in model.prompt_dims]
    with torch.no_grad():
        for prompts in (shallow, deep):
            new, old = run_both(model, images, prompts, monkeypatch)
            assert max_diff(new, old) <= 1e-5


def test_gradients_equal_previous(monkeypatch):
    torch.manual_seed(0)
    model = build_swin(**SMALL, drop_path_rate=0.0).train()
    images = torch.randn(2, 3, 52, 76)
    prompts = torch.randn(2, 3, model.prompt_dims[0], requires_grad=True)
    grads = []
    for patched in (False, True):
        model.zero_grad()
        prompts.grad = None
        with monkeypatch.context() as patch:
            if patched:
                patch.setattr(swin_module, "prompted_window_attention", previous_prompted_window_attention)
            maps = model.forward_features(images, prompts)
        sum((m * torch.linspace(-1, 1, m.numel()).view_as(m)).sum() for m in maps).backward()
        grads.append([prompts.grad.clone()] + [q.grad.clone() for q in model.parameters() if q.grad is not None])
    assert len(grads[0]) == len(grads[1]) > 10
    for new, old in zip(*grads):  # gradients summed over many rows: relative to their size
        assert (new - old).abs().max() <= 1e-5 * max(old.abs().max().item(), 1.0)


@pytest.mark.parametrize("shift", [(0, 0), (2, 1)])
def test_window_indices_match_roll_pad_partition(shift):
    """The gather index equals timm's steps on a map of token numbers; the scatter inverts it."""
    h, w, window, p = 5, 7, (3, 4), 2
    index = window_indices(h, w, window, shift, p, torch.device("cpu"))
    seq = torch.arange(p + h * w, dtype=torch.float32) + 1  # 0 is the padding value
    grid = torch.roll(seq[p:].view(h, w), shifts=(-shift[0], -shift[1]), dims=(0, 1))
    grid = F.pad(grid, (0, -w % window[1], 0, -h % window[0]))
    rows, cols = grid.shape[0] // window[0], grid.shape[1] // window[1]
    parts = grid.view(rows, window[0], cols, window[1]).permute(0, 2, 1, 3).reshape(rows * cols, -1)
    expected = torch.cat([seq[:p].expand(rows * cols, p), parts], 1).flatten()
    assert index.grid == (rows, cols) and index.padded
    assert torch.equal(F.pad(seq, (0, 1))[index.gather], expected)
    assert torch.equal(expected[index.scatter], seq)  # prompts from window 0, tokens back in place


def test_cached_bias_follows_weight_changes():
    """Inference reuses each block's attention bias; a changed relative-position table or a new
    batch size must not reuse a stale one."""
    torch.manual_seed(0)
    model = build_swin(**SMALL).eval()
    images, prompts = torch.randn(2, 3, 64, 64), torch.randn(2, 3, model.prompt_dims[0])
    with torch.no_grad():
        model.forward_features(images[:1], prompts[:1])  # fills the caches for batch 1
        first = model.forward_features(images, prompts)
        with torch.enable_grad():
            fresh = model.forward_features(images, prompts)  # autograd: bias built per call
        assert max_diff(first, fresh) <= 1e-6
        for stage in model.layers:
            for blk in stage.blocks:
                blk.attn.relative_position_bias_table.add_(0.5)
        changed = model.forward_features(images, prompts)
        with torch.enable_grad():
            changed_fresh = model.forward_features(images, prompts)
    assert max_diff(first, changed) > 1e-3
    assert max_diff(changed, changed_fresh) <= 1e-6

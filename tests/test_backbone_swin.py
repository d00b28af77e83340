"""Prompt-aware Swin: equals timm without prompts, released prompt semantics, batch safety."""
import pytest
import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformer

from stpn.backbones.swin import PromptSwin, _merge_prompts, build_swin
from stpn.backbones.swin_attention import prompted_window_attention

SMALL = dict(embed_dim=16, depths=(1, 2, 2, 1), num_heads=(1, 2, 2, 4), window_size=4, img_size=64)
OTHER = dict(embed_dim=24, depths=(2, 2, 1, 1), num_heads=(2, 2, 4, 4), window_size=2, img_size=32)


def pair(cfg, seed=0):
    torch.manual_seed(seed)
    model = build_swin(**cfg).eval()
    ref = SwinTransformer(**cfg, num_classes=0, strict_img_size=False).eval()
    ref.load_state_dict(model.state_dict(), strict=True)  # same keys, unchanged
    return model, ref


@pytest.mark.parametrize("cfg", [SMALL, OTHER])
@pytest.mark.parametrize("size", [(64, 64), (96, 64), (32, 160)])
def test_no_prompts_equals_timm(cfg, size):
    model, ref = pair(cfg)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ours = model.forward_features(x)
        theirs = ref.forward_intermediates(x, intermediates_only=True)
        assert len(ours) == 4
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
            assert (a - b).abs().max() <= 1e-5
        torch.testing.assert_close(model.embed(x), ref.forward_features(x).permute(0, 3, 1, 2), rtol=0, atol=1e-5)


def test_feature_info_matches_outputs():
    model, _ = pair(SMALL)
    outs = model.forward_features(torch.randn(1, 3, 64, 64))
    for info, out in zip(model.feature_info, outs):
        assert out.shape[1] == info["num_chs"] and 64 // out.shape[-1] == info["reduction"]
    assert model.support_dim == outs[-1].shape[1]


def reference_window_attention(attn, windows, prompts, mask):
    """Materialise the prompts in every window: [P, M] sequence, zero bias/mask on prompts."""
    b, p, c = prompts.shape
    nw, m = windows.shape[0] // b, windows.shape[1]
    seq = torch.cat([prompts.repeat_interleave(nw, 0), windows], 1)  # (B·nW, P+M, C)
    h = attn.num_heads
    qkv = attn.qkv(seq).reshape(b * nw, p + m, 3, h, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    bias = F.pad(attn._get_rel_pos_bias(), (p, 0, p, 0))  # zeros for prompt rows/columns
    logits = logits + bias
    if mask is not None:
        logits = logits.view(b, nw, h, p + m, p + m) + F.pad(mask, (p, 0, p, 0))[None, :, None]
        logits = logits.view(b * nw, h, p + m, p + m)
    out = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(b * nw, p + m, -1))
    return out[:, p:], out[:, :p].view(b, nw, p, c).mean(1)


@pytest.mark.parametrize("shifted", [False, True])
def test_prompted_attention_equals_materialised_reference(shifted):
    model, _ = pair(SMALL)
    blk = model.layers[1].blocks[1 if shifted else 0]
    assert any(blk.shift_size) == shifted
    torch.manual_seed(1)
    x = torch.randn(3, 8, 8, blk.dim)  # batch 3, 4 windows each
    from timm.models.swin_transformer import window_partition

    if shifted:
        x = torch.roll(x, shifts=(-blk.shift_size[0], -blk.shift_size[1]), dims=(1, 2))
    windows = window_partition(x, blk.window_size).view(-1, blk.window_area, blk.dim)
    prompts = torch.randn(3, 5, blk.dim)
    mask = blk.get_attn_mask(x) if shifted else None
    if shifted:
        assert mask is not None and (mask != 0).any()
    ours = prompted_window_attention(blk.attn, windows, prompts, mask)
    ref = reference_window_attention(blk.attn, windows, prompts, mask)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_prompt_merging_tiles_each_prompt_four_times():
    model, _ = pair(SMALL)
    merge = model.layers[1].downsample
    prompts = torch.randn(2, 5, 16)
    manual = merge.reduction(merge.norm(torch.cat([prompts] * 4, -1)))
    torch.testing.assert_close(_merge_prompts(merge, prompts), manual)
    # the same as a 2x2 patch group made of copies of one prompt, through timm's own merging
    group = prompts[:, :, None, None, :].expand(2, 5, 2, 2, 16).reshape(10, 2, 2, 16)
    torch.testing.assert_close(merge(group).view(2, 5, -1), manual, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("deep", [False, True])
def test_batch_independence_with_prompts(deep):
    model, _ = pair(SMALL)
    x = torch.randn(3, 3, 64, 96)
    if deep:
        prompts = [torch.randn(3, 5, d) for d in model.prompt_dims]
        single = lambda i: [p[i : i + 1] for p in prompts]  # noqa: E731
    else:
        prompts = torch.randn(3, 5, model.prompt_dims[0])
        single = lambda i: prompts[i : i + 1]  # noqa: E731
    with torch.no_grad():
        together = model.forward_features(x, prompts)
        for i in range(3):
            for a, b in zip(together, model.forward_features(x[i : i + 1], single(i))):
                assert (a[i] - b[0]).abs().max() <= 1e-5


def test_prompts_change_features_and_get_gradients():
    model, _ = pair(SMALL)
    model.train()
    x = torch.randn(2, 3, 64, 64)
    prompts = torch.randn(2, 5, 16, requires_grad=True)
    with torch.no_grad():
        plain = model.forward_features(x)
    out = model.forward_features(x, prompts)
    assert all((a - b).abs().max() > 1e-3 for a, b in zip(out, plain))
    sum(o.square().mean() for o in out).backward()
    assert prompts.grad is not None and prompts.grad.abs().sum() > 0
    assert model.layers[0].blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_deep_prompts_replace_per_block():
    model, _ = pair(SMALL)
    x = torch.randn(1, 3, 64, 64)
    sets = [torch.randn(1, 5, d) for d in model.prompt_dims]
    base = model.forward_features(x, sets)
    sets[-1] = torch.randn_like(sets[-1])  # only the last block's set changes
    changed = model.forward_features(x, sets)
    for a, b in zip(base[:-1], changed[:-1]):
        torch.testing.assert_close(a, b)  # earlier stages untouched
    assert (base[-1] - changed[-1]).abs().max() > 1e-4


def test_shape_errors_name_the_mismatch():
    model, _ = pair(SMALL)
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match="width 96 != backbone prompt width 16"):
        model.forward_features(x, torch.randn(1, 5, 96))
    with pytest.raises(ValueError, match="expected 6 sets, got 2"):
        model.forward_features(x, [torch.randn(1, 5, 16)] * 2)
    with pytest.raises(ValueError, match="batch size"):
        model.forward_features(x, torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.forward_features(torch.randn(3, 64, 64))
    with pytest.raises(ValueError, match="unknown Swin variant"):
        build_swin("swin_huge")


def test_loads_timm_checkpoint_file_and_rejects_a_wrong_one(tmp_path):
    torch.manual_seed(3)
    timm_model = SwinTransformer(**SMALL, num_classes=10)  # with a classifier head
    torch.save(timm_model.state_dict(), tmp_path / "swin.pth")
    model = build_swin(weights=str(tmp_path / "swin.pth"), **SMALL)
    torch.testing.assert_close(model.patch_embed.proj.weight, timm_model.patch_embed.proj.weight)
    torch.save(SwinTransformer(**OTHER, num_classes=0).state_dict(), tmp_path / "other.pth")
    with pytest.raises(ValueError, match="do not fit PromptSwin"):
        build_swin(weights=str(tmp_path / "other.pth"), **SMALL)
    assert isinstance(model, PromptSwin)

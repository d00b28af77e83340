"""Prompt-aware Swin: equals timm without prompts, equals a materialised reference with prompts."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from timm.layers import DropPath
from timm.models.swin_transformer import SwinTransformer

from stpn.backbones.swin import PromptSwin, build_swin, merge_prompts, prompted_block
from stpn.backbones.swin_attention import prompted_window_attention

# stage maps at 64 px: 16, 8, 4, 2 (window 4: stage 2 shifts with a mask, 3-4 shrink the window)
SMALL = dict(embed_dim=16, depths=(1, 2, 2, 1), num_heads=(1, 2, 2, 4), window_size=4, img_size=64)
# window 2: stages 1-2 shift; 24 channels so head widths differ from SMALL
OTHER = dict(embed_dim=24, depths=(2, 2, 1, 1), num_heads=(2, 2, 4, 4), window_size=2, img_size=32)
# every second block shifts, also on maps smaller than the window (padded): detection-style
ALWAYS = dict(embed_dim=16, depths=(2, 2, 2), num_heads=(1, 2, 2), window_size=4, img_size=64, always_partition=True)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine they lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pair(cfg, seed=0):
    torch.manual_seed(seed)
    model = build_swin(**cfg).eval()
    ref = SwinTransformer(**cfg, num_classes=0, strict_img_size=False).eval()
    ref.load_state_dict(model.state_dict(), strict=True)  # same keys, unchanged
    return model, ref


def max_diff(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.shape == b.shape
    return max((a - b).abs().max().item() for a, b in zip(ours, theirs))


# --- the straightforward reference: prompts materialised in every window (released code) ---


class MaterialisedPromptAttention(nn.Module):
    """Stands in for timm's ``WindowAttention`` inside timm's own ``_attn`` (shift, pad,
    partition, reverse): the prompts are concatenated to every window, attention runs on
    ``[P + M]`` tokens with zero bias/mask on prompt rows and columns, the projected prompt
    outputs are averaged over the windows of each image."""

    def __init__(self, attn, prompts):
        super().__init__()
        self.attn, self.prompts, self.prompt_out = attn, prompts, None

    def forward(self, windows, mask=None):
        attn, (b, p, c) = self.attn, self.prompts.shape
        nw, m, h = windows.shape[0] // b, windows.shape[1], attn.num_heads
        seq = torch.cat([self.prompts.repeat_interleave(nw, 0), windows], 1)  # image-major windows
        q, k, v = attn.qkv(seq).reshape(b * nw, p + m, 3, h, c // h).permute(2, 0, 3, 1, 4).unbind(0)
        logits = (q * attn.scale) @ k.transpose(-2, -1) + F.pad(attn._get_rel_pos_bias(), (p, 0, p, 0))
        if mask is not None:
            logits = (logits.view(b, nw, h, p + m, p + m) + F.pad(mask, (p, 0, p, 0))[None, :, None]).flatten(0, 1)
        out = attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(b * nw, p + m, c))
        self.prompt_out = out[:, :p].reshape(b, nw, p, c).mean(1)
        return out[:, p:]


def reference_attention(blk, x, prompts):
    """timm's block attention on ``x (B, H, W, C)`` with materialised prompts ``(B, P, C)``."""
    original, blk.attn = blk.attn, MaterialisedPromptAttention(blk.attn, prompts)
    try:
        out = blk._attn(x)
        return out, blk.attn.prompt_out
    finally:
        blk.attn = original


def reference_forward(model, images, prompts):
    """Whole-model reference; ``prompts``: (B, P, C) tensor (shallow) or list (deep)."""
    deep = isinstance(prompts, list)
    x, p, k, outs = model.patch_embed(images), prompts[0] if deep else prompts, 0, []
    for stage in model.layers:
        if not isinstance(stage.downsample, nn.Identity):
            x, merge = stage.downsample(x), stage.downsample
            p = merge.reduction(merge.norm(torch.cat([p, p, p, p], -1)))  # tiled 4x along channels
        for blk in stage.blocks:
            p = prompts[k] if deep else p
            attn_x, attn_p = reference_attention(blk, blk.norm1(x), blk.norm1(p))
            x = x + attn_x
            x = x + blk.mlp(blk.norm2(x))
            p = p + attn_p
            p = p + blk.mlp(blk.norm2(p))
            k += 1
        outs.append(x.permute(0, 3, 1, 2))
    return outs


def random_prompts(model, batch, num=5, deep=False):
    if deep:
        return [torch.randn(batch, num, d) for d in model.prompt_dims]
    return torch.randn(batch, num, model.prompt_dims[0])


# --- without prompts: timm ---


@pytest.mark.parametrize("cfg", [SMALL, OTHER])
@pytest.mark.parametrize("size", [(64, 64), (96, 64), (72, 40)])
def test_no_prompts_equals_timm(cfg, size):
    model, ref = pair(cfg)
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        assert max_diff(model.forward_features(x), ref.forward_intermediates(x, intermediates_only=True)) <= 1e-5
        assert max_diff([model.embed(x)], [ref.forward_features(x).permute(0, 3, 1, 2)]) <= 1e-5


@pytest.mark.parametrize("cfg", [SMALL, ALWAYS])
def test_zero_prompts_through_the_prompted_path_equal_timm(cfg):
    """P = 0 runs the prompted code (shift, pad, windows, bias, reverse) and must give timm's maps."""
    model, ref = pair(cfg)
    x = torch.randn(2, 3, 96, 72)
    with torch.no_grad():
        ours = model.forward_features(x, torch.randn(2, 0, model.prompt_dims[0]))
        assert max_diff(ours, ref.forward_intermediates(x, intermediates_only=True)) <= 1e-5


@pytest.mark.filterwarnings("ignore::UserWarning:timm.layers.interpolate")  # timm resizing bias tables
def test_feature_info_and_out_indices():
    model, ref = pair(SMALL)
    x = torch.randn(1, 3, 64, 64)
    outs = model.forward_features(x)
    for info, out in zip(model.feature_info, outs):
        assert out.shape[1] == info["num_chs"] and 64 // out.shape[-1] == info["reduction"]
    assert model.support_dim == outs[-1].shape[1] == 128
    assert model.prompt_dims == (16, 32, 32, 64, 64, 128) and model.required_num_prompts is None
    torch.manual_seed(0)
    subset = build_swin(out_indices=(3, 1), **SMALL).eval()
    subset.load_state_dict(model.state_dict())
    with torch.no_grad():
        want = ref.forward_intermediates(x, indices=[1, 3], intermediates_only=True)
        assert max_diff(subset.forward_features(x), want) <= 1e-5
    assert [f["num_chs"] for f in subset.feature_info] == [32, 128]
    subset.set_input_size(img_size=(128, 128), window_size=4)  # timm's resize: new masks, shifts
    ref.set_input_size(img_size=(128, 128), window_size=4)
    x = torch.randn(1, 3, 128, 128)
    with torch.no_grad():
        want = ref.forward_intermediates(x, indices=[1, 3], intermediates_only=True)
        assert max_diff(subset.forward_features(x, torch.randn(1, 0, 16)), want) <= 1e-5
    assert [f["reduction"] for f in subset.feature_info] == [8, 32]
    with pytest.raises(ValueError, match="out_indices"):
        build_swin(out_indices=(4,), **SMALL)


# --- with prompts: the materialised reference ---


@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("size", [(8, 8), (10, 7)])  # (10, 7): windows padded
def test_prompted_window_attention_equals_materialised_reference(shifted, size):
    model, _ = pair(SMALL)
    blk = model.layers[1].blocks[1 if shifted else 0]
    assert any(blk.shift_size) == shifted
    x, prompts = torch.randn(3, *size, blk.dim), torch.randn(3, 5, blk.dim)  # batch 3, >= 4 windows
    if shifted:
        mask = blk.get_attn_mask(F.pad(x, (0, 0, 0, -size[1] % 4, 0, -size[0] % 4)))
        assert (mask != 0).any()  # the shift mask takes part
    ref_x, ref_p = reference_attention(blk, x, prompts)
    seq = torch.cat([prompts, x.flatten(1, 2)], 1)
    ours = prompted_window_attention(blk, seq, *size)
    assert max_diff([ours[:, :5], ours[:, 5:]], [ref_p, ref_x.flatten(1, 2)]) <= 1e-5


@pytest.mark.parametrize("cfg,size", [(SMALL, (96, 64)), (OTHER, (64, 48)), (ALWAYS, (64, 40))])
@pytest.mark.parametrize("deep", [False, True])
def test_prompted_model_equals_materialised_reference(cfg, size, deep):
    model, _ = pair(cfg)
    x, prompts = torch.randn(2, 3, *size), random_prompts(model, 2, deep=deep)
    with torch.no_grad():
        assert max_diff(model.forward_features(x, prompts), reference_forward(model, x, prompts)) <= 1e-5


def test_prompt_merging_tiles_each_prompt_four_times():
    model, _ = pair(SMALL)
    merge = model.layers[1].downsample
    prompts = torch.randn(2, 5, 16)
    manual = merge.reduction(merge.norm(torch.cat([prompts] * 4, -1)))
    torch.testing.assert_close(merge_prompts(merge, prompts), manual)
    # the same as a 2x2 patch group made of copies of one prompt, through timm's own merging
    group = prompts[:, :, None, None, :].expand(2, 5, 2, 2, 16).reshape(10, 2, 2, 16)
    torch.testing.assert_close(merge(group).view(2, 5, -1), manual, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("deep", [False, True])
def test_batch_independence_with_prompts(deep):
    model, _ = pair(SMALL)
    x, prompts = torch.randn(3, 3, 64, 96), random_prompts(model, 3, deep=deep)
    with torch.no_grad():
        together = model.forward_features(x, prompts)
        for i in range(3):
            single = [p[i : i + 1] for p in prompts] if deep else prompts[i : i + 1]
            assert max_diff([t[i : i + 1] for t in together], model.forward_features(x[i : i + 1], single)) <= 1e-5


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
    for name in ("layers.0.blocks.0.attn.qkv.weight", "layers.1.blocks.1.attn.relative_position_bias_table",
                 "layers.2.downsample.reduction.weight", "patch_embed.proj.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name


def test_gradient_checkpointing_gives_the_same_gradients():
    model, _ = pair(SMALL)
    x, prompts = torch.randn(2, 3, 64, 64), torch.randn(2, 5, 16)

    def grads(m):
        m.zero_grad()
        sum(o.square().mean() for o in m.forward_features(x, prompts)).backward()
        return {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}

    plain = grads(model)
    model.set_grad_checkpointing(True)
    checkpointed = grads(model)
    assert checkpointed.keys() == plain.keys() and len(plain) > 50  # all but the unused final norm
    assert max_diff(list(checkpointed.values()), list(plain.values())) <= 1e-6


def test_drop_path_drops_prompts_and_tokens_of_an_image_together():
    model, _ = pair(SMALL)
    blk = copy.deepcopy(model.layers[1].blocks[1]).train()
    blk.drop_path1, blk.drop_path2 = DropPath(0.5), DropPath(1.0)  # attention branch only, random
    seq = torch.randn(16, 5 + 64, blk.dim)
    torch.manual_seed(4)
    changed = (prompted_block(blk, seq, 8, 8) - seq).abs().amax(-1) > 0  # (B, P + H·W)
    assert changed.any() and not changed.all()  # some images dropped, some kept
    assert (changed == changed[:, :1]).all()  # prompts and tokens share the draw


def test_deep_prompts_replace_per_block():
    model, _ = pair(SMALL)
    x = torch.randn(1, 3, 64, 64)
    sets = random_prompts(model, 1, deep=True)
    base = model.forward_features(x, sets)
    sets[-1] = torch.randn_like(sets[-1])  # only the last block's set changes
    changed = model.forward_features(x, sets)
    assert max_diff(base[:-1], changed[:-1]) == 0  # earlier stages untouched
    assert (base[-1] - changed[-1]).abs().max() > 1e-4


# --- errors and weights ---


def test_shape_errors_name_the_mismatch():
    model, _ = pair(SMALL)
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match="width 96 != backbone prompt width 16"):
        model.forward_features(x, torch.randn(1, 5, 96))
    with pytest.raises(ValueError, match="expected 6 sets, got 2"):
        model.forward_features(x, [torch.randn(1, 5, 16)] * 2)
    with pytest.raises(ValueError, match=r"prompt set 1 width 16 != backbone prompt width 32"):
        model.forward_features(x, [torch.randn(1, 5, 16)] * 6)
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
    assert isinstance(model, PromptSwin)
    torch.testing.assert_close(model.patch_embed.proj.weight, timm_model.patch_embed.proj.weight)
    torch.save(SwinTransformer(**OTHER, num_classes=0).state_dict(), tmp_path / "other.pth")
    with pytest.raises(ValueError, match="do not fit PromptSwin"):
        build_swin(weights=str(tmp_path / "other.pth"), **SMALL)

"""Prompt-aware ViT: equals timm without prompts; VPT-style prompts; batch safety; errors."""
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from stpn.backbones.vit import build_vit

CONFIGS = [
    dict(embed_dim=32, depth=2, num_heads=2, img_size=32),
    dict(embed_dim=48, depth=3, num_heads=3, img_size=48, class_token=False, global_pool="avg"),
    dict(embed_dim=32, depth=2, num_heads=4, img_size=32, reg_tokens=2),
]


def pair(cfg, out_indices=(-1,)):
    torch.manual_seed(0)
    model = build_vit(out_indices=out_indices, **cfg).eval()
    ref = VisionTransformer(patch_size=16, num_classes=0, dynamic_img_size=True, **cfg).eval()
    ref.load_state_dict(model.state_dict(), strict=True)
    return model, ref


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("size", [(32, 32), (48, 80)])
def test_no_prompts_equals_timm(cfg, size):
    model, ref = pair(cfg, out_indices=(0, -1))
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ours = model.forward_features(x)
        theirs = ref.forward_intermediates(x, indices=[0, cfg["depth"] - 1], intermediates_only=True)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape and (a - b).abs().max() <= 1e-5
        tokens = ref.forward_features(x)[:, ref.num_prefix_tokens :]
        expected = tokens.transpose(1, 2).reshape(2, cfg["embed_dim"], size[0] // 16, size[1] // 16)
        assert (model.embed(x) - expected).abs().max() <= 1e-5


def test_prompts_equal_manual_sequence():
    model, ref = pair(CONFIGS[2])
    x, prompts = torch.randn(1, 3, 32, 48), torch.randn(1, 4, 32)
    with torch.no_grad():
        seq = ref.norm_pre(ref._pos_embed(ref.patch_embed(x)))
        prefix = ref.num_prefix_tokens
        seq = torch.cat([seq[:, :prefix], prompts, seq[:, prefix:]], 1)
        for blk in ref.blocks:
            seq = blk(seq)
        expected = seq[:, prefix + 4 :].transpose(1, 2).reshape(1, 32, 2, 3)
        torch.testing.assert_close(model.forward_features(x, prompts)[0], expected)
        assert (model.forward_features(x)[0] - expected).abs().max() > 1e-3  # prompts matter


@pytest.mark.parametrize("deep", [False, True])
def test_batch_independence_with_prompts(deep):
    model, _ = pair(CONFIGS[0])
    x = torch.randn(3, 3, 32, 48)
    prompts = [torch.randn(3, 5, 32) for _ in model.prompt_dims] if deep else torch.randn(3, 5, 32)
    take = (lambda i: [p[i : i + 1] for p in prompts]) if deep else (lambda i: prompts[i : i + 1])
    with torch.no_grad():
        together = model.forward_features(x, prompts)[0]
        for i in range(3):
            assert (together[i] - model.forward_features(x[i : i + 1], take(i))[0][0]).abs().max() <= 1e-5


def test_deep_prompts_replace_before_each_block():
    model, _ = pair(CONFIGS[0])
    x = torch.randn(1, 3, 32, 32)
    sets = [torch.randn(1, 5, 32) for _ in model.prompt_dims]
    with torch.no_grad():
        a = model.forward_features(x, sets)[0]
        b = model.forward_features(x, [sets[0], torch.randn(1, 5, 32)])[0]
        c = model.forward_features(x, sets[0])[0]  # shallow: block 1 sees block 0's prompt outputs
    assert (a - b).abs().max() > 1e-4 and (a - c).abs().max() > 1e-4


def test_gradients_reach_prompts_and_weights():
    model, _ = pair(CONFIGS[0])
    prompts = torch.randn(2, 5, 32, requires_grad=True)
    model.forward_features(torch.randn(2, 3, 32, 32), prompts)[0].square().mean().backward()
    assert prompts.grad.abs().sum() > 0 and model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


def test_errors_and_weights(tmp_path):
    model, _ = pair(CONFIGS[0])
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="width 16 != backbone prompt width 32"):
        model.forward_features(x, torch.randn(1, 5, 16))
    with pytest.raises(ValueError, match="expected 2 sets, got 3"):
        model.forward_features(x, [torch.randn(1, 5, 32)] * 3)
    with pytest.raises(ValueError, match="unknown ViT variant"):
        build_vit("vit_gigantic")
    torch.save(VisionTransformer(patch_size=16, num_classes=7, **CONFIGS[0]).state_dict(), tmp_path / "vit.pth")
    loaded = build_vit(weights=str(tmp_path / "vit.pth"), **CONFIGS[0])
    assert loaded.feature_info == [dict(num_chs=32, reduction=16, module="blocks.1")]
    with pytest.raises(FileNotFoundError):
        build_vit(weights=str(tmp_path / "missing.pth"), **CONFIGS[0])

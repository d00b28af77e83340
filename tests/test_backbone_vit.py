"""Prompt-aware ViT: equals timm without prompts; prompts = timm blocks on the joined sequence;
batch independence; gradients; strict weight loading; named errors."""
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from stpn.backbones.vit import PromptViT, build_vit

CONFIGS = {
    "cls": dict(embed_dim=32, depth=2, num_heads=2, img_size=32),
    "gap": dict(embed_dim=48, depth=3, num_heads=3, img_size=48, class_token=False, global_pool="avg"),
    "reg": dict(embed_dim=32, depth=3, num_heads=4, img_size=32, reg_tokens=2, no_embed_class=True),
}


def pair(name, out_indices=(-1,)):
    """Our model and an independent timm ``VisionTransformer`` with the same weights."""
    torch.manual_seed(0)
    model = build_vit(out_indices=out_indices, **CONFIGS[name]).eval()
    ref = VisionTransformer(patch_size=16, num_classes=0, dynamic_img_size=True, **CONFIGS[name]).eval()
    ref.load_state_dict(model.state_dict(), strict=True)
    return model, ref


def as_map(tokens, h, w):
    return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, h, w)


def manual_prompted(ref, images, sets):
    """Reference: timm's own modules on ``[prefix, prompts, patches]``, prompt tokens swapped
    for ``sets[i]`` before block i (deep) or only inserted before block 0 (one set)."""
    prefix, n = ref.num_prefix_tokens, sets[0].shape[1]
    seq = ref.norm_pre(ref._pos_embed(ref.patch_embed(images)))
    seq = torch.cat([seq[:, :prefix], sets[0], seq[:, prefix:]], 1)
    for i, blk in enumerate(ref.blocks):
        if i > 0 and len(sets) > 1:
            seq = torch.cat([seq[:, :prefix], sets[i], seq[:, prefix + n :]], 1)
        seq = blk(seq)
    return as_map(seq[:, prefix + n :], images.shape[2] // 16, images.shape[3] // 16)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("size", [(32, 32), (48, 80)])
def test_no_prompts_equals_timm(name, size):
    model, ref = pair(name, out_indices=(0, -1))
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ours = model.forward_features(x)
        theirs = ref.forward_intermediates(x, indices=[0, len(ref.blocks) - 1], intermediates_only=True)
        assert len(ours) == 2
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape == (2, CONFIGS[name]["embed_dim"], size[0] // 16, size[1] // 16)
            assert (a - b).abs().max() <= 1e-5
        expected = as_map(ref.forward_features(x)[:, ref.num_prefix_tokens :], size[0] // 16, size[1] // 16)
        assert (model.embed(x) - expected).abs().max() <= 1e-5
        if name != "gap":  # global_pool="avg" models have fc_norm instead of a final norm
            assert (ours[-1] - expected).abs().max() > 1e-3  # maps: no final norm; embed: final norm


@pytest.mark.parametrize("name", ["cls", "reg"])
@pytest.mark.parametrize("deep", [False, True])
def test_prompts_equal_timm_blocks_on_joined_sequence(name, deep):
    model, ref = pair(name)
    x = torch.randn(2, 3, 32, 48)
    sets = [torch.randn(2, 4, 32) for _ in model.prompt_dims]
    prompts = sets if deep else sets[0]
    with torch.no_grad():
        out = model.forward_features(x, prompts)[0]
        torch.testing.assert_close(out, manual_prompted(ref, x, sets if deep else sets[:1]))
        assert (out - model.forward_features(x)[0]).abs().max() > 1e-3  # prompts are not ignored


def test_deep_prompts_replace_before_each_block():
    model, _ = pair("reg")
    x = torch.randn(1, 3, 32, 32)
    sets = [torch.randn(1, 5, 32) for _ in model.prompt_dims]
    with torch.no_grad():
        a = model.forward_features(x, sets)[0]
        last_changed = model.forward_features(x, sets[:-1] + [torch.randn(1, 5, 32)])[0]
        shallow = model.forward_features(x, sets[0])[0]  # later blocks see earlier prompt outputs
    assert (a - last_changed).abs().max() > 1e-4 and (a - shallow).abs().max() > 1e-4


@pytest.mark.parametrize("deep", [False, True])
def test_batch_independence_with_prompts(deep):
    model, _ = pair("reg")
    x = torch.randn(3, 3, 32, 48)
    sets = [torch.randn(3, 5, 32) for _ in model.prompt_dims]
    with torch.no_grad():
        together = model.forward_features(x, sets if deep else sets[0])[0]
        for i in range(3):
            one = [p[i : i + 1] for p in sets]
            alone = model.forward_features(x[i : i + 1], one if deep else one[0])[0]
            assert (together[i] - alone[0]).abs().max() <= 1e-5


def test_gradients_reach_prompts_and_weights_also_with_checkpointing():
    model, _ = pair("cls")
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for checkpointing in (False, True):
        model.set_grad_checkpointing(checkpointing)
        model.zero_grad()
        sets = [torch.randn(2, 5, 32, generator=torch.Generator().manual_seed(i)).requires_grad_() for i in range(2)]
        model.forward_features(x, sets)[0].square().mean().backward()
        assert all(p.grad.abs().sum() > 0 for p in sets)
        assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0 and model.pos_embed.grad.abs().sum() > 0
        grads.append(sets[0].grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_shape_errors_name_the_mismatch():
    model, _ = pair("cls")
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="width 16 != backbone prompt width 32"):
        model.forward_features(x, torch.randn(1, 5, 16))
    with pytest.raises(ValueError, match="expected 2 sets, got 3"):
        model.forward_features(x, [torch.randn(1, 5, 32)] * 3)
    with pytest.raises(ValueError, match="batch size 2 != image batch size 1"):
        model.forward_features(x, torch.randn(2, 5, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.forward_features(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.embed(torch.randn(1, 3, 32))
    with pytest.raises(ValueError, match="not a multiple of the patch size"):
        model.forward_features(torch.randn(1, 3, 40, 32))
    fixed = build_vit(dynamic_img_size=False, **CONFIGS["cls"])
    with pytest.raises(ValueError, match=r"image size \(48, 32\) != model img_size \(32, 32\)"):
        fixed.embed(torch.randn(1, 3, 48, 32))
    with pytest.raises(ValueError, match="out_indices"):
        build_vit(out_indices=(2,), **CONFIGS["cls"])


def test_attributes_and_factory():
    model = build_vit(out_indices=(2, -3), **CONFIGS["reg"])
    assert model.out_indices == (0, 2)
    assert model.feature_info == [dict(num_chs=32, reduction=16, module=f"blocks.{i}") for i in (0, 2)]
    assert model.prompt_dims == (32, 32, 32) and model.support_dim == 32 and model.required_num_prompts is None
    assert [m.shape for m in model(torch.randn(1, 3, 32, 64))] == [(1, 32, 2, 4)] * 2
    tagged = build_vit("deit_tiny_patch16_224.fb_in1k", depth=1, img_size=32)
    assert isinstance(tagged, PromptViT) and tagged.embed_dim == 192
    with pytest.raises(ValueError, match="is not a timm ViT"):
        build_vit("resnet18")
    with pytest.raises(ValueError, match="VisionTransformerDistilled"):
        build_vit("deit_tiny_distilled_patch16_224", depth=1, img_size=32)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_loads_timm_state_dict_strictly(tmp_path, suffix):
    torch.manual_seed(1)
    timm_vit = VisionTransformer(patch_size=16, num_classes=7, dynamic_img_size=True, **CONFIGS["reg"]).eval()
    path = tmp_path / f"vit{suffix}"
    if suffix == ".pth":
        torch.save(timm_vit.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(timm_vit.state_dict(), str(path))
    model = build_vit(weights=str(path), **CONFIGS["reg"]).eval()
    x = torch.randn(1, 3, 48, 32)
    with torch.no_grad():
        expected = timm_vit.forward_features(x)[:, timm_vit.num_prefix_tokens :]
        assert (model.embed(x) - as_map(expected, 3, 2)).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="do not fit PromptViT.*missing: blocks.3"):
        build_vit(weights=str(path), **{**CONFIGS["reg"], "depth": 4})
    with pytest.raises(ValueError, match="shape"):
        build_vit(weights=str(path), **{**CONFIGS["reg"], "reg_tokens": 1})
    with pytest.raises(FileNotFoundError):
        build_vit(weights=str(tmp_path / "missing.pth"), **CONFIGS["reg"])


def test_unreadable_weight_files_name_the_file(tmp_path):
    from stpn.backbones.weights import read_state_dict

    for name in ("broken.safetensors", "broken.pth"):
        (tmp_path / name).write_bytes(b"not weights")
        with pytest.raises(ValueError, match=name):
            read_state_dict(tmp_path / name)

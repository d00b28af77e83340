"""Prompt-aware CvT: equals transformers' CvtModel without prompts, STPN's CvT prompt rules,
batch safety, official-checkpoint key conversion."""
import pytest
import torch
import torch.nn.functional as F
from transformers import CvtConfig, CvtModel

from stpn.backbones.cvt import PromptCvT, build_cvt, prompt_padding, resolve_spec
from stpn.backbones.cvt_convert import convert_official_cvt
from tests.norm_helpers import randomise_norms

SMALL = dict(embed_dim=(16, 24, 32), num_heads=(1, 2, 4), depth=(1, 2, 3))
# transformers' CvtStage indexes its drop-path list by the stage number, so depth[i] > i is needed
OTHER = dict(embed_dim=(8, 16, 24), num_heads=(2, 2, 3), depth=(2, 2, 4), patch_padding=(3, 1, 1), mlp_ratio=(2.0, 3.0, 4.0))


def pair(cfg, cls_last=True, seed=0, activation="gelu"):
    torch.manual_seed(seed)
    config = CvtConfig(**{k: list(v) for k, v in cfg.items()}, cls_token=[False, False, cls_last])
    model = build_cvt(config, activation=activation)
    randomise_norms(model)
    ref = CvtModel(config)
    ref.load_state_dict(model.state_dict(), strict=True)  # same keys and shapes, unchanged
    return model.eval(), ref.eval()


@pytest.mark.parametrize("cfg", [SMALL, OTHER])
@pytest.mark.parametrize("size", [(32, 32), (48, 72)])
@pytest.mark.parametrize("cls_last", [True, False])
def test_no_prompts_equals_transformers(cfg, size, cls_last):
    model, ref = pair(cfg, cls_last)
    assert (model.stages[2].cls_token is not None) == cls_last
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        ours = model.forward_features(x)
        theirs = ref(x, output_hidden_states=True)
        assert len(ours) == 3
        for a, b in zip(ours, theirs.hidden_states):
            assert a.shape == b.shape
            assert (a - b).abs().max() <= 1e-5
        assert (model.embed(x) - theirs.last_hidden_state).abs().max() <= 1e-5


def test_quick_gelu_equals_transformers_with_quick_gelu_mlp():
    model, ref = pair(SMALL, activation="quick_gelu")
    for stage in ref.encoder.stages:
        for layer in stage.layers:
            layer.intermediate.activation = type(model.stages[0].layers[0].intermediate.activation)()
    x = torch.randn(1, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(model.embed(x), ref(x).last_hidden_state, rtol=0, atol=1e-5)
        plain, _ = pair(SMALL, activation="gelu")
        assert (plain.embed(x) - model.embed(x)).abs().max() > 1e-4  # the activation matters


def test_builtin_variants_match_transformers_and_paper():
    assert resolve_spec(variant="cvt-13") == resolve_spec(CvtConfig())  # CvtConfig defaults = CvT-13
    with torch.device("meta"):  # shapes only, no memory
        for variant, depth in (("cvt-13", [1, 2, 10]), ("cvt-21", [1, 4, 16])):
            ours = build_cvt(variant=variant).state_dict()
            theirs = CvtModel(CvtConfig(depth=depth)).state_dict()
            assert [(k, v.shape) for k, v in ours.items()] == [(k, v.shape) for k, v in theirs.items()]
        model = build_cvt(variant="cvt-21")
    # CvT-21 (paper Table 2): 31.6M parameters with the 1000-class head (385k) -> 31.2M without
    assert 31.1e6 < sum(p.numel() for p in model.parameters()) < 31.3e6
    assert model.prompt_dims == (64,) + (192,) * 4 + (384,) * 16
    assert model.support_dim == 384 and model.required_num_prompts == 9
    assert [f["reduction"] for f in model.feature_info] == [4, 8, 16]


def test_feature_info_matches_outputs_and_out_indices():
    torch.manual_seed(0)
    model = build_cvt(SMALL, out_indices=(1, 2)).eval()
    outs = model.forward_features(torch.randn(1, 3, 64, 64))
    assert len(outs) == 2
    for info, out in zip(model.feature_info, outs):
        assert out.shape[1] == info["num_chs"] and 64 // out.shape[-1] == info["reduction"]


def test_prompts_must_be_nine():
    model, _ = pair(SMALL)
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="N_P=9"):
        model.forward_features(x, torch.randn(1, 5, 16))
    with pytest.raises(ValueError, match="N_P=9"):
        model.forward_features(x, [torch.randn(1, 4, d) for d in model.prompt_dims])


def test_prompts_stay_3x3_through_stride2_embedding():
    assert prompt_padding(3, 2) == 2  # supplementary §1
    model, _ = pair(SMALL)
    x = torch.randn(2, 3, 48, 48)
    prompts = torch.randn(2, 9, 16)
    with torch.no_grad():
        full = model.forward_features(x, prompts)
        map0, prompts0 = model.stages[0](x, prompts)
        emb = model.stages[1].embedding.convolution_embeddings
        grid = prompts0.transpose(1, 2).reshape(2, 16, 3, 3)  # prompt r*3+c at row r, column c
        conv = F.conv2d(grid, emb.projection.weight, emb.projection.bias, stride=2, padding=2)
        assert conv.shape == (2, 24, 3, 3)
        manual = F.layer_norm(conv.flatten(2).transpose(1, 2), (24,), emb.normalization.weight, emb.normalization.bias)
        torch.testing.assert_close(model.stages[1].embedding.embed_prompts(prompts0), manual)
        map1, _ = model.stages[1](map0, manual)
    torch.testing.assert_close(full[0], map0)
    torch.testing.assert_close(full[1], map1)


def reference_attention(attn, extra, patch_map):
    """Extra tokens skip the depthwise conv projections, join before the linear ones; plain
    softmax attention with CvT's full-width scale."""
    def conv_tokens(proj):
        t = proj.convolution_projection.normalization(proj.convolution_projection.convolution(patch_map))
        return torch.cat([extra, t.flatten(2).transpose(1, 2)], 1)

    q = attn.projection_query(conv_tokens(attn.convolution_projection_query))
    k = attn.projection_key(conv_tokens(attn.convolution_projection_key))
    v = attn.projection_value(conv_tokens(attn.convolution_projection_value))
    b, n, c = q.shape
    h = attn.num_heads
    split = lambda t: t.view(b, t.shape[1], h, c // h).transpose(1, 2)  # noqa: E731
    w = (split(q) @ split(k).transpose(-2, -1) * c**-0.5).softmax(-1)
    return (w @ split(v)).transpose(1, 2).reshape(b, n, c)


def test_attention_treats_prompts_like_cls_token():
    model, _ = pair(SMALL)
    attn = model.stages[2].layers[0].attention.attention
    torch.manual_seed(1)
    extra, patch_map = torch.randn(2, 10, 32), torch.randn(2, 32, 4, 6)  # cls + 9 prompts
    tokens = torch.cat([extra, patch_map.flatten(2).transpose(1, 2)], 1)
    with torch.no_grad():
        torch.testing.assert_close(attn(tokens, 4, 6, 10), reference_attention(attn, extra, patch_map), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("deep", [False, True])
def test_batch_independence_with_prompts(deep):
    model, _ = pair(SMALL)
    x = torch.randn(3, 3, 48, 40)
    if deep:
        prompts = [torch.randn(3, 9, d) for d in model.prompt_dims]
        single = lambda i: [p[i : i + 1] for p in prompts]  # noqa: E731
    else:
        prompts = torch.randn(3, 9, 16)
        single = lambda i: prompts[i : i + 1]  # noqa: E731
    with torch.no_grad():
        together = model.forward_features(x, prompts)
        for i in range(3):
            for a, b in zip(together, model.forward_features(x[i : i + 1], single(i))):
                assert (a[i] - b[0]).abs().max() <= 1e-5


@pytest.mark.parametrize("deep", [False, True])
def test_prompts_change_features_and_get_gradients(deep):
    model, _ = pair(SMALL)
    model.train()
    x = torch.randn(2, 3, 32, 32)
    if deep:
        prompts = [torch.randn(2, 9, d, requires_grad=True) for d in model.prompt_dims]
    else:
        prompts = torch.randn(2, 9, 16, requires_grad=True)
    with torch.no_grad():
        plain = model.eval().forward_features(x)
        prompted = model.forward_features(x, prompts)
    assert all((a - b).abs().max() > 1e-3 for a, b in zip(prompted, plain))
    out = model.train().forward_features(x, prompts)
    sum(o.square().mean() for o in out).backward()
    for p in prompts if deep else [prompts]:
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert model.stages[1].embedding.convolution_embeddings.projection.weight.grad.abs().sum() > 0
    assert model.stages[2].layers[-1].attention.attention.projection_query.weight.grad.abs().sum() > 0


def test_deep_prompts_replace_per_block():
    model, _ = pair(SMALL)
    x = torch.randn(1, 3, 32, 32)
    sets = [torch.randn(1, 9, d) for d in model.prompt_dims]
    with torch.no_grad():
        base = model.forward_features(x, sets)
        sets[-1] = torch.randn_like(sets[-1])  # only the last block's set changes
        changed = model.forward_features(x, sets)
        shallow = model.forward_features(x, sets[0])
    for a, b in zip(base[:-1], changed[:-1]):
        torch.testing.assert_close(a, b)
    assert (base[-1] - changed[-1]).abs().max() > 1e-4
    torch.testing.assert_close(shallow[0], base[0])  # shallow prompts enter block 1 like set 0


def test_shape_and_config_errors_name_the_mismatch():
    model, _ = pair(SMALL)
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="width 24 != backbone prompt width 16"):
        model.forward_features(x, torch.randn(1, 9, 24))
    with pytest.raises(ValueError, match="expected 6 sets, got 2"):
        model.forward_features(x, [torch.randn(1, 9, 16)] * 2)
    with pytest.raises(ValueError, match="batch size 2 != image batch size 1"):
        model.forward_features(x, torch.randn(2, 9, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.embed(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match="unknown CvT variant"):
        build_cvt(variant="cvt-99")
    with pytest.raises(ValueError, match="unknown CvT config fields: embed_dims"):
        build_cvt({"embed_dims": (8, 16, 32)})
    with pytest.raises(ValueError, match="embed_dim 24 not divisible by num_heads 5"):
        build_cvt(SMALL, num_heads=(1, 5, 4))
    with pytest.raises(ValueError, match="num_heads has 2 entries, depth has 3 stages"):
        build_cvt(SMALL, num_heads=(1, 2))
    with pytest.raises(ValueError, match="'avg' unsupported"):
        build_cvt(SMALL, qkv_projection_method=("dw_bn", "avg", "dw_bn"))
    with pytest.raises(ValueError, match="out_indices"):
        build_cvt(SMALL, out_indices=(3,))
    with pytest.raises(ValueError, match="lacks"):
        build_cvt(object())


# Official microsoft/CvT naming (lib/models/cls_cvt.py): shapes for stage width c, input width c_in,
# patch size p, MLP width m.
OFFICIAL_EMBED = {
    "patch_embed.proj.weight": lambda c, c_in, p, m: (c, c_in, p, p),
    "patch_embed.proj.bias": lambda c, c_in, p, m: (c,),
    "patch_embed.norm.weight": lambda c, c_in, p, m: (c,),
    "patch_embed.norm.bias": lambda c, c_in, p, m: (c,),
}
OFFICIAL_BLOCK = {
    **{f"{n}.{w}": (lambda c, m: (c,)) for n in ("norm1", "norm2") for w in ("weight", "bias")},
    **{f"attn.conv_proj_{s}.conv.weight": (lambda c, m: (c, 1, 3, 3)) for s in "qkv"},
    **{f"attn.conv_proj_{s}.bn.{w}": (lambda c, m: (c,)) for s in "qkv" for w in ("weight", "bias", "running_mean", "running_var")},
    **{f"attn.conv_proj_{s}.bn.num_batches_tracked": (lambda c, m: ()) for s in "qkv"},
    **{f"attn.{n}.weight": (lambda c, m: (c, c)) for n in ("proj_q", "proj_k", "proj_v", "proj")},
    **{f"attn.{n}.bias": (lambda c, m: (c,)) for n in ("proj_q", "proj_k", "proj_v", "proj")},
    "mlp.fc1.weight": lambda c, m: (m, c),
    "mlp.fc1.bias": lambda c, m: (m,),
    "mlp.fc2.weight": lambda c, m: (c, m),
    "mlp.fc2.bias": lambda c, m: (c,),
}


def official_state_dict(spec, num_classes=10):
    """Random tensors under the official keys for ``spec`` (cls token in stage 2, classifier)."""
    shapes = {}
    for i, (c, depth) in enumerate(zip(spec.embed_dim, spec.depth)):
        c_in, m = 3 if i == 0 else spec.embed_dim[i - 1], int(c * spec.mlp_ratio[i])
        if spec.cls_token[i]:
            shapes[f"stage{i}.cls_token"] = (1, 1, c)
        for name, shape in OFFICIAL_EMBED.items():
            shapes[f"stage{i}.{name}"] = shape(c, c_in, spec.patch_sizes[i], m)
        for j in range(depth):
            for name, shape in OFFICIAL_BLOCK.items():
                shapes[f"stage{i}.blocks.{j}.{name}"] = shape(c, m)
    c = spec.embed_dim[-1]
    shapes.update({"norm.weight": (c,), "norm.bias": (c,), "head.weight": (num_classes, c), "head.bias": (num_classes,)})
    return {k: torch.randn(s) if s else torch.tensor(7) for k, s in shapes.items()}


def test_official_checkpoint_converts_to_our_keys_and_loads_strictly():
    model = build_cvt(OTHER)
    official = official_state_dict(model.spec)
    converted = convert_official_cvt(official)
    own = model.state_dict()
    assert set(converted) == set(own)
    assert all(converted[k].shape == own[k].shape for k in own)
    assert len(converted) == len(official) - 4  # norm.* and head.* dropped, without error
    model.load_state_dict(converted, strict=True)
    spots = {
        "stage2.blocks.1.attn.proj_q.weight": "encoder.stages.2.layers.1.attention.attention.projection_query.weight",
        "stage2.blocks.1.attn.proj_k.weight": "encoder.stages.2.layers.1.attention.attention.projection_key.weight",
        "stage1.blocks.0.attn.proj.weight": "encoder.stages.1.layers.0.attention.output.dense.weight",
        "stage1.blocks.1.attn.conv_proj_v.bn.running_var": "encoder.stages.1.layers.1.attention.attention.convolution_projection_value.convolution_projection.normalization.running_var",
        "stage0.blocks.1.norm2.bias": "encoder.stages.0.layers.1.layernorm_after.bias",
        "stage2.blocks.3.mlp.fc1.weight": "encoder.stages.2.layers.3.intermediate.dense.weight",
        "stage1.patch_embed.norm.weight": "encoder.stages.1.embedding.convolution_embeddings.normalization.weight",
        "stage2.cls_token": "encoder.stages.2.cls_token",
    }
    for theirs, ours in spots.items():
        assert converted[ours] is official[theirs]


def test_unknown_official_key_raises_naming_it():
    official = official_state_dict(build_cvt(SMALL).spec)
    official["stage1.blocks.0.attn.conv_proj_q.gamma"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"stage1\.blocks\.0\.attn\.conv_proj_q\.gamma"):
        convert_official_cvt(official)
    with pytest.raises(ValueError, match="stage0.pos_embed"):
        convert_official_cvt({"stage0.pos_embed": torch.zeros(1)})


def test_build_from_checkpoint_files(tmp_path):
    torch.manual_seed(2)
    spec = resolve_spec(SMALL)
    official = official_state_dict(spec)
    torch.save(official, tmp_path / "CvT-official.pth")
    model = build_cvt(SMALL, weights=str(tmp_path / "CvT-official.pth"))
    assert model.activation == "quick_gelu"  # official checkpoints were trained with QuickGELU
    torch.testing.assert_close(model.stages[2].cls_token, official["stage2.cls_token"])
    mixformer = build_cvt(SMALL, weights=str(tmp_path / "CvT-official.pth"), cls_token=(False, False, False))
    assert mixformer.stages[2].cls_token is None  # checkpoint's cls token dropped, rest strict
    torch.testing.assert_close(mixformer.stages[0].embedding.convolution_embeddings.projection.weight, official["stage0.patch_embed.proj.weight"])

    from transformers import CvtForImageClassification

    classifier = CvtForImageClassification(CvtConfig(**{k: list(v) for k, v in SMALL.items()}, num_labels=5))
    torch.save(classifier.state_dict(), tmp_path / "hf.pth")  # cvt.* + layernorm.* + classifier.*
    model = build_cvt(SMALL, weights=str(tmp_path / "hf.pth"))
    assert model.activation == "gelu"
    torch.testing.assert_close(model.stages[1].layers[1].output.dense.weight, classifier.cvt.encoder.stages[1].layers[1].output.dense.weight)
    with pytest.raises(ValueError, match="do not fit PromptCvT"):
        build_cvt(OTHER, weights=str(tmp_path / "hf.pth"))
    assert isinstance(model, PromptCvT)

"""STPN wrapper: shapes, gradient flow, shared weights, batch independence, clear errors."""
import pytest
import torch

from stpn.backbones.swin import build_swin
from stpn.backbones.vit import build_vit
from stpn.prompts.build import build_predictor
from stpn.prompts.stpn import STPN

SWIN = dict(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), window_size=2, img_size=64)


def tiny_stpn(kind="swin", predictor="relation", **kw):
    torch.manual_seed(0)
    backbone = build_swin(**SWIN) if kind == "swin" else build_vit(embed_dim=32, depth=2, num_heads=2, img_size=32)
    extra = {"num_heads": 4} if predictor in ("relation", "transformer") else {}
    if predictor == "mixer":
        extra["num_tokens"] = 4
        kw.setdefault("support_grid", (2, 2))
    p = build_predictor(predictor, backbone.support_dim, backbone.prompt_dims[0], 5, **extra)
    return STPN(backbone, p, **kw)


@pytest.mark.parametrize("predictor", ["relation", "topk", "transformer", "mixer"])
def test_forward_shapes(predictor):
    model = tiny_stpn(predictor=predictor).eval()
    feats = model(torch.randn(2, 3, 128, 96), torch.randn(2, 3, 3, 128, 96))  # 4x3 support tokens
    assert [f.shape for f in feats] == [(2, 16, 32, 24), (2, 32, 16, 12), (2, 64, 8, 6), (2, 128, 4, 3)]


def test_supports_change_features_and_plain_mode_equals_backbone():
    model = tiny_stpn().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain = model(x)
        torch.testing.assert_close(plain[0], model.backbone.forward_features(x)[0])
        a = model(x, torch.randn(1, 2, 3, 64, 64))
        b = model(x, torch.randn(1, 2, 3, 64, 64))
    assert (a[-1] - b[-1]).abs().max() > 1e-4 and (a[-1] - plain[-1]).abs().max() > 1e-4


@pytest.mark.parametrize("support_grad", [False, True])
def test_gradient_flow(support_grad):
    model = tiny_stpn(support_grad=support_grad).train()
    support = torch.randn(2, 2, 3, 64, 64, requires_grad=True)
    feats = model(torch.randn(2, 3, 64, 64), support)
    sum(f.square().mean() for f in feats).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.predictor.parameters())
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0  # prompted pass
    assert (support.grad is not None) == support_grad  # support pass only when asked


def test_support_pass_gets_no_gradient_by_default():
    model = tiny_stpn().train()
    frames = torch.randn(1, 2, 3, 64, 64)
    emb = model.embed_support(frames)
    assert not emb.requires_grad


def test_batch_independence_with_prompts():
    model = tiny_stpn().eval()
    x, s = torch.randn(3, 3, 64, 64), torch.randn(3, 2, 3, 64, 64)
    mask = torch.tensor([[True, True], [True, False], [False, True]])
    with torch.no_grad():
        together = model(x, s, mask)
        for i in range(3):
            single = model(x[i : i + 1], s[i : i + 1], mask[i : i + 1])
            for a, b in zip(together, single):
                assert (a[i] - b[0]).abs().max() <= 1e-5


def test_precomputed_prompts_equal_inline():
    model = tiny_stpn().eval()
    x, s = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        prompts = model.predict_prompts(model.embed_support(s))
        torch.testing.assert_close(model(x, prompts=prompts)[2], model(x, s)[2])


def test_deep_stpn():
    torch.manual_seed(0)
    backbone = build_swin(**SWIN)
    p = build_predictor("relation", backbone.support_dim, 16, 5, deep_dims=backbone.prompt_dims, num_heads=4)
    model = STPN(backbone, p).eval()
    assert len(model(torch.randn(1, 3, 64, 64), torch.randn(1, 2, 3, 64, 64))) == 4


def test_errors_name_the_mismatch():
    model = tiny_stpn()
    x = torch.randn(1, 3, 64, 64)
    with pytest.raises(ValueError, match=r"support frames are \(32, 32\)"):
        model(x, torch.randn(1, 2, 3, 32, 32))
    with pytest.raises(ValueError, match="batch size 2 != key frames batch size 1"):
        model(x, torch.randn(2, 2, 3, 64, 64))
    with pytest.raises(ValueError, match="mask shape"):
        model(x, torch.randn(1, 2, 3, 64, 64), torch.ones(1, 3, dtype=torch.bool))
    backbone = build_swin(**SWIN)
    with pytest.raises(ValueError, match="predictor prompt width 96 != backbone prompt width 16"):
        STPN(backbone, build_predictor("topk", backbone.support_dim, 96, 5))
    with pytest.raises(ValueError, match="support_dim"):
        STPN(backbone, build_predictor("topk", 768, 16, 5))

"""The two-frame MAE: TwinMAE = DropMAE with P = 0, loss on masked patches only, gradients."""
import pytest
import torch

from stpn.pretraining.model import build_pair_mae, masked_patch_loss, patchify

TINY = dict(variant="vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
            decoder_dim=16, decoder_depth=2, decoder_heads=2)


def _frames(seed=0, b=2):
    return torch.randn(b, 2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def _model(method, **kw):
    torch.manual_seed(0)
    return build_pair_mae(method, **{**TINY, **kw})


def _loss(model, frames, seed=1):
    torch.manual_seed(seed)
    return model(frames)["loss_mse"]


def test_twinmae_equals_dropmae_with_zero_ratio_and_differs_from_dropmae():
    twin, drop0, drop = _model("twinmae"), _model("dropmae", drop_ratio=0.0), _model("dropmae", drop_ratio=0.2)
    drop0.load_state_dict(twin.state_dict())
    drop.load_state_dict(twin.state_dict())
    frames = _frames()
    assert torch.equal(_loss(twin, frames), _loss(drop0, frames))
    assert not torch.allclose(_loss(twin, frames), _loss(drop, frames))
    drop.eval()  # ASAD is a training-time dropout
    twin.eval()
    assert torch.allclose(_loss(twin, frames), _loss(drop, frames))


def test_mask_is_75_percent_over_both_frames_jointly():
    model = _model("dropmae")
    torch.manual_seed(2)
    out = model.reconstruct(_frames(b=64))
    masked = out["masked"]
    assert (masked.sum(1) == 24).all()  # 32 tokens, 8 kept
    per_frame = masked[:, :16].sum(1)
    assert per_frame.min() < 12 < per_frame.max()  # one joint mask, not 75 % per frame


def test_loss_only_on_masked_patches():
    model = _model("dropmae")
    torch.manual_seed(3)
    out = model.reconstruct(_frames())
    pred, target, masked = out["pred"].detach(), out["target"], out["masked"]
    base = masked_patch_loss(pred, target, masked)
    assert masked_patch_loss(pred + 5 * (~masked)[..., None], target, masked) == pytest.approx(base.item())
    assert masked_patch_loss(pred + 5 * masked[..., None], target, masked) > base + 1
    torch.manual_seed(3)
    assert model(_frames())["loss_mse"].item() == pytest.approx(base.item(), rel=1e-6)


def test_patchify_orders_frames_then_rows():
    frames = torch.arange(2 * 3 * 16 * 16, dtype=torch.float).reshape(1, 2, 3, 16, 16)
    tokens = patchify(frames, 8)
    assert tokens.shape == (1, 8, 192)
    assert tokens[0, 1, 0] == frames[0, 0, 0, 0, 8] and tokens[0, 4, 0] == frames[0, 1, 0, 0, 0]


def test_gradients_reach_encoder_decoder_and_temporal_embeddings():
    model = _model("dropmae", drop_ratio=0.2)
    _loss(model, _frames()).backward()
    for name in ("encoder.blocks.0.attn.qkv.weight", "encoder.patch_embed.proj.weight", "temporal_embed",
                 "decoder.temporal_embed", "decoder.blocks.1.attn.qkv.weight", "decoder.mask_token"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert model.encoder.pos_embed.grad is None  # fixed sin-cos


def test_bad_input_and_method_are_errors():
    model = _model("twinmae")
    with pytest.raises(ValueError, match="frame pairs"):
        model(torch.zeros(1, 3, 3, 32, 32))
    with pytest.raises(ValueError, match="method"):
        build_pair_mae("videomae", **TINY)

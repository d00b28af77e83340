"""The segmenter's inference API (features / decode), the head's initialisation, bf16, the loss."""
import math

import pytest
import torch
from transformers.models.mask2former.modeling_mask2former import (
    Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention,
)

from stpn.prompts.streaming import StreamingExtractor
from stpn.vis.head import mask2former_config
from stpn.vis.loss import mean_mask_count
from tests.vis_tiny import tiny_model


def _targets(height, width, counts=(2, 0)):
    return [{"masks": torch.rand(n, height, width) > 0.5, "labels": torch.arange(n) % 3} for n in counts]


@pytest.mark.parametrize("predictor", [None, "relation"])
def test_features_and_decode_shapes(predictor):
    torch.manual_seed(0)
    model = tiny_model(predictor).eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        features = model.features(images)
        out = model.decode(features)
    assert [tuple(f.shape) for f in features] == [(2, 32, 16, 24), (2, 64, 8, 12), (2, 128, 4, 6), (2, 256, 2, 3)]
    assert tuple(out["class_logits"].shape) == (2, 10, 4)  # 3 classes + no-object
    assert tuple(out["mask_logits"].shape) == (2, 10, 16, 24)
    assert tuple(out["query_embeddings"].shape) == (2, 10, 64)
    assert model.num_classes == 3 and model.class_names == ["a", "b", "c"]
    assert (model.stpn is None) == (predictor is None)
    assert model.backbone is model.extractor.backbone


def test_plain_model_refuses_prompts_and_stpn_features_take_them():
    torch.manual_seed(0)
    plain, stpn = tiny_model().eval(), tiny_model("relation").eval()
    images, support = torch.randn(1, 3, 64, 64), torch.randn(1, 2, 3, 64, 64)
    with pytest.raises(ValueError, match="no STPN: prompts must be None"):
        plain.features(images, prompts=torch.zeros(1, 5, 32))
    with torch.no_grad():
        prompts = stpn.stpn.predict_prompts(stpn.stpn.embed_support(support))
        prompted = stpn.features(images, prompts)
        unprompted = stpn.features(images)
        direct = stpn.stpn(images, support)
    assert all(torch.equal(a, b) for a, b in zip(prompted, direct))
    assert not torch.allclose(prompted[0], unprompted[0])  # the prompts change the features


def test_streaming_extractor_features_decode_like_the_models_own():
    """``model.stpn`` runs in the streaming extractor; its maps are what ``decode`` takes."""
    torch.manual_seed(0)
    model = tiny_model("relation").eval()
    frames = [torch.randn(3, 64, 64) for _ in range(5)]
    with torch.no_grad():
        streamed = {t: [f[None] for f in maps]  # the extractor yields (C, h, w) maps per frame
                    for t, maps in StreamingExtractor(model.stpn, mode="per-video", num_support=3).run(frames)}
        support = torch.stack([frames[i] for i in (0, 2, 4)])[None]
        prompts = model.stpn.predict_prompts(model.stpn.embed_support(support))
        own = model.features(frames[1][None], prompts)
        assert torch.allclose(model.decode(streamed[1])["mask_logits"], model.decode(own)["mask_logits"], atol=1e-4)


def test_level_embed_and_deformable_offsets_are_initialised():
    torch.manual_seed(0)
    decoder = tiny_model().head.pixel_decoder
    level = decoder.level_embed.detach()
    assert torch.isfinite(level).all() and level.abs().sum() > 0
    assert 0.5 < float(level.std()) < 2.0  # normal(0, 1), not leftover memory
    attention = [m for m in decoder.modules()
                 if isinstance(m, Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention)]
    assert attention
    for module in attention:
        assert float(module.sampling_offsets.weight.detach().abs().max()) == 0.0
        grid = module.sampling_offsets.bias.detach().view(module.n_heads, module.n_levels, module.n_points, 2)
        assert torch.allclose(grid[0, 0, 0], torch.tensor([1.0, 0.0]))  # head 0 looks right, 1 step
        assert torch.allclose(grid[:, :, -1].abs().amax(-1), torch.full((module.n_heads, module.n_levels),
                                                                        float(module.n_points)))
        assert float(module.attention_weights.weight.detach().abs().max()) == 0.0


def test_pixel_decoder_runs_in_float32_under_bf16_autocast():
    torch.manual_seed(0)
    model = tiny_model().eval()
    seen = {}
    model.head.pixel_decoder.register_forward_hook(lambda m, i, o: seen.update(mask=o.mask_features.dtype))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.decode(model.features(torch.randn(1, 3, 64, 64)))
    assert seen["mask"] == torch.float32
    assert all(torch.isfinite(v.float()).all() for v in out.values())


def test_loss_terms_are_finite_with_an_empty_frame_and_reach_every_part():
    torch.manual_seed(0)
    model = tiny_model("relation").train()
    images, support = torch.randn(2, 3, 64, 64), torch.randn(2, 2, 3, 64, 64)
    losses = model(images, support, _targets(64, 64))
    assert sorted(losses) == ["loss_ce", "loss_dice", "loss_mask"]
    assert all(math.isfinite(float(v.detach())) and float(v.detach()) > 0 for v in losses.values())
    sum(losses.values()).backward()
    for name in ("extractor.backbone.patch_embed.proj.weight", "extractor.predictor.reduce.weight",
                 "output_norms.0.weight", "head.pixel_decoder.input_projections.0.0.weight",
                 "head.transformer_module.queries_features.weight", "head.class_predictor.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_every_decoder_stage_is_supervised():
    """9 layers + the learnable queries' prediction = transformers' decoder_layers=10."""
    config = mask2former_config(40)
    assert config.decoder_layers == 10 and config.encoder_layers == 6 and config.num_queries == 100
    torch.manual_seed(0)
    model = tiny_model()
    out = model._head(model.features(torch.randn(1, 3, 64, 64)))
    assert len(out["mask_logits"]) == 3  # 2 layers + the queries' own prediction
    raw = model.criterion.loss(out["mask_logits"][-1], out["class_logits"][-1], [torch.ones(1, 64, 64)],
                               [torch.tensor([1])], auxiliary_predictions=[
                                   {"masks_queries_logits": m, "class_queries_logits": c}
                                   for m, c in zip(out["mask_logits"][:-1], out["class_logits"][:-1])])
    assert len(raw) == 3 * 3


def test_mean_mask_count_without_a_process_group():
    assert float(mean_mask_count(7, torch.device("cpu"))) == 7.0
    assert float(mean_mask_count(0, torch.device("cpu"))) == 1.0  # clamped: an empty batch divides by 1


@pytest.mark.parametrize("predictor", [None, "relation"])
def test_every_trainable_parameter_gets_a_gradient(predictor):
    """What plain DDP needs; timm's final norm (support pass only, no gradient) is frozen."""
    torch.manual_seed(0)
    model = tiny_model(predictor).train()
    support = torch.randn(2, 2, 3, 64, 64) if predictor else None
    sum(model(torch.randn(2, 3, 64, 64), support, _targets(64, 64, (2, 1))).values()).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing
    assert not model.backbone.norm.weight.requires_grad

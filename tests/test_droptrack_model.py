import pytest
import torch

from stpn.droptrack.build import build_droptrack
from stpn.droptrack.center_head import CenterMaps, decode_boxes, hann_window
from stpn.pretraining.export import export_encoder
from stpn.pretraining.model import build_pair_mae

TINY = dict(variant="tiny", embed_dim=32, depth=2, num_heads=2, head_channels=16, template_size=32, search_size=64)


def test_shapes_and_box_range():
    torch.manual_seed(0)
    model = build_droptrack(**TINY).eval()
    out = model(torch.randn(2, 3, 32, 32), None, torch.randn(2, 3, 64, 64))
    assert out.boxes.shape == (2, 4) and out.peak_scores.shape == (2,)
    assert out.maps.score.shape == (2, 1, 8, 8) and out.maps.size.shape == (2, 2, 8, 8)
    assert out.score_logits is None
    centre = (out.boxes[:, :2] + out.boxes[:, 2:]) / 2
    assert ((centre >= 0) & (centre <= 1)).all()


def test_template_and_search_are_one_stream():
    """Changing the template changes the search output: joint attention, not two streams."""
    torch.manual_seed(0)
    model = build_droptrack(**TINY).eval()
    search = torch.randn(1, 3, 64, 64)
    a = model.search_map(search, model.encode_templates(torch.randn(1, 3, 32, 32)))
    b = model.search_map(search, model.encode_templates(torch.randn(1, 3, 32, 32)))
    assert a.shape == (1, 32, 8, 8) and not torch.allclose(a, b)


def test_decoding_a_hand_made_score_map():
    score = torch.full((1, 1, 4, 4), -10.0)
    score[0, 0, 2, 1] = 5.0  # row 2, column 1
    offset = torch.zeros(1, 2, 4, 4)
    offset[0, :, 2, 1] = torch.tensor([0.5, 0.25])
    size = torch.zeros(1, 2, 4, 4)
    size[0, :, 2, 1] = torch.tensor([0.2, 0.4])
    boxes, peak = decode_boxes(CenterMaps(score, offset, size))
    cx, cy = (1 + 0.5) / 4, (2 + 0.25) / 4
    assert torch.allclose(boxes[0], torch.tensor([cx - 0.1, cy - 0.2, cx + 0.1, cy + 0.2]))
    assert peak.item() == pytest.approx(torch.sigmoid(torch.tensor(5.0)).item())


def test_hann_window_moves_the_peak_towards_the_centre():
    score = torch.zeros(1, 1, 5, 5)
    score[0, 0, 0, 0] = 3.0  # border peak, zero under the window
    score[0, 0, 2, 2] = 2.0
    maps = CenterMaps(score, torch.zeros(1, 2, 5, 5), torch.full((1, 2, 5, 5), 0.1))
    plain, _ = decode_boxes(maps)
    windowed, _ = decode_boxes(maps, hann_window(5))
    assert plain[0, 0] < 0 and torch.allclose((windowed[0, :2] + windowed[0, 2:]) / 2, torch.tensor([0.4, 0.4]))


def test_online_path_equals_forward_without_window():
    torch.manual_seed(0)
    model = build_droptrack(**TINY).eval()
    template, search = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 64, 64)
    maps_a = model(template, None, search).maps
    maps_b = model.track(search, model.encode_templates(template)).maps
    assert torch.allclose(maps_a.score, maps_b.score, atol=1e-6)


def test_stpn_prompts_change_the_output():
    torch.manual_seed(0)
    model = build_droptrack(**TINY, stpn=True).eval()
    template, search = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 64, 64)
    support = torch.randn(1, 2, 3, 64, 64)
    prompts = model.predict_prompts(model.embed_support(support[0])[None])
    assert prompts.shape == (1, 9, 32)
    with_support = model(template, None, search, support=support).maps.score
    with_prompts = model(template, None, search, prompts=prompts).maps.score
    without = model.search_map(search, model.encode_templates(template))
    assert torch.allclose(with_support, with_prompts, atol=1e-6)
    assert not torch.allclose(model.head(without).score, with_prompts)
    with pytest.raises(ValueError, match="without STPN"):
        build_droptrack(**TINY)(template, None, search, prompts=prompts)


def test_wrong_crop_size_is_an_error():
    model = build_droptrack(**TINY)
    with pytest.raises(ValueError, match="search must be 64x64"):
        model(torch.randn(1, 3, 32, 32), None, torch.randn(1, 3, 48, 48))


def test_loading_an_exported_pretraining(tmp_path):
    vit = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    torch.manual_seed(0)
    mae = build_pair_mae("dropmae", "vit_tiny_patch16_224", decoder_dim=16, decoder_depth=1, decoder_heads=2, **vit)
    with torch.no_grad():
        mae.temporal_embed.copy_(torch.randn_like(mae.temporal_embed))
    export_encoder(mae, tmp_path, {"variant": "vit_tiny_patch16_224", **vit})
    model = build_droptrack(pretrained=tmp_path, template_size=16, search_size=32, head_channels=16)
    for key, value in mae.encoder.state_dict().items():
        assert torch.equal(model.vit.state_dict()[key], value), key
    assert torch.equal(model.template_embed, mae.temporal_embed[1])
    assert torch.equal(model.search_embed, mae.temporal_embed[0])
    # the search crop has the pre-training's grid: its position embedding is the sin-cos table itself
    assert torch.allclose(model.search_pos, mae.encoder.pos_embed[:, 1:], atol=1e-6)
    assert model.template_pos.shape == (1, 4, 32)
    with pytest.raises(FileNotFoundError, match="not an exported pre-training run"):
        build_droptrack(pretrained=tmp_path / "missing")

"""Exported encoder weights round-trip into build_vit; temporal embeddings come along."""
import pytest
import torch

from stpn.backbones.vit import build_vit
from stpn.pretraining.export import export_encoder, load_exported_encoder, load_temporal_embed, tracker_initialisation
from stpn.pretraining.model import build_pair_mae

VIT = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)


def test_round_trip_into_build_vit(tmp_path):
    torch.manual_seed(0)
    model = build_pair_mae("dropmae", "vit_tiny_patch16_224", decoder_dim=16, decoder_depth=1, decoder_heads=2, **VIT)
    with torch.no_grad():
        model.temporal_embed.add_(1.0)
        model.encoder.blocks[0].attn.qkv.weight.add_(0.5)
    paths = export_encoder(model, tmp_path, {"variant": "vit_tiny_patch16_224", **VIT})
    vit = build_vit("vit_tiny_patch16_224", weights=str(paths["encoder"]), **VIT)
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(vit.state_dict()[key], value), key
    images = torch.randn(2, 3, 32, 32)
    model.encoder.eval()
    vit.eval()
    assert torch.allclose(vit.embed(images), model.encoder.embed(images))
    assert torch.equal(load_temporal_embed(paths["temporal"]), model.temporal_embed.detach())
    rebuilt = load_exported_encoder(tmp_path)
    assert torch.equal(rebuilt.state_dict()["blocks.0.attn.qkv.weight"], vit.state_dict()["blocks.0.attn.qkv.weight"])
    assert not any(k.startswith("decoder") for k in vit.state_dict())
    init = tracker_initialisation(tmp_path)
    assert torch.equal(init["template_embed"], model.temporal_embed[1].detach())  # the later frame's
    assert torch.equal(init["search_embed"], model.temporal_embed[0].detach())
    assert set(init["encoder"]) == set(vit.state_dict())


def test_wrong_files_are_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="temporal"):
        load_temporal_embed(tmp_path / "temporal_embed.safetensors")
    with pytest.raises(FileNotFoundError, match="encoder.safetensors"):
        tracker_initialisation(tmp_path)
    with pytest.raises(FileNotFoundError, match="encoder.json"):
        load_exported_encoder(tmp_path)

"""The COCO Mask2Former loader on a tiny random checkpoint of transformers' layout: after loading,
the segmenter computes what transformers' own model computes."""
import re

import pytest
import torch
from safetensors.torch import save_file
from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig

from stpn.engine.checkpoint import CheckpointError
from stpn.vis.coco_weights import convert_coco_state, load_coco_mask2former
from stpn.vis.model import build_vis_model

SWIN = dict(embed_dim=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8))  # stage 3 has a shifted block
HEAD = dict(hidden_dim=64, num_queries=10, num_heads=4, dim_feedforward=128, decoder_layers=2, encoder_layers=1,
            encoder_feedforward_dim=128)
# transformers 5 → 4 names of the Swin backbone (the checkpoints on the hub are in the 4.x layout)
OLD_NAMES = [(r"\.swin\.", "."), (r"attention\.q_proj", "attention.self.query"),
             (r"attention\.k_proj", "attention.self.key"), (r"attention\.v_proj", "attention.self.value"),
             (r"attention\.relative_position_bias\.relative_position_bias_table",
              "attention.self.relative_position_bias_table"),
             (r"attention\.o_proj", "attention.output.dense"), (r"mlp\.fc1", "intermediate.dense"),
             (r"mlp\.fc2", "output.dense")]


def _reference(num_labels=3):
    torch.manual_seed(0)
    backbone = SwinConfig(embed_dim=32, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8], window_size=7,
                          out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(backbone_config=backbone, hidden_dim=64, feature_size=64, mask_feature_size=64,
                               num_queries=10, decoder_layers=3, encoder_layers=1, num_labels=num_labels,
                               dim_feedforward=128, encoder_feedforward_dim=128, num_attention_heads=4)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    state = {k: v + 0.1 * torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict(state)  # no parameter left at a constant: every mapping matters
    return model, state


def _ours(predictor=None, classes=("a", "b", "c")):
    torch.manual_seed(1)
    return build_vis_model(list(classes), predictor=predictor, swin_kwargs=SWIN, head_kwargs=HEAD).eval()


def test_loaded_segmenter_computes_what_transformers_computes(tmp_path):
    reference, state = _reference()
    path = tmp_path / "coco.safetensors"
    save_file(state, str(path))
    model = _ours("relation")
    kept = load_coco_mask2former(model, path)
    assert all(k.startswith(("extractor.predictor.", "criterion.")) for k in kept) and kept
    images = torch.randn(1, 3, 224, 224)  # every stage at least one window wide
    with torch.no_grad():
        maps = reference.model.pixel_level_module.encoder(images).feature_maps  # normed stage outputs
        expected = reference(pixel_values=images)
        features = model.features(images)
        for norm, ours, theirs in zip(model.output_norms, features, maps):
            assert torch.allclose(norm(ours.permute(0, 2, 3, 1)).permute(0, 3, 1, 2), theirs, atol=1e-5)
        out = model.decode(features)
    assert torch.allclose(out["class_logits"], expected.class_queries_logits, atol=1e-4)
    assert torch.allclose(out["mask_logits"], expected.masks_queries_logits, atol=1e-4)


def test_the_transformers_4_layout_loads_the_same_weights(tmp_path):
    _, state = _reference()
    old = {}
    for key, value in state.items():
        if key.startswith("model.pixel_level_module.encoder."):
            for pattern, replacement in OLD_NAMES:
                key = re.sub(pattern, replacement, key)
        old[key] = value
    assert "model.pixel_level_module.encoder.encoder.layers.0.blocks.0.attention.self.query.weight" in old
    assert convert_coco_state(old).keys() - {"extractor.backbone.norm.weight", "extractor.backbone.norm.bias"} \
        == convert_coco_state(state).keys() - {"extractor.backbone.norm.weight", "extractor.backbone.norm.bias"}
    torch.save(old, tmp_path / "coco.pth")
    a, b = _ours(), _ours()
    save_file(state, str(tmp_path / "coco.safetensors"))
    load_coco_mask2former(a, tmp_path / "coco.pth")
    load_coco_mask2former(b, tmp_path / "coco.safetensors")
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith("extractor.backbone.norm."))


def test_a_different_class_count_keeps_the_class_head_initialised(tmp_path):
    _, state = _reference(num_labels=80)  # COCO
    save_file(state, str(tmp_path / "coco.safetensors"))
    model = _ours(classes=[f"c{i}" for i in range(40)])  # YouTube-VIS 2019
    before = model.head.class_predictor.weight.detach().clone()
    kept = load_coco_mask2former(model, tmp_path / "coco.safetensors")
    assert {"head.class_predictor.weight", "head.class_predictor.bias"} <= set(kept)
    assert torch.equal(model.head.class_predictor.weight, before)
    assert torch.equal(model.head.pixel_decoder.level_embed, state["model.pixel_level_module.decoder.level_embed"])


def test_missing_and_mismatched_keys_name_the_file(tmp_path):
    _, state = _reference()
    partial = {k: v for k, v in state.items() if "transformer_module.decoder.layers.1." not in k}
    save_file(partial, str(tmp_path / "partial.safetensors"))
    with pytest.raises(CheckpointError, match=r"partial\.safetensors does not fit this segmenter \(\d+ missing: "
                                              r"head\.transformer_module\.decoder\.layers\.1\."):
        load_coco_mask2former(_ours(), tmp_path / "partial.safetensors")
    other = build_vis_model(["a", "b", "c"], swin_kwargs={**SWIN, "embed_dim": 48}, head_kwargs=HEAD)
    with pytest.raises(CheckpointError, match=r"coco\.safetensors does not fit .*wrongly shaped"):
        save_file(state, str(tmp_path / "coco.safetensors"))
        load_coco_mask2former(other, tmp_path / "coco.safetensors")
    q_only = {k: v for k, v in state.items() if "k_proj" not in k}
    save_file(q_only, str(tmp_path / "qonly.safetensors"))
    with pytest.raises(CheckpointError, match=r"qonly\.safetensors: not a Mask2Former checkpoint"):
        load_coco_mask2former(_ours(), tmp_path / "qonly.safetensors")
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        load_coco_mask2former(_ours(), tmp_path / "nowhere.safetensors")

"""Backbone pre-training on clean object crops: crops, learning, the cached weights file."""
import numpy as np
import torch

from stpn.backbones.swin import build_swin
from stpn.data import synthetic
from stpn.demo.pretrain import (PretrainSettings, accuracy, augment, cache_dir, object_crops, pretrain_backbone,
                                save_pretrained, TileClassifier, _to_input, mosaic, token_labels)

SWIN = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=4, img_size=64)


def test_crops_hold_clean_objects_only():
    dataset = synthetic.generate_dataset(3, 8, 64, seed=5)
    images, labels, videos = object_crops(dataset, 32, 1.2, 0.6, 0.0, np.random.default_rng(0))
    clean = [i for v in dataset.videos for a in v.annotations if not a.deteriorations for i in a.instances
             if not i.deteriorations and i.visible_fraction >= 0.6]
    assert images.shape == (len(clean), 32, 32, 3) and images.dtype == np.uint8
    assert sorted(labels.tolist()) == sorted(i.category_id for i in clean)
    assert set(videos.tolist()) <= {0, 1, 2}


def test_augment_keeps_the_pixels():
    images = np.random.default_rng(0).integers(0, 255, (16, 8, 8, 3), dtype=np.uint8)
    out = augment(images, np.random.default_rng(1))
    assert out.shape == images.shape
    assert sorted(out.reshape(16, -1).sum(1).tolist()) == sorted(images.reshape(16, -1).sum(1).tolist())


def test_pretraining_learns_and_the_weights_load(tmp_path):
    dataset = synthetic.generate_dataset(6, 4, 64, seed=6, severity=0.0)
    torch.manual_seed(0)
    backbone = build_swin(**SWIN)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    settings = PretrainSettings(videos=6, frames=4, grid=2, iters=30, batch_size=4, lr=3e-3, held_out=0.34)
    record = pretrain_backbone(backbone, dataset, settings, progress=False)
    assert np.mean(record["losses"][-5:]) < np.mean(record["losses"][:5])  # it learns
    assert 0.0 <= record["held_out_accuracy"] <= 1.0 and record["held_out_crops"] > 0
    assert any(not torch.equal(before[k], v) for k, v in backbone.state_dict().items())
    directory = cache_dir(tmp_path, settings, SWIN, {"seed": 6})
    assert directory != cache_dir(tmp_path, settings, SWIN, {"seed": 7})  # the data is part of the key
    weights = save_pretrained(directory, backbone, record)
    loaded = build_swin(weights=str(weights), **SWIN)
    for k, v in backbone.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert not list(directory.glob("*.tmp"))


def test_mosaic_lays_crops_row_by_row():
    crops = np.arange(9)[:, None, None, None] * np.ones((9, 2, 2, 3), np.uint8)
    out = mosaic(crops, 2)  # 9 crops: two whole mosaics of 4, the last crop left out
    assert out.shape == (2, 4, 4, 3)
    assert out[0, :, :, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    assert out[1, 3, 3, 0] == 7


def test_tiles_are_classified_one_token_each():
    model = TileClassifier(build_swin(**SWIN), 6).eval()
    assert model(torch.zeros(3, 3, 64, 64)).shape == (3, 2, 2, 6)  # stride 32: one token per 32-px crop
    assert model.crop_logits(torch.zeros(3, 3, 64, 64)).shape == (3 * 4, 6)
    crops = np.zeros((9, 32, 32, 3), np.uint8)
    with torch.no_grad():
        predicted = model.crop_logits(_to_input(mosaic(crops, 2))).argmax(1).numpy()  # all-black tiles
    labels = np.concatenate([predicted[:6], (predicted[6:] + 1) % 6, [0]])  # 9th crop: left out
    assert abs(accuracy(model, crops, labels, grid=2) - 0.75) < 1e-9


def test_every_token_of_a_crop_is_labelled_with_its_class():
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 7])  # two mosaics of 2 × 2 crops
    assert token_labels(labels, 2, 2).tolist() == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]
    four = token_labels(labels, 2, 4)  # stride 16: 2 × 2 tokens per 32-px crop
    assert four.shape == (2, 4, 4)
    assert four[0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


def test_a_three_stage_swin_averages_the_tokens_of_each_crop():
    model = TileClassifier(build_swin(**(SWIN | dict(depths=(1, 1, 1), num_heads=(1, 2, 4)))), 6).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        tokens, crops = model(images), model.crop_logits(images)
    assert tokens.shape == (2, 4, 4, 6)  # stride 16
    assert torch.allclose(crops[1], tokens[0, :2, 2:].mean((0, 1)), atol=1e-6)  # first mosaic, top right crop

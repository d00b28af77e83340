"""Every configs/vss_*.yaml preset loads, and the recorded-data presets carry the paper's recipe."""
from pathlib import Path

import pytest

from stpn.vss.run import load_vss_config
from stpn.vss.sources import RecordedVideos

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("vss_*.yaml"))
RECIPE_CROPS = {"cityscapes": 768, "camvid": 640}


def test_the_recorded_presets_exist():
    names = {p.stem for p in CONFIGS}
    assert {f"vss_{d}_{m}" for d in RECIPE_CROPS for m in ("pspnet18", "stt")} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_preset_loads(path):
    cfg = load_vss_config(path)
    assert cfg["train"].lr > 0 and cfg["data"].num_classes == cfg["eval_data"].num_classes
    data = cfg["data"]
    if isinstance(data, RecordedVideos):
        train = cfg["train"]
        assert (train.batch_size, train.max_iters, train.lr, train.weight_decay) == (8, 80000, 0.01, 0.0005)
        assert data.crop == RECIPE_CROPS[data.format] and data.scale == (0.5, 2.0) and data.flip
        assert cfg["eval_data"].split == "val" and cfg["eval_data"].context == 7
        temporal = cfg["model"].get("temporal", True)
        assert data.unlabelled_from == (0.5 if temporal else None)
        assert data.num_classes == {"cityscapes": 19, "camvid": 11}[data.format]

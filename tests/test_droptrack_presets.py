"""The DropMAE / DropTrack presets follow the published recipes (docs/design.md, docs/droptrack.md)."""
import inspect

import pytest

from stpn.droptrack.build import build_droptrack
from stpn.droptrack.candidate_elimination import KeepRatioRamp
from stpn.droptrack.config import load_droptrack_config
from stpn.droptrack.train import droptrack_pair_settings
from stpn.engine import TrainConfig
from stpn.engine.schedule import WarmupCosineSchedule, WarmupStepSchedule, build_schedule

# (template, search, search factor, lr, centre jitter, scale jitter)
RECIPES = {
    "droptrack_vitb_got10k": (128, 256, 4.0, 4e-4, 3.0, 0.25),
    "droptrack_vitb_stpn_got10k": (128, 256, 4.0, 4e-4, 3.0, 0.25),
    "droptrack384_vitb_got10k": (192, 384, 5.0, 2.5e-4, 4.5, 0.5),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_droptrack_presets_follow_ostracks_got10k_recipe(name):
    template, search, factor, lr, jitter, scale = RECIPES[name]
    cfg = load_droptrack_config(f"configs/{name}.yaml")
    model = cfg["model"]
    assert (model["template_size"], model["search_size"]) == (template, search)
    assert (model["ce_layers"], model["ce_keep_ratio"], model["ce_template"]) == ([3, 6, 9], 0.7, "centre")
    assert cfg["elimination"] == KeepRatioRamp(start_epoch=20, warm_epochs=50)  # CE_START_EPOCH, CE_WARM_EPOCH
    assert set(model) - {"pretrained", "drop_path_rate"} <= set(inspect.signature(build_droptrack).parameters)
    pairs = droptrack_pair_settings(cfg["pairs"])
    assert (pairs.search_factor, pairs.template_factor, pairs.centre_jitter, pairs.scale_jitter) == (factor, 2.0, jitter, scale)
    assert cfg["online"]["search_factor"] == factor
    train = TrainConfig.from_dict(cfg["train"])
    assert (train.lr, train.weight_decay, train.epochs, train.optimizer, train.clip_grad_norm) == (lr, 1e-4, 100, "adamw", 0.1)
    f = build_schedule(train, iters_per_epoch=10)
    assert isinstance(f, WarmupStepSchedule)
    assert f(799) == pytest.approx(1.0) and f(800) == pytest.approx(0.1)  # x0.1 at epoch 80 of 100
    assert train.lr_multipliers == {"vit": 0.1}


def test_dropmae_preset_warms_up_40_epochs_then_half_cosine():
    from stpn.pretraining.settings import read_pretrain_config
    from stpn.pretraining.train import train_config

    cfg = read_pretrain_config("configs/pretrain_dropmae_vitb.yaml")
    config = train_config(cfg["train"], cfg["recipe"], iters_per_epoch=10)
    assert (config.schedule, config.min_lr_factor, config.betas, config.weight_decay) == ("cosine", 0.0, (0.9, 0.95), 0.05)
    assert config.lr == pytest.approx(1.5e-4 * 64 / 256) and config.warmup_iters == 400
    f = build_schedule(config, iters_per_epoch=10)
    assert isinstance(f, WarmupCosineSchedule) and f.total_iters == 4000
    assert f(400) == pytest.approx(1.0) and f(2200) == pytest.approx(0.5) and f(4000) == pytest.approx(0.0)

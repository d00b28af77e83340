"""Parameter groups, LR schedule, config validation and recipes."""
import dataclasses

import pytest
import torch
from torch import nn

from stpn.engine.config import TrainConfig
from stpn.engine.optim import build_optimizer, build_param_groups, no_weight_decay_names
from stpn.engine.presets import recipe, vis_recipe, vod_recipe, vot_stage1_recipe, vot_stage2_recipe
from stpn.engine.schedule import build_schedule, build_scheduler


class ChannelNorm(nn.LayerNorm):
    """A LayerNorm subclass, like the detection neck's ChannelLayerNorm."""


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(torch.zeros(9, 2))  # timm-style
        self.qkv = nn.Linear(8, 24)


class Predictor(nn.Module):
    def __init__(self):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(3, 8))
        self.proj = nn.Linear(8, 8, bias=False)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 8))
        self.norm = nn.LayerNorm(8)
        self.chan_norm = ChannelNorm(8)
        self.attn = Attention()
        self.bn = nn.BatchNorm1d(8)
        self.gn = nn.GroupNorm(2, 8)
        self.layer_scale = nn.Parameter(torch.ones(8))
        self.predictor = Predictor()
        self.head = nn.Linear(8, 2)
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


NO_DECAY = {
    "pos_embed", "norm.weight", "norm.bias", "chan_norm.weight", "chan_norm.bias",
    "attn.relative_position_bias_table", "attn.qkv.bias", "bn.weight", "bn.bias",
    "gn.weight", "gn.bias", "head.bias",
}
DECAY = {"attn.qkv.weight", "layer_scale", "predictor.query", "predictor.proj.weight", "head.weight"}


def _groups_by_name(model, config):
    return {g["name"]: g for g in build_param_groups(model, config)}


def test_param_groups_split_norms_embeddings_bias_tables_and_biases():
    groups = _groups_by_name(Toy(), TrainConfig(lr=1e-3, weight_decay=0.05, epochs=1))
    assert set(groups) == {"decay", "no_decay"}
    assert set(groups["no_decay"]["param_names"]) == NO_DECAY
    assert set(groups["decay"]["param_names"]) == DECAY
    assert groups["no_decay"]["weight_decay"] == 0.0 and groups["decay"]["weight_decay"] == 0.05
    assert not any("frozen" in n for g in groups.values() for n in g["param_names"])


def test_prompt_queries_flag_moves_queries_only():
    cfg = TrainConfig(lr=1e-3, weight_decay=0.05, epochs=1, no_decay_prompt_queries=True)
    groups = _groups_by_name(Toy(), cfg)
    assert set(groups["no_decay"]["param_names"]) == NO_DECAY | {"predictor.query"}
    assert "predictor.proj.weight" in groups["decay"]["param_names"]


def test_lr_multipliers_match_whole_components():
    cfg = TrainConfig(lr=1e-3, weight_decay=0.05, epochs=1, lr_multipliers={"attn": 0.1})
    groups = _groups_by_name(Toy(), cfg)
    assert groups["decay_x0.1"]["param_names"] == ["attn.qkv.weight"]
    assert set(groups["no_decay_x0.1"]["param_names"]) == {"attn.relative_position_bias_table", "attn.qkv.bias"}
    assert groups["decay_x0.1"]["lr"] == pytest.approx(1e-4) and groups["decay"]["lr"] == pytest.approx(1e-3)
    opt = build_optimizer(Toy(), cfg)
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([1e-4, 1e-4, 1e-3, 1e-3])
    # a key matches whole dotted components only
    cfg = TrainConfig(lr=1e-3, epochs=1, lr_multipliers={"att": 0.1})
    assert set(_groups_by_name(Toy(), cfg)) == {"decay", "no_decay"}


def test_timm_swin_groups():
    timm = pytest.importorskip("timm")
    model = timm.create_model(
        "swin_tiny_patch4_window7_224", pretrained=False, embed_dim=8, depths=(1, 1), num_heads=(1, 1),
        img_size=32, window_size=4, num_classes=0,
    )
    skip = no_weight_decay_names(model)
    for name, p in model.named_parameters():
        parts = name.split(".")
        expect = (
            any(part.startswith("norm") for part in parts[:-1])
            or parts[-1] == "bias"
            or parts[-1] == "relative_position_bias_table"
        )
        assert (name in skip) == expect, name


def test_warmup_then_step_values():
    cfg = TrainConfig(lr=1.0, warmup_iters=10, warmup_factor=0.1, milestones=(2, 3), epochs=4)
    f = build_schedule(cfg, iters_per_epoch=5)  # milestones at iterations 10 and 15
    assert f(0) == pytest.approx(0.1)
    assert f(5) == pytest.approx(0.1 + 0.9 * 5 / 10)
    assert f(9) == pytest.approx(0.1 + 0.9 * 9 / 10)
    assert f(10) == pytest.approx(0.1) and f(14) == pytest.approx(0.1)
    assert f(15) == pytest.approx(0.01) and f(19) == pytest.approx(0.01)


def test_warmup_overlapping_a_milestone_multiplies():
    cfg = TrainConfig(lr=1.0, warmup_iters=10, warmup_factor=0.2, milestones=(4,), milestone_unit="iter", max_iters=20)
    f = build_schedule(cfg, iters_per_epoch=100)
    assert f(3) == pytest.approx(0.2 + 0.8 * 0.3)
    assert f(4) == pytest.approx(0.1 * (0.2 + 0.8 * 0.4))


def test_scheduler_drives_optimizer_lr_per_iteration():
    cfg = TrainConfig(lr=0.5, warmup_iters=4, warmup_factor=0.25, milestones=(3,), gamma=0.5, epochs=4)
    model = nn.Linear(2, 1)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, iters_per_epoch=2)  # milestone at iteration 6
    expected = {0: 0.125, 1: 0.5 * (0.25 + 0.75 / 4), 3: 0.5 * (0.25 + 0.75 * 3 / 4), 4: 0.5, 5: 0.5, 6: 0.25, 7: 0.25}
    seen = {}
    for it in range(8):
        seen[it] = opt.param_groups[0]["lr"]
        opt.step()
        sched.step()
    for it, lr in expected.items():
        assert seen[it] == pytest.approx(lr), it


def test_vod_recipe_drops_at_epoch_six():
    cfg = vod_recipe()
    f = build_schedule(cfg, iters_per_epoch=1000)
    lr = lambda i: cfg.lr * f(i)  # noqa: E731
    assert lr(0) == pytest.approx(2.5e-5 * cfg.warmup_factor)
    assert lr(500) == pytest.approx(2.5e-5) and lr(5999) == pytest.approx(2.5e-5)
    assert lr(6000) == pytest.approx(2.5e-6)
    assert cfg.total_iters(1000) == 9000


def test_recipes_follow_supplementary_table():
    rows = {  # (batch, lr, milestone, unit, length, weight decay) from supplementary Table 1
        "vod": (vod_recipe(), 8, 2.5e-5, 6, "epoch", 9, 0.05),
        "vis": (vis_recipe(), 64, 1e-4, 4000, "iter", 6000, 0.05),
        "vot_stage1": (vot_stage1_recipe(), 32, 1e-3, 400, "epoch", 500, 1e-4),
        "vot_stage2": (vot_stage2_recipe(), 32, 1e-4, 30, "epoch", 40, 1e-4),
    }
    for name, (cfg, batch, lr, milestone, unit, length, wd) in rows.items():
        assert recipe(name) == cfg
        assert (cfg.batch_size, cfg.lr, cfg.milestones, cfg.milestone_unit, cfg.weight_decay, cfg.gamma) == (
            batch, lr, (milestone,), unit, wd, 0.1
        ), name
        assert (cfg.epochs if unit == "epoch" else cfg.max_iters) == length, name
    with pytest.raises(ValueError, match="unknown recipe"):
        recipe("vss")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"lr": 1e-3}, "exactly one of epochs / max_iters"),
        ({"lr": 1e-3, "epochs": 1, "max_iters": 5}, "exactly one"),
        ({"lr": 1e-3, "epochs": 1, "amp": "fp16"}, "amp"),
        ({"lr": 1e-3, "epochs": 1, "milestones": (5, 2)}, "increasing"),
        ({"lr": 1e-3, "epochs": 1, "milestone_unit": "epochs"}, "milestone_unit"),
        ({"lr": 0.0, "epochs": 1}, "lr"),
        ({"lr": 1e-3, "epochs": 1, "warmup_factor": 0.0}, "warmup_factor"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_config_dict_round_trip():
    cfg = dataclasses.replace(vis_recipe(), amp="bf16", seed=3)
    data = cfg.to_dict()
    assert all(not isinstance(v, tuple) for v in data.values())
    assert TrainConfig.from_dict(data) == cfg
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({**data, "learning_rate": 1.0})


def test_no_trainable_parameters_is_an_error():
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_param_groups(model, TrainConfig(lr=1e-3, epochs=1))

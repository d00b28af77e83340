"""LR schedules (step / cosine / poly), the SGD optimiser, and exact resume under each."""
import math
import pickle

import pytest
import torch
from torch import nn

from stpn.engine.config import TrainConfig
from stpn.engine.data import make_train_loader
from stpn.engine.loop import fit
from stpn.engine.optim import build_optimizer
from stpn.engine.schedule import (
    WarmupCosineSchedule,
    WarmupPolySchedule,
    WarmupStepSchedule,
    build_schedule,
    build_scheduler,
)
from tests.engine_tiny import NoisyRegression, TinyMLP


def test_default_schedule_is_the_unchanged_step_decay():
    cfg = TrainConfig(lr=1.0, warmup_iters=10, warmup_factor=0.1, milestones=(2, 3), epochs=4)
    assert cfg.schedule == "step" and cfg.optimizer == "adamw"
    f = build_schedule(cfg, iters_per_epoch=5)
    assert isinstance(f, WarmupStepSchedule)
    expected = {0: 0.1, 5: 0.1 + 0.9 * 0.5, 9: 0.1 + 0.9 * 0.9, 10: 0.1, 14: 0.1, 15: 0.01, 19: 0.01}
    assert {i: f(i) for i in expected} == pytest.approx(expected)


def test_cosine_warms_up_then_follows_a_half_cosine_to_the_floor():
    cfg = TrainConfig(lr=1.0, schedule="cosine", warmup_iters=10, warmup_factor=0.1, max_iters=110,
                      milestones=(1,), min_lr_factor=0.2)
    f = build_schedule(cfg, iters_per_epoch=7)
    assert isinstance(f, WarmupCosineSchedule) and f.total_iters == 110
    assert f(0) == pytest.approx(0.1) and f(5) == pytest.approx(0.55)
    assert f(10) == pytest.approx(1.0)  # milestones are ignored
    assert f(60) == pytest.approx(0.2 + 0.8 * 0.5)  # half-way through the decay
    assert f(35) == pytest.approx(0.2 + 0.8 * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert f(110) == pytest.approx(0.2) and f(500) == pytest.approx(0.2)
    values = [f(i) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_cosine_default_floor_is_zero_and_epochs_count():
    cfg = TrainConfig(lr=1.0, schedule="cosine", epochs=4, warmup_iters=0)
    f = build_schedule(cfg, iters_per_epoch=25)  # 100 iterations
    assert f(0) == pytest.approx(1.0) and f(50) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)


def test_poly_is_multiplied_by_the_warm_up():
    cfg = TrainConfig(lr=1.0, schedule="poly", warmup_iters=4, warmup_factor=0.5, max_iters=100)
    f = build_schedule(cfg, iters_per_epoch=3)
    assert isinstance(f, WarmupPolySchedule) and f.power == 0.9
    assert f(0) == pytest.approx(0.5)
    assert f(2) == pytest.approx(0.75 * 0.98**0.9)
    assert f(50) == pytest.approx(0.5**0.9)
    assert f(90) == pytest.approx(0.1**0.9) and f(100) == 0.0
    cfg = TrainConfig(lr=1.0, schedule="poly", poly_power=2.0, max_iters=10)
    assert build_schedule(cfg, 1)(5) == pytest.approx(0.25)


def test_schedules_pickle_and_drive_the_optimizer():
    cfg = TrainConfig(lr=0.5, schedule="cosine", warmup_iters=2, warmup_factor=0.5, max_iters=6)
    f = build_schedule(cfg, 3)
    assert pickle.loads(pickle.dumps(f)) == f
    opt = build_optimizer(nn.Linear(2, 1), cfg)
    sched = build_scheduler(opt, cfg, iters_per_epoch=3)
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.5 * f(i) for i in range(6)])
    assert seen[2] == pytest.approx(0.5) and seen[4] == pytest.approx(0.25)


def test_sgd_uses_momentum_and_the_same_groups():
    cfg = TrainConfig(lr=0.1, optimizer="sgd", momentum=0.8, weight_decay=0.01, epochs=1,
                      lr_multipliers={"0": 0.5})
    model = nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3), nn.Linear(3, 1))
    opt = build_optimizer(model, cfg)
    assert type(opt) is torch.optim.SGD
    by_name = {g["name"]: g for g in opt.param_groups}
    assert set(by_name) == {"decay", "no_decay", "decay_x0.5", "no_decay_x0.5"}
    assert all(g["momentum"] == 0.8 and g["nesterov"] is False for g in opt.param_groups)
    assert by_name["decay_x0.5"]["lr"] == pytest.approx(0.05) and by_name["no_decay"]["weight_decay"] == 0.0
    assert by_name["decay"]["weight_decay"] == 0.01
    assert type(build_optimizer(model, TrainConfig(lr=0.1, epochs=1))) is torch.optim.AdamW


@pytest.mark.parametrize("field, value", [("schedule", "linear"), ("optimizer", "adam"), ("min_lr_factor", 2.0),
                                          ("poly_power", 0.0), ("momentum", 1.0)])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(lr=1e-3, epochs=1, **{field: value})


@pytest.mark.parametrize("extra", [{"schedule": "cosine", "min_lr_factor": 0.1}, {"schedule": "poly", "optimizer": "sgd"}])
def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path, extra):
    cfg = TrainConfig(lr=1e-2, weight_decay=0.05, warmup_iters=3, epochs=3, seed=7, progress=False, **extra)

    def run(out_dir, **kwargs):
        torch.manual_seed(0)
        loader = make_train_loader(NoisyRegression(12), batch_size=3, seed=7)
        return fit(TinyMLP(), loader, cfg, out_dir, **kwargs)

    full = run(tmp_path / "full")
    run(tmp_path / "split", stop_after=5)
    resumed = run(tmp_path / "split", resume="auto")
    assert resumed.start_iteration == 5 and resumed.losses == full.losses[5:]
    assert [r["lr"] for r in resumed.train] == [r["lr"] for r in full.train[5:]]
    f = build_schedule(cfg, 4)
    assert [r["lr"] for r in full.train] == pytest.approx([1e-2 * f(i) for i in range(12)])


def test_a_checkpoint_from_before_the_schedule_fields_resumes_without_a_difference():
    """A saved config that predates a field counts as that field's default, not as a change."""
    from stpn.engine.training_state import _config_differences

    config = TrainConfig(lr=1e-3, max_iters=5)
    old = {k: v for k, v in config.to_dict().items()
           if k not in ("schedule", "optimizer", "momentum", "poly_power", "min_lr_factor")}
    assert _config_differences(old, config) == []
    assert _config_differences(old, TrainConfig(lr=1e-3, max_iters=5, schedule="cosine")) == ["schedule"]

"""fit(): exact resume after a crash, NaN stop, checkpoints, export, logging, AMP, clipping."""
import json
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

import stpn.engine.scalars as scalars
from stpn.engine.checkpoint import export_safetensors, load_checkpoint, load_safetensors, save_checkpoint
from stpn.engine.config import TrainConfig
from stpn.engine.data import make_train_loader
from stpn.engine.loop import fit
from stpn.engine.schedule import build_schedule
from stpn.engine.step import NonFiniteLossError, train_step
from tests.engine_tiny import NoisyRegression, TinyMLP

IPE = 4  # 12 samples, batch 3


def _config(**overrides):
    base = dict(
        lr=1e-2, weight_decay=0.05, warmup_iters=3, warmup_factor=0.1, milestones=(2,), epochs=3,
        clip_grad_norm=1.0, seed=7, log_every=2, progress=False,
    )
    return TrainConfig(**{**base, **overrides})


def _run(out_dir, model_seed=0, resume=None, stop_after=None, fail_at=None, fail_with="crash", workers=0, **config):
    torch.manual_seed(model_seed)
    model = TinyMLP(fail_at=fail_at, fail_with=fail_with)
    loader = make_train_loader(NoisyRegression(12), batch_size=3, seed=7, num_workers=workers)
    history = fit(model, loader, _config(**config), out_dir, resume=resume, stop_after=stop_after)
    return model, history


def _scramble_global_rng():
    torch.manual_seed(999)
    random.seed(999)
    np.random.seed(999)


def _scalars(out_dir):
    return [json.loads(line) for line in (Path(out_dir) / "scalars.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_crash_repeats_the_uninterrupted_run_exactly(tmp_path, workers):
    full_model, full = _run(tmp_path / "full", workers=workers)
    assert len(full.losses) == 3 * IPE and full.end_iteration == 12

    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(tmp_path / "split", checkpoint_every=5, fail_at=7, workers=workers)  # dies in epoch 1, batch 3
    assert load_checkpoint(tmp_path / "split")["iteration"] == 5
    _scramble_global_rng()
    resumed_model, resumed = _run(tmp_path / "split", model_seed=123, resume=tmp_path / "split", workers=workers)

    assert resumed.start_iteration == 5
    assert resumed.losses == full.losses[5:]  # exact float equality
    assert [r["lr"] for r in resumed.train] == [r["lr"] for r in full.train[5:]]
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    assert _scalars(tmp_path / "split") == _scalars(tmp_path / "full")  # crash stretch logged once


def test_stop_after_and_resume_at_epoch_boundary(tmp_path):
    _, full = _run(tmp_path / "full")
    _, first = _run(tmp_path / "split", stop_after=IPE, resume="auto")  # nothing to resume yet
    assert first.stopped_early and first.losses == full.losses[:IPE]
    assert not (tmp_path / "split" / "model.safetensors").exists()
    _scramble_global_rng()
    _, second = _run(tmp_path / "split", resume="auto")
    assert second.start_iteration == IPE
    assert second.losses == full.losses[IPE:] and not second.stopped_early
    assert (tmp_path / "split" / "model.safetensors").is_file()


def test_plain_loader_resumes_by_discarding_batches(tmp_path):
    def run(out_dir, **kwargs):
        torch.manual_seed(0)
        loader = DataLoader(NoisyRegression(12, augment=False), batch_size=3)  # no skip_batches
        return fit(TinyMLP(), loader, _config(), out_dir, **kwargs)

    full = run(tmp_path / "full")
    run(tmp_path / "split", stop_after=6)
    _scramble_global_rng()
    with pytest.warns(UserWarning, match="discarding 2 batches"):
        resumed = run(tmp_path / "split", resume="auto")
    assert resumed.losses == full.losses[6:]


def test_history_lr_follows_schedule(tmp_path):
    _, hist = _run(tmp_path)
    schedule = build_schedule(_config(), IPE)
    assert [r["lr"] for r in hist.train] == pytest.approx([1e-2 * schedule(i) for i in range(12)])
    assert hist.train[0]["lr"] == pytest.approx(1e-3) and hist.train[-1]["lr"] == pytest.approx(1e-3)


def test_checkpoint_is_plain_and_loads_weights_only(tmp_path):
    _run(tmp_path)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["iteration"] == 12 and ckpt["epoch"] == 3 and ckpt["iters_per_epoch"] == IPE
    assert ckpt["config"] == _config().to_dict()
    (rng,) = ckpt["rng"]
    assert isinstance(rng["numpy"][1], list) and isinstance(rng["python"][1], list)
    assert isinstance(rng["torch"], torch.Tensor)
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_checkpoint_write_is_atomic(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"iteration": 1})
    with pytest.raises(Exception):
        save_checkpoint(path, {"iteration": 2, "bad": lambda: 0})  # fails while pickling
    assert torch.load(path, weights_only=True) == {"iteration": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError) as info:
        _run(tmp_path, checkpoint_every=5, fail_at=5, fail_with="nan")
    message = str(info.value)
    assert "iteration 5 (epoch 1)" in message
    assert "loss_l1=nan" in message and "loss_mse=" in message
    assert str(tmp_path / "checkpoint.pt") in message
    assert info.value.iteration == 5 and set(info.value.values) == {"loss", "loss_l1", "loss_mse"}
    ckpt = load_checkpoint(tmp_path)
    assert ckpt["iteration"] == 5
    assert all(torch.isfinite(t).all() for t in ckpt["model"].values())
    assert not (tmp_path / "model.safetensors").exists()


def test_nan_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(NonFiniteLossError, match="No checkpoint was written"):
        _run(tmp_path, fail_at=0, fail_with="nan")


def test_safetensors_export_round_trip_with_tied_weights(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].weight = model[0].weight
    path = export_safetensors(model, tmp_path / "m.safetensors", metadata={"iteration": 3})
    other = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    other[1].weight = other[0].weight
    load_safetensors(other, path)
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        assert torch.equal(a, b)


def test_scalars_are_logged_every_log_every(tmp_path, monkeypatch):
    monkeypatch.setattr(scalars, "_warned_missing_tensorboard", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, hist = _run(tmp_path, log_every=5)
    records = _scalars(tmp_path)
    assert [r["step"] for r in records] == [5, 10]
    assert records[0]["train/loss"] == pytest.approx(np.mean(hist.losses[:5]))
    assert records[1]["train/lr"] == pytest.approx(np.mean([r["lr"] for r in hist.train[5:10]]))
    assert {"train/loss_mse", "train/loss_l1", "train/grad_norm"} <= set(records[0])
    tb_warnings = [w for w in caught if "tensorboard is not installed" in str(w.message)]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert len(tb_warnings) == 1
    else:
        assert not tb_warnings and list(tmp_path.glob("events.out.tfevents.*"))


def test_eval_fn_runs_per_epoch_and_at_end_in_eval_mode(tmp_path):
    seen = []

    def eval_fn(module):
        seen.append((module.training, torch.is_grad_enabled()))
        return {"score": float(len(seen))}

    torch.manual_seed(0)
    loader = make_train_loader(NoisyRegression(12), batch_size=3, seed=7)
    hist = fit(TinyMLP(), loader, _config(), tmp_path, eval_fn=eval_fn)
    assert [(e["epoch"], e["iteration"]) for e in hist.eval] == [(1, 4), (2, 8), (3, 12)]
    assert seen == [(False, False)] * 3
    assert [r["eval/score"] for r in _scalars(tmp_path) if "eval/score" in r] == [1.0, 2.0, 3.0]


def test_bf16_autocast_and_gradient_clipping():
    torch.manual_seed(0)
    model = TinyMLP(dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    x, y = torch.randn(8, 4), 100 * torch.randn(8)
    record = train_step(model, (x, y), opt, None, iteration=0, clip_grad_norm=1e-3, amp="bf16")
    assert model.last_dtype == torch.bfloat16
    assert record["grad_norm"] > 1e-3
    clipped = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert clipped == pytest.approx(1e-3, rel=1e-4)
    train_step(model, (x, y), opt, None, iteration=1)
    assert model.last_dtype == torch.float32


def test_model_must_return_scalar_loss_dict():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(2))

        def forward(self, x):
            return {"loss": self.w * x}

    opt = torch.optim.SGD(Bad().parameters(), lr=0.1)
    with pytest.raises(ValueError, match="loss 'loss' must be a scalar tensor"):
        train_step(Bad(), torch.ones(2), opt, None, iteration=0)


def test_resume_rejects_a_different_loader_length(tmp_path):
    _run(tmp_path, epochs=1)
    torch.manual_seed(0)
    loader = make_train_loader(NoisyRegression(12), batch_size=2, seed=7)
    with pytest.raises(ValueError, match="iterations per epoch"):
        fit(TinyMLP(), loader, _config(), tmp_path / "other", resume=tmp_path)

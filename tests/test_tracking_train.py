from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from stpn.cli import main
from stpn.data.formats.got10k import write_got10k
from stpn.data.types import VideoDataset
from stpn.engine import TrainConfig, vot_stage1_recipe, vot_stage2_recipe
from stpn.tracking.build import build_mixformer
from stpn.tracking.checkpoint import load_tracker
from stpn.tracking.objective import TrackerObjective
from stpn.tracking.pairs import PairSettings, TrackingPairs, collate_tracking
from stpn.tracking.sequences import sequences_from_dataset
from stpn.tracking.train import train_stage
from tests.test_tracking_pairs import square_video

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
KWARGS = dict(variant="tiny", stpn=True, template_size=32, search_size=64)
SETTINGS = PairSettings(num_support=2, support_stride=2, brightness_jitter=0.0)


def sequences():
    return sequences_from_dataset(VideoDataset(["square"], [square_video("a"), square_video("b", 10)]))


def tracker(**overrides):
    torch.manual_seed(0)
    return build_mixformer(**{**KWARGS, **overrides})


def fixed_batch(negative_prob=0.0, n=4):
    pairs = TrackingPairs(sequences(), replace(SETTINGS, template_size=32, search_size=64, negative_prob=negative_prob))
    return collate_tracking([pairs.sample(i, salt=1) for i in range(n)])


def config(**overrides):
    base = dict(lr=1e-3, weight_decay=1e-4, max_iters=3, batch_size=2, progress=False, log_every=1,
                checkpoint_each_epoch=False)
    return TrainConfig(**{**base, **overrides})


def test_stage1_steps_reduce_the_loss_on_a_fixed_batch():
    model = tracker()
    objective = TrackerObjective(model, "box").train()
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("score_head."))
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("predictor."))
    frozen_norms = [m for m in model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert frozen_norms and not any(m.weight.requires_grad for m in frozen_norms)  # the model's own choice
    optimizer = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=2e-3)
    batch = fixed_batch()
    losses = []
    for _ in range(20):
        loss = sum(objective(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.75 * losses[0]


def test_objective_state_dict_is_the_trackers():
    model = tracker()
    objective = TrackerObjective(model, "box")
    assert objective.state_dict().keys() == model.state_dict().keys()
    assert [n for n, _ in objective.named_parameters()] == [n for n, _ in model.named_parameters()]


def test_stage2_changes_only_the_score_head(tmp_path):
    model = tracker()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = train_stage(model, KWARGS, sequences(), replace(SETTINGS, negative_prob=0.5),
                          config(lr=1e-2), tmp_path / "stage2", stage="score")
    assert set(history.train[0]) >= {"loss_score"}
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("score_head.") for k in changed)  # buffers (BatchNorm) too


def test_tracker_json_round_trips_through_load_tracker(tmp_path):
    model = tracker()
    train_stage(model, KWARGS, sequences(), SETTINGS, config(max_iters=2), tmp_path / "run",
                online={"update_interval": 5})
    loaded, cfg = load_tracker(tmp_path / "run")
    assert cfg.model == KWARGS
    assert cfg.online == {"template_factor": 2.0, "search_factor": 5.0, "num_support": 2, "support_stride": 2,
                          "update_interval": 5}
    for key, value in model.state_dict().items():
        assert torch.equal(value.cpu(), loaded.state_dict()[key])
    loaded_ckpt, _ = load_tracker(tmp_path / "run" / "checkpoint.pt")
    assert torch.equal(loaded_ckpt.state_dict()["box_head.top_left.4.weight"], loaded.state_dict()["box_head.top_left.4.weight"])


def test_resume_continues_exactly_through_the_engine(tmp_path):
    full = tracker(stpn=False)
    train_stage(full, KWARGS, sequences(), SETTINGS, config(max_iters=4), tmp_path / "full")
    part = tracker(stpn=False)
    kwargs = {**KWARGS, "stpn": False}
    history = train_stage(part, kwargs, sequences(), SETTINGS, config(max_iters=4), tmp_path / "part", stop_after=2)
    assert history.stopped_early and history.end_iteration == 2
    resumed = tracker(stpn=False)
    history = train_stage(resumed, kwargs, sequences(), SETTINGS, config(max_iters=4), tmp_path / "part", resume="auto")
    assert history.start_iteration == 2 and history.end_iteration == 4
    for key, value in full.state_dict().items():
        assert torch.allclose(value, resumed.state_dict()[key], atol=1e-6), key


def test_an_stpn_tracker_needs_support_frames(tmp_path):
    with pytest.raises(ValueError, match="num_support"):
        train_stage(tracker(), KWARGS, sequences(), PairSettings(), config(), tmp_path)


def test_configs_follow_table_1():
    for name in ("baseline", "stpn"):
        cfg = yaml.safe_load((CONFIGS / f"got10k_mixformer_cvt21_{name}.yaml").read_text())
        assert cfg["model"]["stpn"] == (name == "stpn") and cfg["model"]["variant"] == "cvt-21"
        for stage, recipe in (("stage1", vot_stage1_recipe()), ("stage2", vot_stage2_recipe())):
            train = TrainConfig.from_dict(cfg[stage])
            for field in ("lr", "weight_decay", "milestones", "epochs", "batch_size", "gamma", "clip_grad_norm",
                          "lr_multipliers"):
                assert getattr(train, field) == getattr(recipe, field), (name, stage, field)
        PairSettings.from_dict(cfg["pairs"])


def test_train_track_cli_end_to_end(tmp_path, capsys):
    root = tmp_path / "got10k"
    write_got10k([square_video("a"), square_video("b", 10)], ["square"], root, "train")
    cfg = yaml.safe_load((CONFIGS / "got10k_mixformer_cvt21_stpn.yaml").read_text())
    cfg["model"] = dict(KWARGS)
    cfg["pretrained"] = None
    cfg["data"] = {"root": "nowhere", "split": "train", "samples_per_epoch": 4, "num_workers": 0}
    cfg["pairs"]["num_support"] = 2
    cfg["loss"] = {"giou_weight": 0.0, "corner_weight": 1.0}
    for stage in ("stage1", "stage2"):
        cfg[stage].update(batch_size=2, progress=False, log_every=1)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    assert main(["train-track", "--config", str(path), "--data", str(root), "--out", str(out), "--max-iters", "2"]) == 0
    assert "tracker ready" in capsys.readouterr().out
    model, tracker_cfg = load_tracker(out / "stage2")
    assert model.has_stpn and tracker_cfg.online["update_interval"] == 10
    # resuming a finished run retrains nothing
    assert main(["train-track", "--config", str(path), "--data", str(root), "--out", str(out), "--max-iters", "2",
                 "--resume"]) == 0
    assert main(["train-track", "--config", str(tmp_path / "missing.yaml")]) == 2
    cfg["loss"] = {"corner": 1.0}
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train-track", "--config", str(path), "--data", str(root), "--out", str(out)]) == 2
    assert "unknown `loss` keys ['corner']" in capsys.readouterr().err

"""Training the segmenter: the loss falls on the benchmark, ``train-vis`` writes a run directory
that ``load_vis_run`` reads back, configs are checked key by key."""
import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from stpn.data.synthetic import generate_dataset
from stpn.engine import TrainConfig, vis_recipe
from stpn.vis.checkpoint import load_vis_run
from stpn.vis.config import SegmenterConfig
from stpn.vis.data import collate_segmentation, segmentation_samples
from stpn.vis.sections import VisDataConfig, read_vis_config
from stpn.vis.train import train_segmenter
from stpn.vis.train_cli import add_train_vis_command, run_train_vis_command
from tests.vis_tiny import HEAD, SWIN, tiny_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "configs" / "vis_synthetic_tiny.yaml"


def _dataset():
    return generate_dataset(2, num_frames=6, size=64, seed=0)


def test_samples_carry_masks_labels_and_support_only_with_stpn():
    dataset = _dataset()
    with_support = segmentation_samples(dataset, True, [64], 64, max_offset=2)
    without = segmentation_samples(dataset, False, [64], 64)
    images, support, targets = collate_segmentation([with_support[i] for i in range(3)])
    assert tuple(images.shape) == (3, 3, 64, 64) and tuple(support.shape) == (3, 2, 3, 64, 64)
    assert all(t["masks"].shape[1:] == (64, 64) and t["masks"].dtype == torch.bool for t in targets)
    assert all(len(t["masks"]) == len(t["labels"]) > 0 for t in targets)  # annotated frames only
    assert all(0 <= int(t["labels"].min()) and int(t["labels"].max()) < 3 for t in targets)  # 0-based
    assert collate_segmentation([without[0]])[1] is None


def test_odd_sizes_are_padded_to_multiples_of_32_with_the_masks():
    dataset = generate_dataset(1, num_frames=3, size=72, seed=0)
    images, _, targets = collate_segmentation([segmentation_samples(dataset, False, [72], 72, flip=False)[0]])
    assert tuple(images.shape[-2:]) == (96, 96) and tuple(targets[0]["masks"].shape[-2:]) == (96, 96)
    assert not targets[0]["masks"][:, 72:].any()
    assert float(images[0, :, 72:].abs().max()) == 0.0


def test_loss_falls_over_twenty_steps_on_the_benchmark():
    torch.manual_seed(0)
    samples = segmentation_samples(_dataset(), True, [64], 64, max_offset=2, flip=False)
    batch = collate_segmentation([samples[i] for i in range(4)])
    model = tiny_model("relation").train()
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        total = sum(model(*batch).values())
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        losses.append(float(total.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses


def test_a_trained_run_loads_back_with_identical_outputs(tmp_path):
    torch.manual_seed(0)
    dataset = _dataset()
    model_config = SegmenterConfig(class_names=list(dataset.categories), predictor="relation", swin_kwargs=SWIN,
                                   head_kwargs=HEAD)
    model = tiny_model("relation", classes=list(dataset.categories))
    data = VisDataConfig(num_videos=2, num_frames=6, train_sizes=(64,), max_size=64, max_offset=2)
    config = TrainConfig(lr=1e-3, max_iters=3, batch_size=2, progress=False, clip_grad_norm=1.0,
                         lr_multipliers={"backbone": 0.1})
    history = train_segmenter(model, model_config, dataset, data, config, tmp_path)
    assert history.end_iteration == 3 and len(history.losses) == 3
    record = json.loads((tmp_path / "vis.json").read_text())
    assert record["task"] == "vis" and record["model"]["class_names"] == list(dataset.categories)
    images = torch.randn(1, 3, 64, 64)
    support = torch.randn(1, 2, 3, 64, 64)
    model.eval()
    for weights in (tmp_path, tmp_path / "checkpoint.pt"):
        loaded, run = load_vis_run(weights, "cpu")
        assert run.model.predictor == "relation" and run.inference.mode == "per-video"
        with torch.no_grad():
            prompts = model.stpn.predict_prompts(model.stpn.embed_support(support))
            again = loaded.stpn.predict_prompts(loaded.stpn.embed_support(support))
            ours, theirs = model.decode(model.features(images, prompts)), loaded.decode(loaded.features(images, again))
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def _cli(*argv):
    parser = argparse.ArgumentParser()
    add_train_vis_command(parser.add_subparsers(dest="command"))
    return run_train_vis_command(parser.parse_args(["train-vis", *argv]))


def _tiny_config(tmp_path, **changes):
    raw = yaml.safe_load(TINY.read_text())
    raw["data"].update(num_videos=2, num_frames=6)
    raw["train"].update(batch_size=2)
    for section, values in changes.items():
        raw[section].update(values)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_train_vis_command_end_to_end(tmp_path, capsys):
    config = _tiny_config(tmp_path)
    assert _cli("--config", str(config), "--out", str(tmp_path / "run"), "--iters", "2", "--device", "cpu") == 0
    assert "2 iterations" in capsys.readouterr().out
    assert {"vis.json", "checkpoint.pt", "model.safetensors"} <= {p.name for p in (tmp_path / "run").iterdir()}
    model, run = load_vis_run(tmp_path / "run")
    assert model.stpn is not None and model.class_names == run.model.class_names and len(model.class_names) == 3
    assert _cli("--config", str(config), "--out", str(tmp_path / "run")) == 2  # refuses to overwrite
    assert "already holds a training run" in capsys.readouterr().err


@pytest.mark.parametrize("section, key, message", [
    ("model", {"num_promts": 5}, r"num_promts"),
    ("model", {"head_kwargs": {"hiden_dim": 64}}, r"model\.head_kwargs.*hiden_dim"),
    ("data", {"num_vidoes": 2}, r"data.*num_vidoes"),
    ("train", {"lr_multiplier": {}}, r"train.*lr_multiplier"),
])
def test_a_typo_in_any_section_is_one_line_naming_file_and_key(tmp_path, capsys, section, key, message):
    config = _tiny_config(tmp_path, **{section: key})
    with pytest.raises(ValueError, match=rf"tiny\.yaml.*{message}"):
        read_vis_config(config)
    assert _cli("--config", str(config), "--out", str(tmp_path / "run")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "tiny.yaml" in err


@pytest.mark.parametrize("variant, predictor", [("baseline", None), ("stpn", "relation")])
def test_the_youtube_vis_presets_follow_the_recipe(variant, predictor):
    cfg = read_vis_config(ROOT / "configs" / f"ytvis19_minvis_swin_t_{variant}.yaml")
    recipe = vis_recipe()
    for field in ("lr", "weight_decay", "milestones", "milestone_unit", "gamma", "max_iters", "batch_size",
                  "clip_grad_norm", "warmup_iters"):
        assert getattr(cfg.train, field) == getattr(recipe, field), field
    assert cfg.train.lr_multipliers["backbone"] == 0.1 and cfg.model.predictor == predictor
    assert cfg.model.head_kwargs["num_queries"] == 100 and cfg.model.head_kwargs["decoder_layers"] == 9
    assert cfg.data.format == "ytvis" and cfg.coco_weights


def test_load_vis_run_refuses_another_tasks_run(tmp_path):
    (tmp_path / "vis.json").write_text(json.dumps({"format": 1, "task": "vss", "model": {}}))
    with pytest.raises(ValueError, match=r"vis\.json: not a video instance segmentation run file"):
        load_vis_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="no train-vis checkpoint at .*nothing_here"):
        load_vis_run(tmp_path / "nothing_here")


def test_a_run_directory_without_weights_or_record_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"vis\.json not found.*train-vis run directory"):
        load_vis_run(tmp_path / "empty")


def test_the_tiny_configs_differ_only_in_the_predictor():
    stpn, baseline = (read_vis_config(ROOT / "configs" / name) for name in
                      ("vis_synthetic_tiny.yaml", "vis_synthetic_tiny_baseline.yaml"))
    assert stpn.model.predictor == "relation" and baseline.model.predictor is None
    assert stpn.data == baseline.data and stpn.train == baseline.train
    assert stpn.data.root is None and stpn.model.head_kwargs["decoder_layers"] == 2


def test_training_under_bf16_autocast_stays_finite(tmp_path):
    torch.manual_seed(0)
    dataset = _dataset()
    model = tiny_model("relation", classes=list(dataset.categories))
    config = TrainConfig(lr=1e-3, max_iters=2, batch_size=2, progress=False, amp="bf16", clip_grad_norm=0.01)
    data = VisDataConfig(num_videos=2, num_frames=6, train_sizes=(64,), max_size=64, max_offset=2)
    history = train_segmenter(model, SegmenterConfig(predictor="relation", swin_kwargs=SWIN, head_kwargs=HEAD),
                              dataset, data, config, tmp_path)
    assert len(history.losses) == 2 and all(torch.isfinite(torch.tensor(history.losses)))
    assert all(r["grad_norm"] > 0 for r in history.train)


def test_training_frames_come_from_a_youtube_vis_folder(tmp_path):
    from stpn.data.formats import write_dataset

    dataset = _dataset()
    write_dataset(dataset.videos, dataset.categories, tmp_path / "ytvis", "ytvis", "train")
    data = VisDataConfig(root=str(tmp_path / "ytvis"), format="ytvis", train_sizes=(64,), max_size=64)
    read = data.load()
    assert read.categories == dataset.categories and len(read.videos) == 2
    samples = segmentation_samples(read, True, data.train_sizes, data.max_size, max_offset=2, flip=False)
    _, _, targets = collate_segmentation([samples[0]])
    expected = [i.mask for i in dataset.videos[0].annotations[samples.items[0][1]].instances]
    assert torch.equal(targets[0]["masks"], torch.from_numpy(np.stack(expected)))

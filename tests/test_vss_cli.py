"""train-vss → eval-vss → segment-semantic on a tiny config, and one-line errors."""
import argparse
import json

import numpy as np
import pytest

from stpn.vss.cli import add_vss_commands, overlay, run_vss_command

TINY = """
model: {temporal: true, num_key_frames: 2, dim: 16, heads: 2}
data: {num_videos: 1, num_frames: 9, size: 48, seed: 0}
eval_data: {num_videos: 1, num_frames: 4, size: 48, seed: 1}
train: {lr: 0.001, batch_size: 2, max_iters: 2, progress: false, checkpoint_each_epoch: false}
"""


def parse(argv):
    parser = argparse.ArgumentParser(prog="stpn")
    add_vss_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_train_eval_and_segment(tmp_path, capsys):
    from stpn.data.video import VideoWriter

    config = tmp_path / "vss_tiny.yaml"
    config.write_text(TINY)
    run = tmp_path / "run"
    assert run_vss_command(parse(["train-vss", "--config", str(config), "--out", str(run)])) == 0
    assert (run / "model.safetensors").is_file() and json.loads((run / "vss.json").read_text())["model"]["temporal"]
    metrics_file = tmp_path / "metrics.json"
    assert run_vss_command(parse(["eval-vss", "--checkpoint", str(run), "--json", str(metrics_file)])) == 0
    metrics = json.loads(metrics_file.read_text())
    assert metrics["frames"] == 4 and 0 <= metrics["miou"] <= 1 and 0 <= metrics["tc"] <= 1
    assert "TC visible" in capsys.readouterr().out
    video = tmp_path / "in.mp4"
    rng = np.random.default_rng(0)
    with VideoWriter(video, 10.0, (48, 48)) as writer:
        for _ in range(3):
            writer.write(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    out = tmp_path / "annotated.mp4"
    assert run_vss_command(parse(["segment-semantic", str(video), "--checkpoint", str(run), "--out", str(out)])) == 0
    assert out.is_file() and out.stat().st_size > 0
    assert "3 frames" in capsys.readouterr().out


def test_bad_config_and_missing_run_are_one_line_errors(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(TINY.replace("dim: 16", "dimension: 16"))
    assert run_vss_command(parse(["train-vss", "--config", str(config), "--out", str(tmp_path / "r")])) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "dimension" in err and len(err.strip().splitlines()) == 1
    assert run_vss_command(parse(["eval-vss", "--checkpoint", str(tmp_path)])) == 2
    assert "vss.json" in capsys.readouterr().err


def test_overlay_leaves_background_alone():
    frame = np.full((2, 2, 3), 100, np.uint8)
    labels = np.array([[0, 1], [2, 0]])
    out = overlay(frame, labels)
    assert (out[0, 0] == 100).all() and (out[1, 1] == 100).all() and not (out[0, 1] == 100).all()
    every = overlay(frame, labels, background=None)  # Cityscapes / CamVid: class 0 is a class
    assert not (every == 100).all(-1).any() and not (every[0, 0] == every[0, 1]).all()

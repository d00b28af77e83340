import argparse

import pytest
import torch
import yaml

from stpn.data.formats.got10k import write_got10k
from stpn.droptrack.checkpoint import load_droptrack
from stpn.droptrack.cli import add_droptrack_commands, run_droptrack_command
from stpn.droptrack.config import load_droptrack_config
from tests.test_tracking_pairs import square_video

TINY = {"model": {"variant": "tiny", "embed_dim": 32, "depth": 2, "num_heads": 2, "head_channels": 16,
                  "template_size": 32, "search_size": 64},
        "data": {"split": "train"},
        "train": {"lr": 1e-3, "batch_size": 2, "progress": False, "checkpoint_each_epoch": False}}


def parse(argv):
    parser = argparse.ArgumentParser()
    add_droptrack_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def got10k_root(tmp_path):
    root = tmp_path / "got10k"
    write_got10k([square_video("a", 6), square_video("b", 6)], ["square"], root, "train")
    write_got10k([square_video("c", 5)], ["square"], root, "val")
    return root


def test_train_then_eval_end_to_end(tmp_path, capsys):
    root = got10k_root(tmp_path)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "run"
    args = parse(["train-droptrack", "--config", str(config), "--data", str(root), "--out", str(out),
                  "--max-iters", "2", "--device", "cpu"])
    assert run_droptrack_command(args) == 0
    model, online = load_droptrack(out)
    assert online["search_factor"] == 4.0 and model.search_size == 64
    args = parse(["eval-droptrack", "--checkpoint", str(out), "--data", str(root), "--device", "cpu"])
    assert run_droptrack_command(args) == 0
    report = capsys.readouterr().out
    assert "AO" in report and "1 sequences" in report


def test_bad_configs_are_one_line_errors(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({**TINY, "loss": {"focal": 1.0}}))
    with pytest.raises(ValueError, match="unknown keys \\['focal'\\] in `loss`"):
        load_droptrack_config(config)
    args = parse(["train-droptrack", "--config", str(config), "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert run_droptrack_command(args) == 2
    err = capsys.readouterr().err
    assert "stpn train-droptrack: error:" in err and "bad.yaml" in err and len(err.strip().splitlines()) == 1


def test_shipped_configs_read():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("droptrack*.yaml"))
    assert len(configs) == 4
    for path in configs:
        cfg = load_droptrack_config(path)
        assert cfg["model"]["template_size"] * 2 == cfg["model"]["search_size"]

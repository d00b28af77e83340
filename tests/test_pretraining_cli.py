"""``pretrain`` end to end on the built-in benchmark, the recipe's optimiser groups, flag errors."""
import argparse
import json

import pytest
import torch

from stpn.backbones.vit import build_vit
from stpn.engine.optim import build_param_groups
from stpn.pretraining.cli import add_pretrain_commands, run_pretrain_command
from stpn.pretraining.model import build_pair_mae
from stpn.pretraining.settings import Recipe, read_pretrain_config
from stpn.pretraining.train import train_config

TINY_YAML = """
model: {variant: vit_tiny_patch16_224, img_size: 32, patch_size: 8, embed_dim: 32, depth: 2, num_heads: 2,
        decoder_dim: 16, decoder_depth: 2, decoder_heads: 2}
train: {batch_size: 2, progress: false}
recipe: {warmup_epochs: 1}
"""


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_pretrain_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(["pretrain", *argv])


def test_pretrain_on_the_builtin_benchmark_exports_a_loadable_encoder(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML)
    out = tmp_path / "run"
    args = _parse(["--method", "dropmae", "--data", "builtin:1", "--out", str(out), "--config", str(config),
                   "--max-iters", "3", "--samples-per-epoch", "4", "--device", "cpu"])
    assert run_pretrain_command(args) == 0
    summary = json.loads((out / "pretrain.json").read_text())
    assert summary["iterations"] == 3 and summary["drop_ratio"] == 0.1
    assert summary["train"]["lr"] == pytest.approx(1.5e-4 * 2 / 256)
    split = summary["attention_within_between"]
    assert len(split) == 2 and all(abs(w + b - 1) < 1e-5 and 0 < w < 1 for w, b in split)
    printed = capsys.readouterr().out
    assert "decoder layer 1: within-frame" in printed
    assert (out / "reconstructions.png").read_bytes()[:4] == b"\x89PNG"
    vit = build_vit("vit_tiny_patch16_224", weights=str(out / "encoder.safetensors"), img_size=32, patch_size=8,
                    embed_dim=32, depth=2, num_heads=2)
    assert vit.embed(torch.zeros(1, 3, 32, 32)).shape == (1, 32, 4, 4)
    with pytest.raises(Exception, match="already holds a training run"):
        run_pretrain_command(args)


def test_recipe_optimiser_groups_and_lr():
    cfg = read_pretrain_config(None)
    assert cfg["model"] == {} and cfg["train"]["betas"] == [0.9, 0.95]
    config = train_config({**cfg["train"], "batch_size": 512}, Recipe(), iters_per_epoch=10)
    assert config.lr == pytest.approx(3e-4) and config.warmup_iters == 400 and config.weight_decay == 0.05
    model = build_pair_mae("dropmae", "vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=32, depth=1,
                           num_heads=2, decoder_dim=16, decoder_depth=1, decoder_heads=2)
    groups = {g["name"]: set(g["param_names"]) for g in build_param_groups(model, config)}
    assert {"temporal_embed", "decoder.temporal_embed", "decoder.mask_token", "encoder.cls_token",
            "encoder.norm.weight", "decoder.blocks.0.attn.qkv.bias"} <= groups["no_decay"]
    assert "encoder.blocks.0.attn.qkv.weight" in groups["decay"]
    assert "encoder.pos_embed" not in groups["decay"] | groups["no_decay"]  # frozen sin-cos


def test_flag_and_config_errors(tmp_path):
    with pytest.raises(ValueError, match="no ASAD"):
        run_pretrain_command(_parse(["--method", "twinmae", "--drop-ratio", "0.1", "--data", "builtin:1",
                                     "--out", str(tmp_path / "r")]))
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {decoder_widht: 3}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown `model` keys \['decoder_widht'\]"):
        read_pretrain_config(bad)
    for name in ("pretrain_tiny.yaml", "pretrain_dropmae_vitb.yaml"):
        read_pretrain_config(f"configs/{name}")


def test_a_finished_run_loads_back(tmp_path):
    from stpn.pretraining.runs import load_pair_mae

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_YAML)
    out = tmp_path / "run"
    run_pretrain_command(_parse(["--method", "twinmae", "--data", "builtin:1", "--out", str(out), "--config",
                                 str(config), "--max-iters", "1", "--samples-per-epoch", "2", "--device", "cpu"]))
    model = load_pair_mae(out)
    assert model.decoder.blocks[0].attn.drop_ratio == 0.0
    exported = build_vit("vit_tiny_patch16_224", weights=str(out / "encoder.safetensors"), img_size=32, patch_size=8,
                         embed_dim=32, depth=2, num_heads=2)
    assert torch.equal(exported.state_dict()["blocks.1.mlp.fc2.weight"], model.encoder.blocks[1].mlp.fc2.weight)
    with pytest.raises(FileNotFoundError, match="no pretrain.json"):
        load_pair_mae(tmp_path)

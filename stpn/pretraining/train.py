"""One pre-training run: frame pairs → pair MAE on the shared engine → exported encoder.

Optimiser (the engine's AdamW groups): betas (0.9, 0.95), weight decay 0.05, none on norms,
biases, position / temporal embeddings, the class and the mask token; ``lr = base_lr * batch /
256``; linear warm-up over ``warmup_epochs``, then DropMAE's half-cosine to 0 (the engine's
``schedule: cosine``, :mod:`stpn.engine.schedule`).

The run directory holds the engine's ``checkpoint.pt`` / ``model.safetensors`` (the whole pair
MAE), the exported ``encoder.safetensors`` / ``temporal_embed.safetensors`` / ``encoder.json``
(:mod:`stpn.pretraining.export`), ``pretrain.json`` (method, settings, the attention split) and
``reconstructions.png`` (:mod:`stpn.pretraining.reconstruction`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Optional

import torch

from stpn.pretraining.attention_stats import attention_split
from stpn.pretraining.export import export_encoder
from stpn.pretraining.model import build_pair_mae
from stpn.pretraining.pairs import FramePairs, PairSettings
from stpn.pretraining.reconstruction import save_reconstruction_figure
from stpn.pretraining.settings import Recipe

PRETRAIN_FILE = "pretrain.json"
STAT_PAIRS = 8  # frame pairs the attention statistic is measured on
FIGURE_PAIRS, FIGURE_FILE = 4, "reconstructions.png"


def train_config(train: dict[str, Any], recipe: Recipe, iters_per_epoch: int, where: str = "train"):
    """The engine's ``TrainConfig``: ``train`` plus ``lr`` (unless given) and the warm-up from the recipe."""
    from stpn.engine import TrainConfig

    batch = train.get("batch_size") or 1
    lr = train.get("lr", recipe.base_lr * batch / 256)
    warmup = math.ceil(recipe.warmup_epochs * iters_per_epoch)
    if train.get("max_iters"):
        warmup = min(warmup, train["max_iters"] // 2)
    values = {"warmup_iters": warmup, **train, "lr": lr}
    return TrainConfig.from_dict(values, where)


def _vit_config(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``build_vit`` arguments of the encoder (for ``encoder.json``)."""
    vit = {k: v for k, v in model_kwargs.items() if k not in ("mask_ratio", "drop_ratio") and not k.startswith("decoder_")}
    return {"variant": vit.pop("variant", "vit_base_patch16_224"), "img_size": vit.pop("img_size", 224), **vit}


def run_pretraining(method: str, videos: list, out: Path, model_kwargs: dict[str, Any], pairs: PairSettings,
                    train: dict[str, Any], recipe: Recipe, num_workers: int = 0, resume: bool = False,
                    stop_after: Optional[int] = None) -> dict[str, Any]:
    """Train ``method`` on frame pairs of ``videos``; write the run directory; return the
    summary written to ``pretrain.json`` (final loss, iterations, attention split per layer)."""
    from stpn.engine import fit, make_train_loader, seed_everything

    img_size = model_kwargs.get("img_size", 224)
    pairs = dataclasses.replace(pairs, img_size=img_size)
    dataset = FramePairs(videos, pairs)
    seed = train.get("seed", 0)
    loader = make_train_loader(dataset, train.get("batch_size") or 1, seed=seed, num_workers=num_workers)
    config = train_config(train, recipe, len(loader))
    seed_everything(seed)
    model = build_pair_mae(method, **model_kwargs)
    history = fit(model, loader, config, out, resume="auto" if resume else None, stop_after=stop_after)
    paths = export_encoder(model, out, _vit_config(model_kwargs))
    g = torch.Generator().manual_seed(seed)
    pick = torch.randint(len(dataset), (STAT_PAIRS,), generator=g).tolist()
    from stpn.engine.data import SampleKey, SeededDataset

    seeded = SeededDataset(dataset)
    frames = torch.stack([seeded[SampleKey(i, seed + k)] for k, i in enumerate(pick)])
    device = next(model.parameters()).device
    split = attention_split(model, frames.to(device), seed=seed)
    figure = save_reconstruction_figure(model, frames[:FIGURE_PAIRS].to(device), out / FIGURE_FILE, seed=seed)
    summary = {
        "method": method,
        "drop_ratio": model.decoder.blocks[0].attn.drop_ratio,
        "iterations": history.end_iteration,
        "final_loss": history.losses[-1] if history.losses else None,
        "attention_within_between": [list(s) for s in split],
        "model": model_kwargs,
        "pairs": dataclasses.asdict(pairs),
        "train": config.to_dict(),
        "files": {**{k: str(p) for k, p in paths.items()}, "figure": str(figure)},
    }
    (out / PRETRAIN_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_attention_split(split: list[list[float]]) -> str:
    """One line per decoder layer: ``layer i: within 0.xxx between 0.xxx``."""
    return "\n".join(f"decoder layer {i}: within-frame {w:.3f}  between-frame {b:.3f}" for i, (w, b) in enumerate(split))

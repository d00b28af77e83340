"""The YAML sections of a pre-training config, checked strictly (:mod:`stpn.strict_fields`).

``model``: :func:`~stpn.pretraining.model.build_pair_mae` arguments plus the ViT sizes of
:class:`VitOverrides`; ``pairs``: :class:`~stpn.pretraining.pairs.PairSettings`; ``train``:
:class:`~stpn.engine.TrainConfig` fields (``lr`` may be left out: :class:`Recipe` sets it);
``recipe``: :class:`Recipe`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from stpn.config_file import read_sections

SECTIONS = ("model", "pairs", "train", "recipe")
NO_DECAY_KEYWORDS = ("pos_embed", "position", "cls_token", "temporal_embed", "mask_token")


@dataclass
class VitOverrides:
    """timm ViT sizes a ``model`` section may override (``None`` = the variant's)."""

    patch_size: Optional[int] = None
    embed_dim: Optional[int] = None
    depth: Optional[int] = None
    num_heads: Optional[int] = None
    mlp_ratio: Optional[float] = None


@dataclass
class Recipe:
    """DropMAE's recipe: ``lr = base_lr * batch_size / 256`` and ``warmup_epochs`` of linear
    warm-up (converted to iterations with the loader's length)."""

    base_lr: float = 1.5e-4
    warmup_epochs: float = 40

    def __post_init__(self) -> None:
        if not self.base_lr > 0 or self.warmup_epochs < 0:
            raise ValueError(f"base_lr must be > 0 and warmup_epochs >= 0, got {self.base_lr}, {self.warmup_epochs}")


DEFAULT_TRAIN = {"batch_size": 64, "epochs": 400, "weight_decay": 0.05, "betas": [0.9, 0.95],
                 "schedule": "cosine",  # DropMAE: linear warm-up, then a half-cosine to 0
                 "no_decay_keywords": list(NO_DECAY_KEYWORDS), "eval_every_epochs": 0}


def read_pretrain_config(path: Optional[str | Path]) -> dict[str, Any]:
    """The checked sections of ``path`` (every section optional; ``None`` = all defaults):
    ``{"model": kwargs, "pairs": PairSettings, "train": dict, "recipe": Recipe}``."""
    from stpn.engine import TrainConfig
    from stpn.pretraining.model import build_pair_mae
    from stpn.pretraining.pairs import PairSettings
    from stpn.strict_fields import check_kwargs, from_dict

    data = read_sections(path, SECTIONS, required=()) if path is not None else {}
    where = str(path) if path is not None else "defaults"
    model = check_kwargs(build_pair_mae, data.get("model") or {}, where, skip=("method",), extra=VitOverrides,
                         section="model")
    model = {k: v for k, v in model.items() if v is not None}
    given = data.get("train") or {}
    defaults = {k: v for k, v in DEFAULT_TRAIN.items() if not (k == "epochs" and given.get("max_iters"))}
    train = {**defaults, **given}
    check_kwargs(TrainConfig, {"lr": 1.0, **train}, where, section="train")
    return {"model": model, "pairs": from_dict(PairSettings, data.get("pairs") or {}, where, section="pairs"),
            "train": train, "recipe": from_dict(Recipe, data.get("recipe") or {}, where, section="recipe")}

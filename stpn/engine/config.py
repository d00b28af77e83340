"""The training configuration shared by every task (detection, segmentation, tracking).

One flat dataclass whose fields map one-to-one onto CLI flags / YAML keys. It is stored in every
checkpoint as a plain dict (:meth:`TrainConfig.to_dict`), so checkpoints load with
``torch.load(..., weights_only=True)``.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

MILESTONE_UNITS = ("epoch", "iter")
AMP_MODES = (None, "bf16")
SCHEDULES = ("step", "cosine", "poly")
OPTIMIZERS = ("adamw", "sgd")

# Parameter-name keywords that never get weight decay (substring match on the full dotted name).
DEFAULT_NO_DECAY_KEYWORDS = (
    "pos_embed",
    "absolute_pos_embed",
    "position",
    "relative_position_bias_table",
    "cls_token",
)


@dataclass
class TrainConfig:
    """Optimiser, schedule and loop settings.

    Length: exactly one of ``epochs`` / ``max_iters``. ``milestones`` are in ``milestone_unit``
    ("epoch" or "iter"); epochs are converted to iterations with the loader's length, so
    "×0.1 at epoch 6" means from iteration ``6 * len(loader)`` on. ``warmup_iters`` is always in
    iterations: the LR factor rises linearly from ``warmup_factor`` to 1 over that many
    iterations (and multiplies the step decay).

    ``schedule`` shapes the LR after the warm-up (:mod:`stpn.engine.schedule`): ``"step"``
    (``gamma`` at each milestone), ``"cosine"`` (half-cosine from 1 down to ``min_lr_factor`` over
    the iterations after the warm-up; milestones ignored) or ``"poly"`` (``(1 - i / total) **
    poly_power``; milestones ignored). ``optimizer``: ``"adamw"`` (``betas``, ``eps``) or
    ``"sgd"`` (``momentum``, no Nesterov); both get the same parameter groups
    (:mod:`stpn.engine.optim`). ``batch_size`` is the *global* batch (summed over
    processes), as in the papers' tables; :func:`stpn.engine.data.make_train_loader` splits it.

    ``lr_multipliers`` maps a dotted module path (matched as whole components anywhere in the
    parameter name, e.g. ``"backbone"`` matches ``extractor.backbone.blocks.0.attn.qkv.weight``)
    to an LR multiplier, like MixFormer's / Mask2Former's ``BACKBONE_MULTIPLIER``.

    ``checkpoint_every`` (iterations, 0 = off) and ``checkpoint_each_epoch`` both rewrite
    ``<out_dir>/checkpoint.pt``; a final checkpoint and ``model.safetensors`` are always written.
    ``eval_every_epochs`` (0 = only at the end) says when ``eval_fn`` runs; it always runs once
    after the last iteration.
    """

    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_iters: int = 0
    warmup_factor: float = 0.001
    milestones: tuple[int, ...] = ()
    milestone_unit: str = "epoch"
    gamma: float = 0.1
    schedule: str = "step"
    min_lr_factor: float = 0.0
    poly_power: float = 0.9
    optimizer: str = "adamw"
    momentum: float = 0.9
    epochs: Optional[int] = None
    max_iters: Optional[int] = None
    batch_size: Optional[int] = None
    clip_grad_norm: Optional[float] = None
    amp: Optional[str] = None
    seed: int = 0
    log_every: int = 20
    checkpoint_every: int = 0
    checkpoint_each_epoch: bool = True
    eval_every_epochs: int = 1
    progress: bool = True
    no_decay_keywords: tuple[str, ...] = DEFAULT_NO_DECAY_KEYWORDS
    no_decay_prompt_queries: bool = False
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    find_unused_parameters: bool = False
    device: Optional[str] = None

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)
        self.milestones = tuple(int(m) for m in self.milestones)
        self.no_decay_keywords = tuple(self.no_decay_keywords)
        self.lr_multipliers = {str(k): float(v) for k, v in dict(self.lr_multipliers).items()}
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if len(self.betas) != 2:
            raise ValueError(f"betas must have two values, got {self.betas}")
        if (self.epochs is None) == (self.max_iters is None):
            raise ValueError(
                f"set exactly one of epochs / max_iters (got epochs={self.epochs}, max_iters={self.max_iters})"
            )
        for name in ("epochs", "max_iters", "batch_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.milestone_unit not in MILESTONE_UNITS:
            raise ValueError(f"milestone_unit must be one of {MILESTONE_UNITS}, got {self.milestone_unit!r}")
        if list(self.milestones) != sorted(self.milestones) or any(m < 0 for m in self.milestones):
            raise ValueError(f"milestones must be non-negative and increasing, got {self.milestones}")
        if self.warmup_iters < 0:
            raise ValueError(f"warmup_iters must be >= 0, got {self.warmup_iters}")
        if not 0 < self.warmup_factor <= 1:
            raise ValueError(f"warmup_factor must be in (0, 1], got {self.warmup_factor}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not 0 <= self.min_lr_factor <= 1:
            raise ValueError(f"min_lr_factor must be in [0, 1], got {self.min_lr_factor}")
        if not self.poly_power > 0:
            raise ValueError(f"poly_power must be > 0, got {self.poly_power}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ValueError(f"clip_grad_norm must be > 0 or None, got {self.clip_grad_norm}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")
        for name in ("checkpoint_every", "eval_every_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        bad = {k: v for k, v in self.lr_multipliers.items() if not v >= 0}
        if bad:
            raise ValueError(f"lr_multipliers must be >= 0, got {bad}")

    def total_iters(self, iters_per_epoch: int) -> int:
        """Number of optimiser steps of the whole run."""
        if iters_per_epoch < 1:
            raise ValueError(f"the training loader is empty (len {iters_per_epoch})")
        return self.max_iters if self.max_iters is not None else self.epochs * iters_per_epoch

    def milestone_iters(self, iters_per_epoch: int) -> tuple[int, ...]:
        """Milestones converted to iterations."""
        if self.milestone_unit == "iter":
            return self.milestones
        return tuple(m * iters_per_epoch for m in self.milestones)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists instead of tuples) for checkpoints, YAML and JSON."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "", section: Optional[str] = None) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys (usually typos) and values of the wrong type
        are one-line errors naming ``where`` (:func:`stpn.strict_fields.from_dict`)."""
        from stpn.strict_fields import from_dict

        return from_dict(cls, data, where, kind="TrainConfig keys", section=section)

"""The LR factor per iteration: linear warm-up, then step decay, half-cosine or poly decay.

Iteration ``i`` counts the optimiser steps already taken, so step ``i`` uses ``lr * factor(i)``;
the scheduler is stepped once per iteration, never per epoch. With ``W = warmup_iters`` and
``T`` the run's total iterations:

* warm-up (all three): ``warmup(i) = warmup_factor + (1 - warmup_factor) * i / W`` for ``i < W``,
  1 afterwards (the mmdetection / detectron2 "linear" warm-up);
* ``"step"``: ``warmup(i) * gamma ** (number of milestones <= i)``;
* ``"cosine"``: ``warmup(i)`` for ``i < W``, then ``m + (1 - m) * (1 + cos(pi * (i - W) / (T - W))) / 2``
  with ``m = min_lr_factor`` (MAE's / DropMAE's half-cosine, stepped per iteration);
* ``"poly"``: ``warmup(i) * (1 - i / T) ** poly_power`` (mmsegmentation's poly decay, which
  its warm-up multiplies).
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import Union

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from stpn.engine.config import TrainConfig


def linear_warmup(iteration: int, warmup_iters: int, warmup_factor: float) -> float:
    """``warmup_factor`` at 0 rising linearly to 1 at ``warmup_iters``; 1 from then on."""
    if iteration < warmup_iters:
        return warmup_factor + (1.0 - warmup_factor) * iteration / warmup_iters
    return 1.0


# Each schedule is a dataclass (not a closure) so that ``LambdaLR.state_dict`` stores its fields
# as plain values and DDP workers can pickle it.
@dataclass
class WarmupStepSchedule:
    """Warm-up times ``gamma`` per milestone passed (milestones in iterations)."""

    warmup_iters: int
    warmup_factor: float
    milestones: tuple[int, ...]
    gamma: float

    def __call__(self, iteration: int) -> float:
        decay = self.gamma ** bisect.bisect_right(self.milestones, iteration)
        return decay * linear_warmup(iteration, self.warmup_iters, self.warmup_factor)


@dataclass
class WarmupCosineSchedule:
    """Warm-up, then a half-cosine from 1 (at ``warmup_iters``) to ``min_factor`` (at ``total_iters``)."""

    warmup_iters: int
    warmup_factor: float
    total_iters: int
    min_factor: float

    def __call__(self, iteration: int) -> float:
        if iteration < self.warmup_iters:
            return linear_warmup(iteration, self.warmup_iters, self.warmup_factor)
        progress = min(1.0, (iteration - self.warmup_iters) / max(1, self.total_iters - self.warmup_iters))
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class WarmupPolySchedule:
    """Warm-up times ``(1 - iteration / total_iters) ** power``."""

    warmup_iters: int
    warmup_factor: float
    total_iters: int
    power: float

    def __call__(self, iteration: int) -> float:
        remaining = max(0.0, 1.0 - iteration / self.total_iters)
        return remaining**self.power * linear_warmup(iteration, self.warmup_iters, self.warmup_factor)


Schedule = Union[WarmupStepSchedule, WarmupCosineSchedule, WarmupPolySchedule]


def build_schedule(config: TrainConfig, iters_per_epoch: int) -> Schedule:
    """The LR factor of ``config`` (``config.schedule``) for a loader of ``iters_per_epoch`` batches."""
    if config.schedule == "step":
        return WarmupStepSchedule(
            warmup_iters=config.warmup_iters,
            warmup_factor=config.warmup_factor,
            milestones=tuple(config.milestone_iters(iters_per_epoch)),
            gamma=config.gamma,
        )
    total = config.total_iters(iters_per_epoch)
    if config.schedule == "cosine":
        return WarmupCosineSchedule(config.warmup_iters, config.warmup_factor, total, config.min_lr_factor)
    if config.schedule == "poly":
        return WarmupPolySchedule(config.warmup_iters, config.warmup_factor, total, config.poly_power)
    raise ValueError(f"schedule must be one of step / cosine / poly, got {config.schedule!r}")


def build_scheduler(optimizer: Optimizer, config: TrainConfig, iters_per_epoch: int) -> LambdaLR:
    """``LambdaLR`` over every parameter group (their multipliers are already in their ``lr``)."""
    return LambdaLR(optimizer, build_schedule(config, iters_per_epoch))

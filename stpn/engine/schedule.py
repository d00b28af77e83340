"""Linear warm-up followed by step decay, as an LR factor per iteration.

``factor(i) = warmup(i) * gamma ** (number of milestones <= i)`` with
``warmup(i) = warmup_factor + (1 - warmup_factor) * i / warmup_iters`` for ``i < warmup_iters``
and 1 afterwards (the mmdetection / detectron2 "linear" warm-up). Iteration ``i`` counts the
optimiser steps already taken, so step ``i`` uses ``lr * factor(i)``; the scheduler is stepped
once per iteration, never per epoch.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from stpn.engine.config import TrainConfig


@dataclass
class WarmupStepSchedule:
    """Callable LR factor; a dataclass (not a closure) so that ``LambdaLR.state_dict`` stores its
    fields as plain values and DDP workers can pickle it."""

    warmup_iters: int
    warmup_factor: float
    milestones: tuple[int, ...]
    gamma: float

    def __call__(self, iteration: int) -> float:
        decay = self.gamma ** bisect.bisect_right(self.milestones, iteration)
        if iteration < self.warmup_iters:
            alpha = iteration / self.warmup_iters
            return decay * (self.warmup_factor + (1.0 - self.warmup_factor) * alpha)
        return decay


def build_schedule(config: TrainConfig, iters_per_epoch: int) -> WarmupStepSchedule:
    """The LR factor of ``config`` for a loader of ``iters_per_epoch`` batches."""
    return WarmupStepSchedule(
        warmup_iters=config.warmup_iters,
        warmup_factor=config.warmup_factor,
        milestones=tuple(config.milestone_iters(iters_per_epoch)),
        gamma=config.gamma,
    )


def build_scheduler(optimizer: Optimizer, config: TrainConfig, iters_per_epoch: int) -> LambdaLR:
    """``LambdaLR`` over every parameter group (their multipliers are already in their ``lr``)."""
    return LambdaLR(optimizer, build_schedule(config, iters_per_epoch))

"""One optimisation step: forward (optionally under bf16 autocast), loss checks, backward,
gradient clipping, optimiser and scheduler step.

Model contract (torchvision detection style): in train mode ``model(*batch)`` if the batch is a
tuple or list (e.g. ``(clip_batch, targets)``, or the list ``default_collate`` makes of
``(x, y)`` samples), else ``model(batch)``, returns a dict of scalar loss tensors; the total
loss is their sum.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Optional

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from stpn.engine.distributed import all_reduce_mean


class NonFiniteLossError(FloatingPointError):
    """A loss term (or the gradient norm) became NaN or infinite; training stopped before the
    optimiser step, so the parameters and the last checkpoint are still good. ``what="weights"``:
    the parameters themselves are not finite at a checkpoint, which was therefore not written."""

    def __init__(self, iteration: int, epoch: int, values: Mapping[str, float], what: str = "loss", note: str = ""):
        self.iteration = iteration
        self.epoch = epoch
        self.values = dict(values)
        self.what = what
        terms = ", ".join(f"{k}={v:.6g}" for k, v in self.values.items())
        bad = sorted(k for k, v in self.values.items() if not math.isfinite(v))
        stopped = "this state was not saved" if what == "weights" else "before the optimizer step"
        super().__init__(
            f"non-finite {what} at iteration {iteration} (epoch {epoch}): {terms}; "
            f"non-finite: {bad}. Training stopped {stopped}.{note}"
        )


def call_model(model: nn.Module, batch: Any) -> Any:
    """``model(*batch)`` for a tuple or list batch, ``model(batch)`` otherwise."""
    return model(*batch) if isinstance(batch, (tuple, list)) else model(batch)


def check_loss_dict(losses: Any) -> dict[str, Tensor]:
    """The model's output as ``{name: scalar tensor}`` or a ValueError naming what is wrong."""
    if not isinstance(losses, Mapping) or not losses:
        raise ValueError(
            f"in train mode the model must return a non-empty dict of scalar loss tensors, got {type(losses).__name__}"
        )
    for name, value in losses.items():
        if not isinstance(value, Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"loss {name!r} must be a scalar tensor, got {shape}")
    return {str(k): losses[k] for k in sorted(losses)}


def train_step(
    model: nn.Module,
    batch: Any,
    optimizer: Optimizer,
    scheduler: Optional[LRScheduler],
    iteration: int,
    epoch: int = 0,
    clip_grad_norm: Optional[float] = None,
    amp: Optional[str] = None,
    device_type: str = "cpu",
) -> dict[str, float]:
    """Run one step and return the loss terms and ``"loss"`` (their sum) as floats, averaged
    over processes (so every rank sees the same values and stops together on NaN/inf; every
    rank must therefore return the same loss names).

    Raises :class:`NonFiniteLossError` before any parameter changes if a loss term, or the
    gradient norm when ``clip_grad_norm`` is set, is not finite.
    """
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp == "bf16"):
        losses = check_loss_dict(call_model(model, batch))
    total = sum(v.float().reshape(()) for v in losses.values())
    names = ["loss", *losses]
    values = torch.stack([total.detach(), *(v.detach().float().reshape(()) for v in losses.values())])
    values = all_reduce_mean(values).tolist()
    record = dict(zip(names, values))
    if not all(math.isfinite(v) for v in values):
        raise NonFiniteLossError(iteration, epoch, record)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if clip_grad_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = float(torch.nn.utils.clip_grad_norm_(params, clip_grad_norm))
        record["grad_norm"] = norm
        if not math.isfinite(norm):
            raise NonFiniteLossError(iteration, epoch, record, what="gradient norm")
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return record

"""What a training checkpoint holds and how a run is restored from it."""
from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Any, Mapping, Sequence

from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from stpn.engine.checkpoint import CHECKPOINT_FORMAT, load_model_state, unwrap_model
from stpn.engine.config import TrainConfig
from stpn.engine.distributed import DistInfo, all_gather_objects
from stpn.engine.rng import derive_seed, get_rng_state, seed_everything, set_rng_state

log = logging.getLogger("stpn.engine")


def make_checkpoint(
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    iteration: int,
    iters_per_epoch: int,
    config: TrainConfig,
    log_window: Sequence[Mapping[str, float]] = (),
) -> dict[str, Any]:
    """The checkpoint dict of the current state. Collective: every rank must call it (the RNG
    states of all ranks are gathered so that each rank resumes its own random stream).
    ``log_window``: the per-iteration records not yet averaged into a log line, so a resumed
    run logs the same averages as an uninterrupted one."""
    return {
        "format": CHECKPOINT_FORMAT,
        "model": unwrap_model(model).state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "iteration": iteration,
        "epoch": iteration // iters_per_epoch,
        "iters_per_epoch": iters_per_epoch,
        "config": config.to_dict(),
        "rng": all_gather_objects(get_rng_state()),
        "log_window": [dict(r) for r in log_window],
    }


# Fields that change neither the optimisation nor the data order.
BOOKKEEPING_FIELDS = {
    "progress", "log_every", "checkpoint_every", "checkpoint_each_epoch", "eval_every_epochs", "device",
}


def _config_differences(saved: dict[str, Any], current: TrainConfig) -> list[str]:
    """Fields whose values differ; a field the checkpoint predates counts as its default."""
    now = current.to_dict()
    saved = {**{f.name: f.default for f in dataclasses.fields(TrainConfig)
                if f.name not in saved and f.default is not dataclasses.MISSING}, **saved}
    keys = (set(saved) | set(now)) - BOOKKEEPING_FIELDS
    return sorted(k for k in keys if saved.get(k) != now.get(k))


def restore_checkpoint(
    checkpoint: dict[str, Any],
    model: nn.Module,
    optimizer: Optimizer,
    scheduler: LRScheduler,
    iters_per_epoch: int,
    config: TrainConfig,
    info: DistInfo,
    source: str = "the checkpoint",
) -> int:
    """Load model, optimiser, scheduler and this rank's RNG state; return the iteration to run next.

    The optimiser and scheduler state come from the checkpoint (so its learning rates win if
    ``config.lr`` changed); the schedule's shape (warm-up, milestones) comes from ``config``.
    """
    if checkpoint.get("iters_per_epoch") != iters_per_epoch:
        raise ValueError(
            f"the checkpoint was trained with {checkpoint.get('iters_per_epoch')} iterations per epoch but the "
            f"loader now has {iters_per_epoch}: resuming needs the same dataset, batch size and world size"
        )
    changed = _config_differences(checkpoint["config"], config)
    if changed:
        warnings.warn(f"resuming with a config that differs from the checkpoint's in {changed}", stacklevel=3)
    load_model_state(model, checkpoint["model"], source)
    try:
        optimizer.load_state_dict(checkpoint["optimizer"])
    except ValueError as err:
        raise ValueError(
            f"the checkpoint's optimizer state does not fit this model's parameter groups ({err}); were "
            "parameters frozen/unfrozen or the no-decay / lr_multipliers settings changed?"
        ) from err
    sched = dict(checkpoint["scheduler"])
    if "lr_lambdas" in sched:
        sched["lr_lambdas"] = [None] * len(sched["lr_lambdas"])  # keep config's schedule shape
    scheduler.load_state_dict(sched)
    iteration = int(checkpoint["iteration"])
    states = checkpoint.get("rng") or []
    if len(states) == info.world_size:
        set_rng_state(states[info.rank])
    else:
        warnings.warn(
            f"the checkpoint holds RNG states of {len(states)} processes, this run has {info.world_size}: "
            "random streams are re-seeded, so the run will not repeat the interrupted one exactly",
            stacklevel=3,
        )
        seed_everything(derive_seed(config.seed, info.rank, iteration))
    log.info("resumed at iteration %d (epoch %d)", iteration, iteration // iters_per_epoch)
    return iteration

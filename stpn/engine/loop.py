"""``fit``: the task-agnostic training loop (DETR/MAE-style ``train_one_epoch`` inside).

Iterations are the unit of everything: ``iteration`` is the number of optimiser steps done,
the epoch is ``iteration // len(loader)``, and a resumed run re-enters the current epoch at
batch ``iteration % len(loader)``. Loaders built with :func:`stpn.engine.data.make_train_loader`
(or any loader whose ``batch_sampler`` has ``set_epoch`` and ``skip_batches``) resume exactly;
other loaders are advanced by loading and discarding the batches already done, which repeats
the interrupted run only if their order and augmentation are deterministic per epoch.
"""
from __future__ import annotations

import itertools
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Union

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from torch.utils.data import DataLoader

from stpn.engine.checkpoint import (
    CHECKPOINT_FILE,
    EXPORT_FILE,
    export_safetensors,
    load_checkpoint,
    resolve_checkpoint_path,
    save_checkpoint,
)
from stpn.engine.config import TrainConfig
from stpn.engine.device import move_to_device, resolve_device
from stpn.engine.distributed import barrier, init_distributed
from stpn.engine.optim import build_optimizer
from stpn.engine.rng import seed_everything
from stpn.engine.scalars import ScalarWriter
from stpn.engine.schedule import build_scheduler
from stpn.engine.step import NonFiniteLossError, train_step
from stpn.engine.training_state import make_checkpoint, restore_checkpoint

log = logging.getLogger("stpn.engine")
EvalFn = Callable[[nn.Module], Optional[Mapping[str, Any]]]


@dataclass
class TrainHistory:
    """What one ``fit`` call did. ``train``: one record per iteration run by this call
    (``iteration`` (0-based step index), ``epoch``, ``lr``, ``loss``, each loss term, and
    ``grad_norm`` when clipping), averaged over processes; ``eval``: the ``eval_fn`` results
    with ``epoch`` and ``iteration``. Only rank 0 fills them."""

    start_iteration: int
    end_iteration: int = 0
    total_iterations: int = 0
    stopped_early: bool = False
    train: list[dict[str, float]] = field(default_factory=list)
    eval: list[dict[str, Any]] = field(default_factory=list)

    @property
    def losses(self) -> list[float]:
        return [r["loss"] for r in self.train]


@dataclass
class TrainContext:
    """Everything the loop needs while it runs (built by :func:`fit`)."""

    model: nn.Module  # what is called (DDP wrapper or the module itself)
    module: nn.Module  # the unwrapped module (for state dicts and evaluation)
    optimizer: Optimizer
    scheduler: LambdaLR
    config: TrainConfig
    out_dir: Path
    device: torch.device
    iters_per_epoch: int
    total_iters: int
    iteration: int
    writer: ScalarWriter
    history: TrainHistory
    is_main: bool
    progress: Any = None
    last_checkpoint: Optional[tuple[Path, int]] = None
    _window: list[dict[str, float]] = field(default_factory=list)

    @property
    def epoch(self) -> int:
        return self.iteration // self.iters_per_epoch

    def lr_at(self, iteration: int) -> float:
        """Base LR (multiplier 1) used at ``iteration``."""
        return self.config.lr * self.scheduler.lr_lambdas[0](iteration)

    def check_finite_weights(self) -> None:
        """Raise :class:`NonFiniteLossError` (``what="weights"``) if a parameter or buffer is NaN
        or infinite: such a state is never written, so the last checkpoint stays a good one."""
        for name, value in self.module.state_dict().items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise NonFiniteLossError(self.iteration, self.epoch, {name: math.nan}, "weights", _nonfinite_note(self))

    def save(self) -> None:
        """Write ``checkpoint.pt`` (collective: call on every rank); refuses non-finite weights."""
        if self.last_checkpoint is not None and self.last_checkpoint[1] == self.iteration:
            return
        self.check_finite_weights()
        ckpt = make_checkpoint(
            self.module, self.optimizer, self.scheduler, self.iteration, self.iters_per_epoch, self.config,
            log_window=self._window,
        )
        path = self.out_dir / CHECKPOINT_FILE
        if self.is_main:
            save_checkpoint(path, ckpt)
        self.last_checkpoint = (path, self.iteration)


def _batches(loader: Any, epoch: int, skip: int) -> Iterator[Any]:
    """Iterate ``loader`` for ``epoch`` from batch ``skip`` on.

    The iterator is created under a forked torch RNG: a ``DataLoader`` without a ``generator``
    draws its worker base seed from the global RNG there, which would otherwise shift the
    model's random stream (dropout) differently in an uninterrupted and a resumed run."""
    for owner in (getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)):
        if owner is not None and hasattr(owner, "set_epoch"):
            owner.set_epoch(epoch)
            break
    batch_sampler = getattr(loader, "batch_sampler", None)
    can_skip = hasattr(batch_sampler, "skip_batches")
    if skip and can_skip:
        batch_sampler.skip_batches(skip)
    with torch.random.fork_rng(devices=[]):
        batches = iter(loader)
    if skip and not can_skip:
        warnings.warn(
            f"the loader cannot skip batches: loading and discarding {skip} batches to resume mid-epoch",
            stacklevel=3,
        )
        return itertools.islice(batches, skip, None)
    return batches


def _log_window(ctx: TrainContext) -> None:
    window, ctx._window = ctx._window, []
    keys = [k for k in window[-1] if k not in ("iteration", "epoch")]
    means = {k: sum(r[k] for r in window if k in r) / sum(1 for r in window if k in r) for k in keys}
    ctx.writer.add_scalars({f"train/{k}": v for k, v in means.items()}, step=ctx.iteration)
    if ctx.is_main:
        terms = " ".join(f"{k} {v:.4g}" for k, v in means.items() if k != "lr")
        log.info(
            "epoch %d iter %d/%d lr %.3g %s", window[-1]["epoch"], ctx.iteration, ctx.total_iters, means["lr"], terms
        )


def _nonfinite_note(ctx: TrainContext) -> str:
    if ctx.last_checkpoint is None:
        return " No checkpoint was written before it."
    path, iteration = ctx.last_checkpoint
    return (
        f" The last good checkpoint is {path} (iteration {iteration}); "
        "resume from it with a lower lr, or check the data of this iteration."
    )


def train_one_epoch(ctx: TrainContext, loader: Any, stop_at: Optional[int] = None) -> None:
    """Train from ``ctx.iteration`` to the end of its epoch (or ``ctx.total_iters`` /
    ``stop_at`` iterations, whichever comes first), logging and checkpointing on the way."""
    cfg = ctx.config
    epoch, skip = ctx.epoch, ctx.iteration % ctx.iters_per_epoch
    end = min((epoch + 1) * ctx.iters_per_epoch, ctx.total_iters, stop_at if stop_at is not None else math.inf)
    ctx.model.train()
    for batch in itertools.islice(_batches(loader, epoch, skip), max(end - ctx.iteration, 0)):
        lr = ctx.lr_at(ctx.iteration)
        try:
            record = train_step(
                ctx.model,
                move_to_device(batch, ctx.device),
                ctx.optimizer,
                ctx.scheduler,
                iteration=ctx.iteration,
                epoch=epoch,
                clip_grad_norm=cfg.clip_grad_norm,
                amp=cfg.amp,
                device_type=ctx.device.type,
            )
        except NonFiniteLossError as err:
            raise NonFiniteLossError(err.iteration, err.epoch, err.values, err.what, _nonfinite_note(ctx)) from None
        record = {"iteration": ctx.iteration, "epoch": epoch, "lr": lr, **record}
        ctx.iteration += 1
        if ctx.is_main:
            ctx.history.train.append(record)
            ctx._window.append(record)
            if ctx.progress is not None:
                ctx.progress.update(1)
                ctx.progress.set_postfix(loss=f"{record['loss']:.4g}", lr=f"{lr:.3g}", refresh=False)
            if ctx.iteration % cfg.log_every == 0:
                _log_window(ctx)
        if cfg.checkpoint_every and ctx.iteration % cfg.checkpoint_every == 0:
            ctx.save()
    if ctx.iteration < end:
        raise RuntimeError(
            f"the loader ended after {ctx.iteration - epoch * ctx.iters_per_epoch} batches of epoch {epoch} "
            f"but len(loader) is {ctx.iters_per_epoch}"
        )


def _evaluate(ctx: TrainContext, eval_fn: EvalFn) -> None:
    """Run ``eval_fn(module)`` on every rank (it may shard videos and gather on rank 0)."""
    ctx.module.eval()
    with torch.no_grad():
        metrics = eval_fn(ctx.module)
    ctx.module.train()
    if ctx.is_main and metrics:
        ctx.history.eval.append({"epoch": ctx.epoch, "iteration": ctx.iteration, **metrics})
        numeric = {
            f"eval/{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        if numeric:
            ctx.writer.add_scalars(numeric, step=ctx.iteration)
        log.info("eval at iteration %d: %s", ctx.iteration, metrics)


def _progress_bar(enabled: bool, total: int, initial: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", dynamic_ncols=True)


def fit(
    model: nn.Module,
    train_loader: Union[DataLoader, Any],
    config: TrainConfig,
    out_dir: Union[str, Path],
    resume: Union[str, Path, None] = None,
    eval_fn: Optional[EvalFn] = None,
    stop_after: Optional[int] = None,
) -> TrainHistory:
    """Train ``model`` on ``train_loader`` following ``config``; write checkpoints, scalars and
    the final ``model.safetensors`` to ``out_dir``.

    Args:
        model: in train mode ``model(*batch)`` (tuple/list batches) or ``model(batch)`` returns a
            dict of scalar loss tensors; their sum is minimised. Moved to the device here.
        train_loader: a sized iterable of batches (``len()`` = batches per epoch per process).
        resume: a checkpoint file, a run directory holding ``checkpoint.pt``, or ``"auto"``
            (resume from ``out_dir/checkpoint.pt`` if it exists, else start afresh).
        eval_fn: ``eval_fn(module) -> {metric: value}``, called on every rank with the unwrapped
            model in eval mode under ``no_grad`` (see ``config.eval_every_epochs``).
        stop_after: stop once this many iterations (counted from the run's start) are done,
            writing a checkpoint: splits a long run across time-limited jobs.

    Under torchrun the process group is started here and the model wrapped in
    DistributedDataParallel. A NaN/inf loss raises :class:`NonFiniteLossError` naming the
    iteration and the loss terms; the last checkpoint is left untouched.
    """
    info = init_distributed()
    is_main = info.rank == 0
    out_dir = Path(out_dir)
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device, info)
    seed_everything(config.seed + info.rank)
    module = model.to(device)
    iters_per_epoch = len(train_loader)
    total_iters = config.total_iters(iters_per_epoch)
    optimizer = build_optimizer(module, config)
    scheduler = build_scheduler(optimizer, config, iters_per_epoch)
    if resume == "auto":
        resume = out_dir if (out_dir / CHECKPOINT_FILE).is_file() else None
    start = 0
    last_checkpoint = None
    log_window: list[dict[str, float]] = []
    if resume is not None:
        checkpoint = load_checkpoint(resume)
        resume_path = resolve_checkpoint_path(resume)
        start = restore_checkpoint(checkpoint, module, optimizer, scheduler, iters_per_epoch, config, info,
                                   source=str(resume_path))
        last_checkpoint = (resume_path, start)
        log_window = list(checkpoint.get("log_window", []))
        del checkpoint
    train_model = module
    if info.distributed:
        train_model = nn.parallel.DistributedDataParallel(
            module,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=config.find_unused_parameters,
        )
    ctx = TrainContext(
        model=train_model,
        module=module,
        optimizer=optimizer,
        scheduler=scheduler,
        config=config,
        out_dir=out_dir,
        device=device,
        iters_per_epoch=iters_per_epoch,
        total_iters=total_iters,
        iteration=start,
        writer=ScalarWriter(out_dir, enabled=is_main, resume_step=start if resume is not None else None),
        history=TrainHistory(start_iteration=start, total_iterations=total_iters),
        is_main=is_main,
        progress=_progress_bar(is_main and config.progress, total_iters, start),
        last_checkpoint=last_checkpoint,
        _window=log_window,
    )
    try:
        while ctx.iteration < total_iters:
            if stop_after is not None and ctx.iteration >= stop_after:
                break
            train_one_epoch(ctx, train_loader, stop_at=stop_after)
            at_epoch_end = ctx.iteration % iters_per_epoch == 0
            if at_epoch_end and ctx.iteration < total_iters:
                if config.checkpoint_each_epoch:
                    ctx.save()
                if eval_fn is not None and config.eval_every_epochs and ctx.epoch % config.eval_every_epochs == 0:
                    _evaluate(ctx, eval_fn)
        ctx.save()
        ctx.history.end_iteration = ctx.iteration
        ctx.history.stopped_early = ctx.iteration < total_iters
        if not ctx.history.stopped_early:
            if is_main:
                export_safetensors(module, out_dir / EXPORT_FILE, metadata={"iteration": ctx.iteration})
            if eval_fn is not None:
                _evaluate(ctx, eval_fn)
        barrier()
    finally:
        ctx.writer.close()
        if ctx.progress is not None:
            ctx.progress.close()
    return ctx.history

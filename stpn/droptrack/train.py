"""Train DropTrack on the shared engine with the tracking package's samples
(:class:`~stpn.tracking.pairs.TrackingPairs`) and the online settings it implies.

OSTrack's sampling differs from MixFormer's defaults: search factor 4 (256 px), centre jitter 3,
scale jitter 0.25 (:data:`DROPTRACK_PAIRS`, applied under the config's ``pairs``). The run
directory holds ``droptrack.json``, the engine's ``checkpoint.pt`` and ``model.safetensors``.
With a keep-ratio ramp the loader yields ``(batch, epoch)`` (:class:`EpochTaggedLoader`), so
the objective knows the epoch; the epoch is the batch sampler's, which the engine sets, so a
resumed run sees the same ratios.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from stpn.droptrack.candidate_elimination import KeepRatioRamp
from stpn.droptrack.checkpoint import save_droptrack_config
from stpn.droptrack.model import DropTrack
from stpn.droptrack.objective import DropTrackObjective
from stpn.engine import TrainConfig, TrainHistory, fit, init_distributed, make_train_loader
from stpn.tracking.pairs import PairSettings, TrackingPairs, collate_tracking
from stpn.tracking.sequences import TrackSequence
from stpn.tracking.train import online_settings_for, pair_settings_for

DROPTRACK_PAIRS = dict(search_factor=4.0, centre_jitter=3.0, scale_jitter=0.25)
EvalFn = Callable[[DropTrack], Optional[Mapping[str, Any]]]


class EpochTaggedLoader:
    """A training loader whose batches come as ``(batch, epoch)``; ``batch_sampler`` (the
    engine's resumable one, whose ``set_epoch`` the loop calls) and ``len`` are the loader's."""

    def __init__(self, loader) -> None:
        self.loader = loader
        self.batch_sampler = loader.batch_sampler

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        batches = iter(self.loader)  # created now, under the engine's forked RNG
        epoch = self.batch_sampler.epoch
        return ((batch, epoch) for batch in batches)


def droptrack_pair_settings(overrides: Optional[Mapping[str, Any]] = None, where: str = "") -> PairSettings:
    """:class:`PairSettings` from OSTrack's defaults with ``overrides`` (a config's ``pairs``)."""
    return PairSettings.from_dict({**DROPTRACK_PAIRS, **dict(overrides or {})}, where, section="pairs")


def train_droptrack(
    tracker: DropTrack,
    model_kwargs: Mapping[str, Any],
    sequences: Sequence[TrackSequence],
    settings: PairSettings,
    config: TrainConfig,
    out_dir: Union[str, Path],
    samples_per_epoch: Optional[int] = None,
    num_workers: int = 0,
    resume: Optional[Union[str, Path]] = None,
    eval_fn: Optional[EvalFn] = None,
    stop_after: Optional[int] = None,
    online: Optional[Mapping[str, Any]] = None,
    loss: Optional[Mapping[str, Any]] = None,
    keep_ramp: Optional[KeepRatioRamp] = None,
) -> TrainHistory:
    """Train ``tracker`` (built with ``build_droptrack(**model_kwargs)``) in place and write its
    run directory; arguments as :func:`stpn.tracking.train.train_stage`, ``loss`` =
    :class:`~stpn.droptrack.objective.DropTrackObjective` weights, ``keep_ramp`` the candidate
    elimination's training ramp (used only when the tracker eliminates)."""
    settings = pair_settings_for(tracker, settings)
    out_dir = Path(out_dir)
    online_settings = online_settings_for(settings, online)
    if init_distributed().rank == 0:
        save_droptrack_config(out_dir, dict(model_kwargs), online_settings)
    pairs = TrackingPairs(sequences, settings, samples_per_epoch, seed=config.seed)
    loader = make_train_loader(pairs, config.batch_size or 32, seed=config.seed, collate_fn=collate_tracking,
                               num_workers=num_workers, persistent_workers=num_workers > 0)
    objective = DropTrackObjective(tracker, **dict(loss or {}), keep_ramp=keep_ramp)
    if keep_ramp is not None and tracker.ce_layers:
        loader = EpochTaggedLoader(loader)
    tracker_eval = None if eval_fn is None else (lambda _module: eval_fn(tracker))
    return fit(objective, loader, config, out_dir, resume=resume, eval_fn=tracker_eval, stop_after=stop_after)


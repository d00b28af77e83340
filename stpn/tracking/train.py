"""Train a MixFormer tracker (+ STPN) in MixFormer's two stages on the shared engine: the
functions behind ``stpn train-track`` and the built-in tracking benchmark.

A stage's run directory is a tracker run directory (:mod:`stpn.tracking.checkpoint`):
``tracker.json`` (the ``build_mixformer`` arguments and the online settings), the engine's
``checkpoint.pt`` (resumable) and, once the stage is complete, ``model.safetensors``. A
two-stage run writes ``OUT/stage1`` (box stage) and ``OUT/stage2`` (score stage, the tracker to
use: its box path equals stage 1's, its score head is trained).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from stpn.engine import TrainConfig, TrainHistory, fit, init_distributed, make_train_loader
from stpn.tracking.checkpoint import WEIGHT_FILES, load_state_dict, read_tracker_config, save_tracker_config
from stpn.tracking.model import MixFormer
from stpn.tracking.objective import TrackerObjective
from stpn.tracking.pairs import PairSettings, TrackingPairs, collate_tracking
from stpn.tracking.sequences import TrackSequence

STAGE_DIRS = {"box": "stage1", "score": "stage2"}
EvalFn = Callable[[MixFormer], Optional[Mapping[str, Any]]]


def pair_settings_for(tracker: MixFormer, settings: PairSettings) -> PairSettings:
    """``settings`` with the tracker's crop sizes; an STPN tracker needs support frames."""
    if tracker.has_stpn and settings.num_support < 1:
        raise ValueError("an STPN tracker trains with support frames: set num_support >= 1 in the pair settings")
    return replace(settings, template_size=tracker.template_size, search_size=tracker.search_size,
                   num_support=settings.num_support if tracker.has_stpn else 0)


def online_settings_for(settings: PairSettings, online: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """OnlineTracker settings matching the training crops and support frames (``online``
    entries win)."""
    derived = {"template_factor": settings.template_factor, "search_factor": settings.search_factor}
    if settings.num_support:
        derived.update(num_support=settings.num_support, support_stride=settings.support_stride)
    return {**derived, **dict(online or {})}


def train_stage(
    tracker: MixFormer,
    model_kwargs: Mapping[str, Any],
    sequences: Sequence[TrackSequence],
    settings: PairSettings,
    config: TrainConfig,
    out_dir: Union[str, Path],
    stage: str = "box",
    samples_per_epoch: Optional[int] = None,
    num_workers: int = 0,
    resume: Optional[Union[str, Path]] = None,
    eval_fn: Optional[EvalFn] = None,
    stop_after: Optional[int] = None,
    online: Optional[Mapping[str, Any]] = None,
    objective_options: Optional[Mapping[str, Any]] = None,
) -> TrainHistory:
    """Train one stage of ``tracker`` in place and write its run directory.

    Args:
        tracker: built with ``build_mixformer(**model_kwargs)`` (stage ``"score"``: with the
            stage-1 weights loaded, :func:`load_weights`).
        model_kwargs: written to ``tracker.json`` (without ``weights``).
        sequences / settings / samples_per_epoch: the training samples
            (:class:`~stpn.tracking.pairs.TrackingPairs`; crop sizes follow the tracker).
        config: optimiser and schedule (``batch_size`` is the global batch; default 32).
        stage: ``"box"`` (stage 1) or ``"score"`` (stage 2, only ``score_head.*`` trains).
        resume / eval_fn / stop_after: as :func:`stpn.engine.fit` (``eval_fn`` gets the tracker).
        online: extra OnlineTracker settings for ``tracker.json``.
        objective_options: extra :class:`~stpn.tracking.objective.TrackerObjective` arguments
            (e.g. ``{"giou_weight": 0.0}``).
    """
    settings = pair_settings_for(tracker, settings)
    out_dir = Path(out_dir)
    if init_distributed().rank == 0:  # (fit would start the process group anyway)
        save_tracker_config(out_dir, dict(model_kwargs), online_settings_for(settings, online))
    pairs = TrackingPairs(sequences, settings, samples_per_epoch, seed=config.seed)
    loader = make_train_loader(pairs, config.batch_size or 32, seed=config.seed, collate_fn=collate_tracking,
                               num_workers=num_workers, persistent_workers=num_workers > 0)
    objective = TrackerObjective(tracker, stage, **dict(objective_options or {}))
    tracker_eval = None if eval_fn is None else (lambda _module: eval_fn(tracker))
    return fit(objective, loader, config, out_dir, resume=resume, eval_fn=tracker_eval, stop_after=stop_after)


def load_weights(tracker: MixFormer, run_dir: Union[str, Path]) -> MixFormer:
    """Load a run directory's (or weight file's) weights into ``tracker`` (e.g. stage 1 → 2)."""
    _, weights = read_tracker_config(run_dir)
    tracker.load_state_dict(load_state_dict(weights))
    return tracker


def stage_complete(run_dir: Union[str, Path]) -> bool:
    """Whether a stage directory holds its final export (``model.safetensors``)."""
    return (Path(run_dir) / WEIGHT_FILES[0]).is_file()


def train_two_stages(
    tracker: MixFormer,
    model_kwargs: Mapping[str, Any],
    sequences: Sequence[TrackSequence],
    settings: PairSettings,
    stage1: TrainConfig,
    stage2: Optional[TrainConfig],
    out_dir: Union[str, Path],
    stage2_settings: Optional[Mapping[str, Any]] = None,
    samples_per_epoch: Optional[int] = None,
    num_workers: int = 0,
    resume: bool = False,
    eval_fn: Optional[EvalFn] = None,
    online: Optional[Mapping[str, Any]] = None,
    objective_options: Optional[Mapping[str, Any]] = None,
) -> dict[str, TrainHistory]:
    """Stage 1 into ``out_dir/stage1``, then (unless ``stage2`` is None) stage 2 into
    ``out_dir/stage2`` starting from stage 1's weights, with ``settings`` updated by
    ``stage2_settings`` (MixFormer: ``{"negative_prob": 0.5}``). With ``resume``, a complete
    stage is loaded instead of retrained and an interrupted one continues from its checkpoint.
    ``objective_options`` go to both stages' objectives (see :func:`train_stage`).
    Returns the histories of the stages run."""
    out_dir = Path(out_dir)
    histories: dict[str, TrainHistory] = {}
    plan = [("box", stage1, settings)]
    if stage2 is not None:
        plan.append(("score", stage2, replace(settings, **dict(stage2_settings or {"negative_prob": 0.5}))))
    for stage, config, stage_settings in plan:
        run_dir = out_dir / STAGE_DIRS[stage]
        if resume and stage_complete(run_dir):
            load_weights(tracker, run_dir)
            continue
        histories[stage] = train_stage(
            tracker, model_kwargs, sequences, stage_settings, config, run_dir, stage, samples_per_epoch,
            num_workers, resume="auto" if resume else None, eval_fn=eval_fn if stage == plan[-1][0] else None,
            online=online, objective_options=objective_options,
        )
    return histories

"""Train a segmenter on the shared engine (the function behind ``stpn train-vss``).

The engine's optimiser is AdamW with linear warm-up and step decay (:mod:`stpn.engine.optim`,
:mod:`stpn.engine.schedule`); the paper's SGD (momentum 0.9) with poly decay would need a change
to the engine, so the configs use AdamW with one ×0.1 step late in training instead. The
paper's second half of training on unlabelled frames is not done: the benchmark labels every
frame, and we train on labelled current frames throughout.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from stpn.engine import TrainConfig, TrainHistory, fit, make_train_loader
from stpn.vss.data import SegmentationClips
from stpn.vss.model import VideoSegmenter
from stpn.vss.run import SyntheticVideos, save_run_file
from stpn.vss.synthetic import SegmentationVideo

HISTORY = 7  # every training sample has this many earlier frames (the paper's key-frame count)


def train_segmenter(model: VideoSegmenter, model_kwargs: dict[str, Any], videos: Sequence[SegmentationVideo],
                    config: TrainConfig, out_dir: Union[str, Path], eval_data: Optional[SyntheticVideos] = None,
                    resume: Optional[Union[str, Path]] = None, num_workers: int = 0) -> TrainHistory:
    """Train ``model`` (built with ``build_segmenter(**model_kwargs)``) in place on clips of
    ``videos`` and write the run directory (``vss.json`` + the engine's files)."""
    save_run_file(out_dir, model_kwargs, eval_data or SyntheticVideos())
    clip_length = model.num_key_frames + 1 if model.temporal else 1
    clips = SegmentationClips(videos, clip_length, history=max(HISTORY, model.num_key_frames))
    loader = make_train_loader(clips, config.batch_size or 8, seed=config.seed, num_workers=num_workers)
    return fit(model, loader, config, out_dir, resume=resume)

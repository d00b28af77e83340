"""Train a segmenter on the shared engine (the function behind ``stpn train-vss``).

The optimiser and schedule are the config's ``train`` settings on the engine
(:mod:`stpn.engine.optim`, :mod:`stpn.engine.schedule`): the Cityscapes / CamVid presets use the
paper's SGD (momentum 0.9) with poly decay, the small benchmark configs AdamW with step decay.

Benchmark videos (every frame labelled) train on labelled current frames throughout. Recorded
videos (Cityscapes, CamVid) train on their labelled frames (:class:`RecordedClips`); with
``unlabelled_from: f`` in the data section, the first ``f`` of the iterations do so, and the rest
also on unlabelled frames (:class:`WithUnlabelledFrames`: half the samples end on an unlabelled
frame, trained on confident pseudo-labels, :mod:`stpn.vss.model`), as the paper's "first 40k
iterations labeled data, the rest 40k both" with ``f = 0.5``. The two phases are two ``fit``
calls on one run directory: the first stops at the switch and checkpoints, the second resumes
from there (both datasets have the same length, so the engine's resume check holds).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from stpn.engine import TrainConfig, TrainHistory, fit, make_train_loader
from stpn.vss.data import SegmentationClips
from stpn.vss.model import VideoSegmenter
from stpn.vss.recorded_data import RecordedClips, WithUnlabelledFrames
from stpn.vss.run import save_run_file
from stpn.vss.sources import RecordedVideos, SyntheticVideos, VideoSource

HISTORY = 7  # every training sample has this many earlier frames (the paper's key-frame count)


def train_segmenter(model: VideoSegmenter, model_kwargs: dict[str, Any], videos: Sequence,
                    config: TrainConfig, out_dir: Union[str, Path], eval_data: Optional[VideoSource] = None,
                    resume: Optional[Union[str, Path]] = None, num_workers: int = 0,
                    recorded: Optional[RecordedVideos] = None) -> TrainHistory:
    """Train ``model`` (built with ``build_segmenter(**model_kwargs)``) in place on clips of
    ``videos`` (benchmark :class:`~stpn.vss.synthetic.SegmentationVideo` s, or with ``recorded``
    the :class:`~stpn.data.formats.cityscapes.LabelledSequence` s it loaded) and write the run
    directory (``vss.json`` + the engine's files)."""
    save_run_file(out_dir, model_kwargs, eval_data or SyntheticVideos())
    clip_length = model.num_key_frames + 1 if model.temporal else 1
    batch = config.batch_size or 8
    if recorded is None:
        clips = SegmentationClips(videos, clip_length, history=max(HISTORY, model.num_key_frames))
        return fit(model, make_train_loader(clips, batch, seed=config.seed, num_workers=num_workers), config,
                   out_dir, resume=resume)
    labelled = RecordedClips(videos, clip_length, recorded.crop, recorded.scale, recorded.flip)
    loader = make_train_loader(labelled, batch, seed=config.seed, num_workers=num_workers)
    if recorded.unlabelled_from is None:
        return fit(model, loader, config, out_dir, resume=resume)
    if not labelled.unlabelled:
        raise ValueError(f"{recorded.root}: no unlabelled frames for `unlabelled_from` (CamVid: put the videos' "
                         "frames in sequences/<seq>/, docs/vss.md)")
    mixed = make_train_loader(WithUnlabelledFrames(labelled), batch, seed=config.seed, num_workers=num_workers)
    switch = round(recorded.unlabelled_from * config.total_iters(len(loader)))
    if switch > 0:
        fit(model, loader, config, out_dir, resume=resume, stop_after=switch)
        resume = out_dir
    return fit(model, mixed, config, out_dir, resume=resume)

"""Train a segmenter on the shared engine (the function behind ``stpn train-vis``): per-frame
samples (:mod:`stpn.vis.data`), Mask2Former's set loss per frame, AdamW with the recipe's
backbone multiplier, step decay, gradient clipping, DDP, resume, progress and TensorBoard
scalars all from :func:`stpn.engine.fit`."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional, Union

from stpn.data.types import VideoDataset
from stpn.engine import TrainConfig, TrainHistory, fit, init_distributed, is_main_process, make_train_loader
from stpn.prompts.settings import DEFAULT_INFERENCE, InferenceSettings
from stpn.vis.checkpoint import write_vis_run_file
from stpn.vis.config import SegmenterConfig
from stpn.vis.data import collate_segmentation, segmentation_samples
from stpn.vis.model import VideoInstanceSegmenter
from stpn.vis.sections import VisDataConfig


def train_segmenter(model: VideoInstanceSegmenter, model_config: SegmenterConfig, dataset: VideoDataset,
                    data: VisDataConfig, config: TrainConfig, out_dir: Union[str, Path],
                    inference: InferenceSettings = DEFAULT_INFERENCE, resume: Optional[Union[str, Path]] = None,
                    num_workers: int = 0) -> TrainHistory:
    """Train ``model`` (built from ``model_config``) in place on the frames of ``dataset`` and
    write the run directory (``vis.json`` + the engine's files)."""
    if list(dataset.categories) != list(model.class_names):
        raise ValueError(f"the dataset's classes {dataset.categories} differ from the model's {model.class_names}")
    init_distributed()  # under torchrun only rank 0 writes vis.json (ranks would race on its temporary file)
    if is_main_process():
        write_vis_run_file(out_dir, replace(model_config, class_names=list(model.class_names)), inference,
                           data.to_dict())
    samples = segmentation_samples(dataset, model.stpn is not None, data.train_sizes, data.max_size,
                                   data.max_offset, data.support_per_side, data.flip, data.key_frames)
    loader = make_train_loader(samples, config.batch_size or 8, seed=config.seed,
                               collate_fn=collate_segmentation, num_workers=num_workers)
    return fit(model, loader, config, out_dir, resume=resume)

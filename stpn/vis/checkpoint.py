"""Segmenter run directories: ``vis.json`` beside the engine's ``checkpoint.pt`` and
``model.safetensors`` (:data:`stpn.engine.checkpoint.WEIGHT_FILES`).

``vis.json`` is ``{"format": 1, "task": "vis", "model": SegmenterConfig (class names filled
in), "inference": InferenceSettings, "data": the training data section}``; it is written before
training starts, so an interrupted run can be resumed and its checkpoint read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch

from stpn.outputs import write_text_atomic
from stpn.prompts.settings import InferenceSettings
from stpn.vis.config import SegmenterConfig, build_from_config
from stpn.vis.model import VideoInstanceSegmenter

RUN_FILE = "vis.json"
FORMAT = 1


@dataclass(frozen=True)
class VisRun:
    """What a run directory says besides the weights: the model and its test-time settings."""

    model: SegmenterConfig
    inference: InferenceSettings
    data: dict


def write_vis_run_file(out_dir: Union[str, Path], model: SegmenterConfig, inference: InferenceSettings,
                       data: Optional[dict] = None) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"format": FORMAT, "task": "vis", "model": model.to_dict(), "inference": inference.to_dict(),
              "data": data or {}}
    return write_text_atomic(out_dir / RUN_FILE, json.dumps(record, indent=2))


def _parse(record: dict, path: Path) -> VisRun:
    if record.get("task") != "vis" or record.get("format") != FORMAT:
        raise ValueError(f"{path}: not a video instance segmentation run file (task {record.get('task')!r}, "
                         f"format {record.get('format')!r}; expected 'vis', {FORMAT})")
    model = SegmenterConfig.from_dict(record.get("model"), str(path))
    if not model.class_names:
        raise ValueError(f"{path}: `model.class_names` is missing")
    inference = InferenceSettings.from_dict(record.get("inference") or {}, str(path))
    return VisRun(model, inference, dict(record.get("data") or {}))


def load_vis_run(path: Union[str, Path], device: Union[str, torch.device, None] = None
                 ) -> tuple[VideoInstanceSegmenter, VisRun]:
    """The trained segmenter of a ``train-vis`` run directory (or one of its weight files), in
    eval mode on ``device`` (default CPU), and the run's :class:`VisRun`."""
    from stpn.engine.checkpoint import load_model_state, read_model_state, read_run_record

    run, weights = read_run_record(path, RUN_FILE, "train-vis", _parse)
    model = build_from_config(run.model)
    load_model_state(model, read_model_state(weights), weights)
    return model.to(device or "cpu").eval(), run

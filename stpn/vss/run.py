"""VSS configs and run directories.

A config (``configs/vss_*.yaml``) has the sections

* ``model``: :func:`stpn.vss.model.build_segmenter` arguments (``num_classes`` comes from the
  data: background + the benchmark's classes, or Cityscapes' 19, CamVid's 11);
* ``pretrained``: optional ``{"backbone": path}``, a local ResNet-18 state dict;
* ``data`` / ``eval_data``: the training and evaluation videos, ``format: synthetic`` (default,
  :class:`~stpn.vss.sources.SyntheticVideos`) or ``cityscapes`` / ``camvid`` with a ``root``
  (:class:`~stpn.vss.sources.RecordedVideos`); without ``eval_data``, the benchmark's defaults
  or the dataset's ``val`` split;
* ``train``: :class:`stpn.engine.TrainConfig`.

A run directory holds ``vss.json`` (``{"format": 1, "model": ..., "eval_data": ...}``) beside the
engine's ``checkpoint.pt`` and ``model.safetensors``.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any, Union

from stpn.config_file import read_sections
from stpn.strict_fields import check_kwargs
from stpn.vss.model import VideoSegmenter, build_segmenter
from stpn.vss.sources import SYNTHETIC_CLASSES, VideoSource, default_eval_source, read_source

SECTIONS = ("model", "pretrained", "data", "eval_data", "train")
RUN_FILE = "vss.json"
NUM_CLASSES = SYNTHETIC_CLASSES  # of the built-in benchmark


def load_vss_config(path: Union[str, Path]) -> dict[str, Any]:
    """The checked config: ``model`` (kwargs), ``pretrained``, ``data`` / ``eval_data``
    (:data:`~stpn.vss.sources.VideoSource`) and ``train`` (:class:`~stpn.engine.TrainConfig`)."""
    from stpn.engine import TrainConfig

    raw = read_sections(path, SECTIONS, required=("model", "data", "train"))
    where = str(path)
    model = check_kwargs(build_segmenter, raw["model"], where, skip=("num_classes", "weights"), section="model")
    pretrained = raw.get("pretrained") or {}
    unknown = sorted(set(pretrained) - {"backbone"})
    if unknown:
        raise ValueError(f"{where}: unknown `pretrained` keys {unknown}; known: backbone")
    data = read_source(raw["data"], where, "data")
    eval_data = read_source(raw["eval_data"], where, "eval_data") if raw.get("eval_data") else default_eval_source(data)
    return {"model": model, "pretrained": pretrained.get("backbone"), "data": data, "eval_data": eval_data,
            "train": TrainConfig.from_dict(raw["train"], where, section="train")}


def save_run_file(out_dir: Union[str, Path], model_kwargs: dict[str, Any], eval_data: VideoSource) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RUN_FILE
    path.write_text(json.dumps({"format": 1, "model": model_kwargs, "eval_data": asdict(eval_data)}, indent=2))
    return path


def _check_run_record(info: dict, file: Path) -> dict:
    try:
        return {**info, "model": dict(info["model"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{file}: not a vss run file ({exc})") from None


def load_run(path: Union[str, Path]) -> tuple[VideoSegmenter, dict[str, Any]]:
    """The trained segmenter of a run directory (or one of its weight files) and its ``vss.json``."""
    from stpn.engine.checkpoint import load_model_state, read_model_state, read_run_record

    info, weights = read_run_record(path, RUN_FILE, "train-vss", _check_run_record)
    model = build_segmenter(**info["model"])
    load_model_state(model, read_model_state(weights), weights)
    info["eval_data"] = read_source(info.get("eval_data") or {}, str(weights.parent / RUN_FILE), "eval_data")
    return model.eval(), info

"""VSS configs and run directories.

A config (``configs/vss_*.yaml``) has the sections

* ``model``: :func:`stpn.vss.model.build_segmenter` arguments (``num_classes`` comes from the
  data: background + the benchmark's classes);
* ``pretrained``: optional ``{"backbone": path}``, a local ResNet-18 state dict;
* ``data`` / ``eval_data``: :class:`SyntheticVideos` of the training and evaluation videos;
* ``train``: :class:`stpn.engine.TrainConfig`.

A run directory holds ``vss.json`` (``{"format": 1, "model": ..., "eval_data": ...}``) beside the
engine's ``checkpoint.pt`` and ``model.safetensors``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Union

from stpn.config_file import read_sections
from stpn.data.synthetic import CATEGORIES
from stpn.strict_fields import check_kwargs, from_dict
from stpn.vss.model import VideoSegmenter, build_segmenter

SECTIONS = ("model", "pretrained", "data", "eval_data", "train")
RUN_FILE = "vss.json"
NUM_CLASSES = len(CATEGORIES) + 1  # background + object classes


@dataclass
class SyntheticVideos:
    """Which benchmark videos: ``first_index .. first_index + num_videos - 1`` of ``seed``."""

    num_videos: int = 16
    num_frames: int = 16
    size: int = 64
    seed: int = 0
    severity: float = 1.0
    single_class: bool = False
    first_index: int = 0

    def load(self):
        from stpn.vss.synthetic import segmentation_videos

        return segmentation_videos(self.num_videos, self.num_frames, self.size, self.seed, self.severity,
                                   self.single_class, self.first_index)


def load_vss_config(path: Union[str, Path]) -> dict[str, Any]:
    """The checked config: ``model`` (kwargs), ``pretrained``, ``data`` / ``eval_data``
    (:class:`SyntheticVideos`) and ``train`` (:class:`~stpn.engine.TrainConfig`)."""
    from stpn.engine import TrainConfig

    raw = read_sections(path, SECTIONS, required=("model", "data", "train"))
    where = str(path)
    model = check_kwargs(build_segmenter, raw["model"], where, skip=("num_classes", "weights"), section="model")
    pretrained = raw.get("pretrained") or {}
    unknown = sorted(set(pretrained) - {"backbone"})
    if unknown:
        raise ValueError(f"{where}: unknown `pretrained` keys {unknown}; known: backbone")
    return {"model": model, "pretrained": pretrained.get("backbone"),
            "data": from_dict(SyntheticVideos, raw["data"], where, section="data"),
            "eval_data": from_dict(SyntheticVideos, raw.get("eval_data") or {}, where, section="eval_data"),
            "train": TrainConfig.from_dict(raw["train"], where, section="train")}


def save_run_file(out_dir: Union[str, Path], model_kwargs: dict[str, Any], eval_data: SyntheticVideos) -> Path:
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
    info["eval_data"] = from_dict(SyntheticVideos, info.get("eval_data") or {}, str(weights.parent / RUN_FILE),
                                  section="eval_data")
    return model.eval(), info

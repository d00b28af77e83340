"""A video instance segmentation run config (``configs/ytvis19_*.yaml``, ``configs/vis_*.yaml``).

Sections, each checked strictly (:mod:`stpn.strict_fields`: an unknown key or a wrong type is a
one-line error naming the file, the section and the key):

* ``model``: :class:`~stpn.vis.config.SegmenterConfig`;
* ``data``: :class:`VisDataConfig`, a dataset on disk (``root``) or the built-in benchmark;
* ``train``: :class:`~stpn.engine.TrainConfig`;
* ``pretrained`` (optional): ``coco`` (a local COCO Mask2Former checkpoint in transformers'
  layout, :mod:`stpn.vis.coco_weights`) and / or ``backbone`` (a local timm Swin checkpoint);
* ``inference`` (optional): :class:`~stpn.prompts.settings.InferenceSettings` saved with the model;
* ``eval`` (optional): :class:`VisEvalConfig`, the YouTube-VIS file ``stpn eval-vis --config``
  evaluates on.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

from stpn.config_file import read_sections
from stpn.data.types import VideoDataset
from stpn.prompts.settings import InferenceSettings
from stpn.strict_fields import from_dict
from stpn.vis.config import SegmenterConfig

SECTIONS = ("model", "data", "train", "pretrained", "inference", "eval")
YTVIS_TRAIN_SIZES = (288, 320, 352, 384, 416, 448, 480, 512)


@dataclass(frozen=True)
class VisDataConfig:
    """Training frames. ``root`` (with ``format``, detected when ``None``, and ``split``): a
    dataset with instance masks, e.g. YouTube-VIS 2019; ``root: null`` uses the built-in
    benchmark (``num_videos`` videos of ``num_frames`` frames, ``size`` pixels, ``seed``,
    ``severity``, ``single_class``: :func:`stpn.data.synthetic.generate_dataset`).
    ``train_sizes`` / ``max_size``: random short side / longest side; ``max_offset`` /
    ``support_per_side``: the STPN support sampler; ``key_frames``: ``"annotated"`` or ``"all"``."""

    root: Optional[str] = None
    format: Optional[str] = None
    split: str = "train"
    num_videos: int = 8
    num_frames: int = 16
    size: int = 64
    seed: int = 0
    severity: float = 1.0
    single_class: bool = False
    train_sizes: tuple[int, ...] = YTVIS_TRAIN_SIZES
    max_size: int = 1333
    max_offset: int = 9
    support_per_side: int = 1
    key_frames: str = "annotated"
    flip: bool = True

    def __post_init__(self) -> None:
        if not self.train_sizes or min(self.train_sizes) < 1:
            raise ValueError(f"train_sizes must be positive integers, got {list(self.train_sizes)}")
        for name in ("max_size", "max_offset", "support_per_side", "num_videos", "num_frames"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.key_frames not in ("annotated", "all"):
            raise ValueError(f"key_frames must be 'annotated' or 'all', got {self.key_frames!r}")

    def load(self) -> VideoDataset:
        if self.root is None:
            from stpn.data.synthetic import generate_dataset

            return generate_dataset(self.num_videos, self.num_frames, self.size, self.seed, self.severity,
                                    single_class=self.single_class)
        from stpn.data.formats import read_dataset

        return read_dataset(self.root, self.format, self.split)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["train_sizes"] = list(self.train_sizes)
        return out


@dataclass(frozen=True)
class VisEvalConfig:
    """``data``: a YouTube-VIS JSON to evaluate on (paths as given, relative to the working
    directory like ``data.root``); ``images``: its frame folder (default
    ``<data folder>/<data name>/JPEGImages``, as the official download)."""

    data: Optional[str] = None
    images: Optional[str] = None


@dataclass(frozen=True)
class VisRunConfig:
    model: SegmenterConfig
    data: VisDataConfig
    train: Any = None  # TrainConfig
    coco_weights: Optional[str] = None
    backbone_weights: Optional[str] = None
    inference: InferenceSettings = InferenceSettings()
    eval: VisEvalConfig = VisEvalConfig()


def read_vis_config(path: Union[str, Path]) -> VisRunConfig:
    """The config at ``path``, every section checked."""
    from stpn.engine import TrainConfig

    raw = read_sections(path, SECTIONS, required=("model", "data", "train"))
    where = str(path)
    pretrained = raw.get("pretrained") or {}
    if not isinstance(pretrained, dict):
        raise ValueError(f"{where}: `pretrained` must be a mapping with `coco` and / or `backbone`")
    unknown = sorted(set(pretrained) - {"coco", "backbone"})
    if unknown:
        raise ValueError(f"{where}: unknown `pretrained` keys {unknown}; known: coco, backbone")
    for key, value in pretrained.items():
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{where}: `pretrained.{key}` must be a file path (a string), got {value!r}")
    return VisRunConfig(
        model=SegmenterConfig.from_dict(raw["model"], where),
        data=from_dict(VisDataConfig, raw["data"], where, section="data"),
        train=TrainConfig.from_dict(raw["train"], where, section="train"),
        coco_weights=pretrained.get("coco"), backbone_weights=pretrained.get("backbone"),
        inference=from_dict(InferenceSettings, raw.get("inference") or {}, where, section="inference"),
        eval=from_dict(VisEvalConfig, raw.get("eval") or {}, where, section="eval"),
    )

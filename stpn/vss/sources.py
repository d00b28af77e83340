"""Where the videos of a VSS config come from: the ``data`` / ``eval_data`` sections.

``format: synthetic`` (the default, so older configs read unchanged) is the built-in benchmark
(:class:`SyntheticVideos`); ``format: cityscapes`` / ``camvid`` with ``root`` reads a dataset on
disk (:class:`RecordedVideos`, :mod:`stpn.data.formats.cityscapes`, :mod:`stpn.data.formats.camvid`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional, Union

from stpn.data.formats.camvid import CAMVID_CLASSES
from stpn.data.formats.cityscapes import CITYSCAPES_CLASSES
from stpn.data.synthetic import CATEGORIES
from stpn.strict_fields import from_dict

SYNTHETIC_CLASSES = len(CATEGORIES) + 1  # background + object classes
RECORDED_CLASSES = {"cityscapes": len(CITYSCAPES_CLASSES), "camvid": len(CAMVID_CLASSES)}
FORMATS = ("synthetic", *RECORDED_CLASSES)


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
    format: str = "synthetic"

    def __post_init__(self) -> None:
        if self.format != "synthetic":
            raise ValueError(f"format must be 'synthetic', got {self.format!r}")

    @property
    def num_classes(self) -> int:
        return SYNTHETIC_CLASSES

    def load(self):
        from stpn.vss.synthetic import segmentation_videos

        return segmentation_videos(self.num_videos, self.num_frames, self.size, self.seed, self.severity,
                                   self.single_class, self.first_index)


@dataclass
class RecordedVideos:
    """A Cityscapes or CamVid split on disk and how to cut training clips from it.

    ``crop`` / ``scale`` / ``flip``: training augmentation (:mod:`stpn.vss.recorded_data`).
    ``unlabelled_from``: fraction of the training iterations after which unlabelled frames join
    (:mod:`stpn.vss.train`; null = never). ``context``: in evaluation, how many frames before each
    labelled frame are segmented first (STT's key frames; TC is measured over those frames).
    ``max_sequences``: only the first N sequences (smoke tests)."""

    format: str
    root: str
    split: str = "train"
    crop: int = 768
    scale: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    unlabelled_from: Optional[float] = None
    context: int = 7
    max_sequences: Optional[int] = None

    def __post_init__(self) -> None:
        if self.format not in RECORDED_CLASSES:
            raise ValueError(f"format must be one of {', '.join(RECORDED_CLASSES)}, got {self.format!r}")
        if self.crop < 1 or self.context < 0:
            raise ValueError(f"crop must be >= 1 and context >= 0, got {self.crop} and {self.context}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"scale must be (low, high) with 0 < low <= high, got {list(self.scale)}")
        if self.unlabelled_from is not None and not 0 <= self.unlabelled_from < 1:
            raise ValueError(f"unlabelled_from must be in [0, 1), got {self.unlabelled_from}")

    @property
    def num_classes(self) -> int:
        return RECORDED_CLASSES[self.format]

    def load(self):
        from stpn.data.formats.camvid import read_camvid
        from stpn.data.formats.cityscapes import read_cityscapes

        sequences = (read_cityscapes if self.format == "cityscapes" else read_camvid)(self.root, self.split)
        return sequences[: self.max_sequences] if self.max_sequences is not None else sequences


VideoSource = Union[SyntheticVideos, RecordedVideos]


def read_source(data: Any, where: str, section: str) -> VideoSource:
    """A checked ``data`` / ``eval_data`` mapping (one-line ``ValueError`` naming ``where``)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: section `{section}` must be a mapping of settings, got {data!r}")
    fmt = data.get("format", "synthetic")
    if fmt not in FORMATS:
        raise ValueError(f"{where}: `{section}.format` must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return from_dict(SyntheticVideos if fmt == "synthetic" else RecordedVideos, data, where, section=section)


def default_eval_source(train: VideoSource) -> VideoSource:
    """Without an ``eval_data`` section: the benchmark's defaults, or the same dataset's ``val`` split."""
    return SyntheticVideos() if isinstance(train, SyntheticVideos) else replace(train, split="val")

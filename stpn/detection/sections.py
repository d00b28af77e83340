"""A detection run config (``configs/vid_*.yaml``), every section a checked dataclass.

Sections: ``detector`` (:class:`~stpn.detection.config.DetectorConfig`), ``train``
(:class:`~stpn.engine.TrainConfig`), ``data`` (:class:`DataConfig`), ``eval``
(:class:`EvalConfig`) and ``pretrained`` (a local backbone checkpoint path). All are read with
:func:`stpn.strict_fields.from_dict`, so a typo (``test_sise:``) or a value of the wrong type is
a one-line error naming the file, the key and the expected type.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from stpn.config_file import read_sections
from stpn.prompts.settings import InferenceSettings
from stpn.strict_fields import from_dict

SECTIONS = ("detector", "train", "data", "eval", "pretrained")

Splits = Union[str, tuple[str, ...]]


@dataclass(frozen=True)
class DataConfig:
    """Where the dataset is and how training clips are made.

    ``root`` / ``format`` (auto-detected when ``None``): the dataset (:mod:`stpn.data.formats`).
    ``train_splits`` / ``val_splits``: one split or a list, concatenated. ``key_frames``: which
    frames of the training splits are key frames (``"all"``, ``"annotated"`` or one list file
    per split, :mod:`stpn.data.splits`). ``train_sizes`` / ``max_size``: the multi-scale training
    resize (short side drawn from the list, long side at most ``max_size``). ``max_offset``: the
    training support frames come from ``±max_offset`` frames around the key frame.
    """

    root: str
    format: Optional[str] = None
    train_splits: Splits = ()
    val_splits: Splits = ()
    key_frames: Union[None, str, dict[str, str]] = None
    train_sizes: tuple[int, ...] = tuple(range(480, 801, 32))
    max_size: int = 1333
    max_offset: int = 9

    def __post_init__(self) -> None:
        if not self.train_sizes or min(self.train_sizes) < 1:
            raise ValueError(f"train_sizes must be positive integers, got {list(self.train_sizes)}")
        for name in ("max_size", "max_offset"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def splits(self, which: str) -> Splits:
        """``train_splits`` or ``val_splits`` (``which``: ``"train"`` / ``"val"``); empty is an error."""
        splits = getattr(self, f"{which}_splits")
        if not splits:
            raise ValueError(f"`data.{which}_splits` is empty: name the {which} split(s) of {self.root}")
        return splits


@dataclass(frozen=True)
class EvalConfig:
    """How the detector runs on the validation videos: fields of
    :class:`~stpn.prompts.settings.InferenceSettings`; an unset one (``None``) keeps the value
    saved with the model. ``test_size: 0`` runs at the frames' own resolution."""

    mode: Optional[str] = None
    num_support: Optional[int] = None
    stride: Optional[int] = None
    test_size: Optional[int] = None
    batch_size: Optional[int] = None

    def __post_init__(self) -> None:
        self.apply(InferenceSettings())  # the same checks as the settings themselves

    def apply(self, settings: InferenceSettings) -> InferenceSettings:
        """``settings`` with this section's set fields."""
        return settings.override(mode=self.mode, num_support=self.num_support, stride=self.stride,
                                 test_size=self.test_size, batch_size=self.batch_size)


@dataclass(frozen=True)
class RunConfig:
    """A whole run config; ``train`` is ``None`` when the file has no such section."""

    detector: Any  # DetectorConfig
    data: DataConfig
    train: Any = None  # Optional[TrainConfig]
    eval: EvalConfig = EvalConfig()
    pretrained: Optional[str] = None


def read_run_config(path: str | Path, raw: Optional[dict[str, Any]] = None) -> RunConfig:
    """The config at ``path`` (already read: ``raw``), every section checked."""
    from stpn.detection.config import DetectorConfig
    from stpn.engine import TrainConfig

    data = raw if raw is not None else read_run_sections(path)
    pretrained = data.get("pretrained")
    if pretrained is not None and not isinstance(pretrained, str):
        raise ValueError(f"{path}: `pretrained` must be a checkpoint path (a string), got {pretrained!r}")
    return RunConfig(
        detector=DetectorConfig.from_dict(data["detector"], str(path), section="detector"),
        data=from_dict(DataConfig, data["data"], str(path), section="data"),
        train=None if data.get("train") is None else TrainConfig.from_dict(data["train"], str(path), section="train"),
        eval=from_dict(EvalConfig, {} if data.get("eval") is None else data["eval"], str(path), section="eval"),
        pretrained=pretrained,
    )


def read_run_sections(path: str | Path) -> dict[str, Any]:
    """The config's sections as read (unknown or missing sections are errors)."""
    return read_sections(path, SECTIONS, required=("detector", "data"))

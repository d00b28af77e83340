"""The sections of a tracker training config and of ``tracker.json``, checked.

Every section goes through the one strict reader (:mod:`stpn.strict_fields`): ``model`` against
:func:`~stpn.tracking.build.build_mixformer`'s parameters and the
:class:`~stpn.backbones.cvt.CvtSpec` fields it forwards, ``online`` against
:class:`~stpn.tracking.online.OnlineTracker`, ``loss`` against
:class:`~stpn.tracking.objective.TrackerObjective`, ``pairs`` / ``stage2_pairs`` against
:class:`~stpn.tracking.pairs.PairSettings`, ``stage1`` / ``stage2`` against
:class:`~stpn.engine.TrainConfig` and ``data`` against :class:`TrackData`. A typo or a value of
the wrong type is one line naming the file, the section, the key and the expected type.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

from stpn.strict_fields import check_kwargs, from_dict

# OnlineTracker arguments that are not settings of a trained tracker (never in tracker.json)
ONLINE_RUNTIME = ("model", "device", "bf16")


@dataclass(frozen=True)
class TrackData:
    """``data``: a GOT-10k ``root`` (``--data`` overrides), the ``split`` or splits to train
    on, ``samples_per_epoch`` (default: one per sequence) and loader ``num_workers``."""

    root: Optional[str] = None
    split: Union[str, tuple[str, ...]] = "train"
    samples_per_epoch: Optional[int] = None
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.samples_per_epoch is not None and self.samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {self.samples_per_epoch}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


def check_model(data: Any, where: str, section: Optional[str] = None) -> dict[str, Any]:
    """``model``: keyword arguments of ``build_mixformer`` (``weights`` excluded), checked."""
    from stpn.backbones.cvt import CvtSpec
    from stpn.tracking.build import build_mixformer

    if isinstance(data, dict) and "weights" in data:
        raise ValueError(f"{where}: put the backbone checkpoint in `pretrained`, not model.weights")
    return check_kwargs(build_mixformer, data, where, skip=("weights",), extra=CvtSpec, section=section)


def check_online(data: Any, where: str, section: Optional[str] = None) -> dict[str, Any]:
    """``online``: :class:`OnlineTracker` settings (not the model, device or precision)."""
    from stpn.tracking.online import OnlineTracker

    return check_kwargs(OnlineTracker, {} if data is None else data, where, skip=ONLINE_RUNTIME, kind="settings", section=section)


def check_loss(data: Any, where: str, section: Optional[str] = None) -> dict[str, Any]:
    """``loss``: :class:`TrackerObjective` weights."""
    from stpn.tracking.objective import TrackerObjective

    return check_kwargs(TrackerObjective, {} if data is None else data, where, skip=("tracker", "stage"), section=section)


def check_track_config(path, cfg: dict[str, Any]) -> None:
    """Check every section of a ``stpn train-track`` config (already read by sections)."""
    from stpn.engine import TrainConfig
    from stpn.tracking.pairs import PairSettings

    where = str(path)
    check_model(cfg["model"], where, "model")
    pretrained = cfg.get("pretrained")
    if pretrained is not None and not isinstance(pretrained, str):
        raise ValueError(f"{path}: `pretrained` must be a checkpoint path (a string), got {pretrained!r}")
    from_dict(TrackData, cfg["data"], where, section="data")
    for section in ("pairs", "stage2_pairs"):
        PairSettings.from_dict({} if cfg.get(section) is None else cfg[section], where, section=section)
    for section in ("stage1", "stage2"):
        if cfg.get(section) is not None:
            TrainConfig.from_dict(cfg[section], where, section=section)
    check_loss(cfg.get("loss"), where, "loss")
    check_online(cfg.get("online"), where, "online")

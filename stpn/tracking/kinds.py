"""Which tracker a config trains and which a run directory holds: MixFormer or DropTrack.

A training config names its tracker in ``model.tracker`` (``mixformer``, the default when the
key is absent, or ``droptrack``); the key is removed before the model arguments reach
``build_mixformer`` / ``build_droptrack``. A run directory is DropTrack's when it holds
``droptrack.json`` and MixFormer's when it holds ``tracker.json``
(:mod:`stpn.droptrack.checkpoint`, :mod:`stpn.tracking.checkpoint`). ``stpn train-track`` /
``track`` / ``eval-track`` use these to run either tracker.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Union

TRACKER_KEY = "tracker"
TRACKERS = ("mixformer", "droptrack")


def pop_tracker(model: Any, where: str, expected: str) -> Any:
    """``model`` (a config's ``model`` section) without its ``tracker`` key, after checking that
    the key, when present, names ``expected``."""
    if not isinstance(model, dict) or TRACKER_KEY not in model:
        return model
    model = dict(model)
    name = model.pop(TRACKER_KEY)
    if name not in TRACKERS:
        raise ValueError(f"{where}: model.tracker must be one of {', '.join(TRACKERS)}, got {name!r}")
    if name != expected:
        raise ValueError(f"{where}: model.tracker is {name!r} but this reader is for {expected!r} configs")
    return model


def config_tracker(path: Union[str, Path]) -> str:
    """The tracker a training config at ``path`` names (``model.tracker``, default ``mixformer``)."""
    from stpn.config_file import read_yaml

    data = read_yaml(path)
    model = data.get("model") if isinstance(data, dict) else None
    name = model.get(TRACKER_KEY, "mixformer") if isinstance(model, dict) else "mixformer"
    if name not in TRACKERS:
        raise ValueError(f"{path}: model.tracker must be one of {', '.join(TRACKERS)}, got {name!r}")
    return name


def run_tracker(path: Union[str, Path]) -> str:
    """``"droptrack"`` when the run directory of ``path`` (a directory or one of its weight files)
    holds ``droptrack.json``, else ``"mixformer"`` (whose loader reports a missing ``tracker.json``)."""
    from stpn.droptrack.checkpoint import CONFIG_FILE
    from stpn.engine.checkpoint import run_directory

    return "droptrack" if (run_directory(path) / CONFIG_FILE).is_file() else "mixformer"


def load_any_tracker(path: Union[str, Path]) -> tuple[Any, dict[str, Any]]:
    """``(tracker network in eval mode, its stored online settings)`` of either kind of run."""
    if run_tracker(path) == "droptrack":
        from stpn.droptrack.checkpoint import load_droptrack

        return load_droptrack(path)
    from stpn.tracking.checkpoint import load_tracker

    model, config = load_tracker(path)
    return model, dict(config.online)

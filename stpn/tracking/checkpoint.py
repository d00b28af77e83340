"""Trained trackers on disk: ``tracker.json`` beside the engine's weights, and :func:`load_tracker`.

A tracker *run directory* (written by tracker training, read by ``stpn track`` /
``stpn eval-track``) holds::

    tracker.json         what the model is (below)
    model.safetensors    final weights (engine export), preferred when present
    checkpoint.pt        engine checkpoint {"model": state_dict, ...}, used otherwise

``tracker.json`` (JSON object)::

    {
      "format": 1,
      "model": {                      # keyword arguments of stpn.tracking.build.build_mixformer
        "variant": "tiny",            #   "cvt-21" or "tiny"
        "stpn": true,                 #   prompts on / off
        "predictor": "att",
        "template_size": 128,
        "search_size": 320,
        ...                           #   any cvt_overrides, JSON lists become tuples
      },                              #   ("weights" is never stored: the state dict replaces it)
      "online": {                     # optional: OnlineTracker keyword arguments used at test time
        "update_interval": 10, "num_support": 4, "support_stride": 4, ...
      }
    }

``load_tracker(path)`` accepts the run directory or one of its weight files (a ``checkpoint.pt``
of an intermediate iteration, say); ``tracker.json`` is looked up in the file's directory.
Write the file with :func:`save_tracker_config` (and :func:`save_tracker` for weights too).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from stpn.engine.checkpoint import WEIGHT_FILES, read_run_record

TRACKER_FILE = "tracker.json"
TRACKER_FORMAT = 1


@dataclass
class TrackerConfig:
    """The contents of ``tracker.json``: ``model`` = build_mixformer kwargs, ``online`` =
    OnlineTracker kwargs (may be empty)."""

    model: dict[str, Any]
    online: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": TRACKER_FORMAT, "model": dict(self.model), "online": dict(self.online)}

    @classmethod
    def from_dict(cls, data: Any, source: str = TRACKER_FILE) -> "TrackerConfig":
        if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
            raise ValueError(f"{source}: expected an object with a `model` section (build_mixformer arguments)")
        if data.get("format", TRACKER_FORMAT) != TRACKER_FORMAT:
            raise ValueError(f"{source}: tracker format {data.get('format')} is not supported (expected {TRACKER_FORMAT})")
        unknown = sorted(set(data) - {"format", "model", "online"})
        if unknown:
            raise ValueError(f"{source}: unknown keys {unknown}; known: format, model, online")
        from stpn.tracking.sections import check_model

        model = check_model({k: v for k, v in data["model"].items() if k != "weights"}, source, "model")
        model = {k: tuple(v) if isinstance(v, list) else v for k, v in model.items()}
        online = {} if data.get("online") is None else data["online"]
        if not isinstance(online, dict):
            raise ValueError(f"{source}: `online` must be an object of OnlineTracker arguments")
        return cls(model, dict(online))


def save_tracker_config(run_dir: str | Path, model_kwargs: dict[str, Any], online: Optional[dict] = None) -> Path:
    """Write ``run_dir/tracker.json``; ``model_kwargs`` as passed to ``build_mixformer``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in model_kwargs.items() if k != "weights"}
    config = TrackerConfig(kwargs, dict(online or {}))
    path = run_dir / TRACKER_FILE
    path.write_text(json.dumps(config.to_dict(), indent=2))
    return path


def save_tracker(run_dir: str | Path, model: torch.nn.Module, model_kwargs: dict[str, Any],
                 online: Optional[dict] = None) -> Path:
    """A complete run directory: ``tracker.json`` and ``model.safetensors`` (e.g. an untrained
    tracker for a smoke test). Returns the directory."""
    from stpn.engine import export_safetensors

    run_dir = Path(run_dir)
    save_tracker_config(run_dir, model_kwargs, online)
    export_safetensors(model, run_dir / WEIGHT_FILES[0])
    return run_dir


def read_tracker_config(path: str | Path) -> tuple[TrackerConfig, Path]:
    """The config of a run directory (or of a weight file's directory) and the weight file."""
    return read_run_record(path, TRACKER_FILE, "tracker", lambda data, file: TrackerConfig.from_dict(data, str(file)))


def load_state_dict(weights: Path) -> dict[str, torch.Tensor]:
    """Model weights from ``model.safetensors`` or an engine ``checkpoint.pt``."""
    from stpn.engine.checkpoint import read_model_state

    return read_model_state(weights)


def load_tracker(path: str | Path):
    """``(MixFormer in eval mode, TrackerConfig)`` from a run directory or weight file."""
    from stpn.engine.checkpoint import load_model_state
    from stpn.tracking.build import build_mixformer

    config, weights = read_tracker_config(path)
    try:
        model = build_mixformer(**config.model)
    except TypeError as exc:
        raise ValueError(f"tracker.json `model` does not match build_mixformer: {exc}") from exc
    load_model_state(model, load_state_dict(weights), f"{weights} (for the model {TRACKER_FILE} describes)")
    return model.eval(), config

"""Trained DropTrack networks on disk: ``droptrack.json`` beside the engine's weights.

``droptrack.json``::

    {"format": 1,
     "model": {...},     # build_droptrack keyword arguments, architecture only
     "online": {...}}    # OnlineTracker keyword arguments used at test time

A ``pretrained`` run in the model arguments is replaced by the architecture it names
(``encoder.json``): the trained weights replace the initialisation, and the tracker must load
without the pre-training run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Union

import torch

from stpn.engine.checkpoint import WEIGHT_FILES, read_run_record

CONFIG_FILE = "droptrack.json"
FORMAT = 1


def architecture_kwargs(model_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``build_droptrack`` arguments without ``pretrained`` (its ``encoder.json`` merged in)."""
    kwargs = dict(model_kwargs)
    pretrained = kwargs.pop("pretrained", None)
    if pretrained is not None:
        path = Path(pretrained) / "encoder.json"
        if not path.is_file():
            raise FileNotFoundError(f"no encoder.json in {pretrained}: not an exported pre-training run")
        kwargs = {**json.loads(path.read_text()), **kwargs}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


def save_droptrack_config(run_dir: Union[str, Path], model_kwargs: dict[str, Any],
                          online: Optional[dict[str, Any]] = None) -> Path:
    """Write ``run_dir/droptrack.json``; returns its path."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / CONFIG_FILE
    data = {"format": FORMAT, "model": architecture_kwargs(model_kwargs), "online": dict(online or {})}
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def _check_record(data: dict, file: Path) -> dict:
    if not isinstance(data.get("model"), dict) or data.get("format") != FORMAT:
        raise ValueError(f"{file}: expected {{'format': {FORMAT}, 'model': {{...}}, 'online': {{...}}}}")
    return data


def read_droptrack_config(path: Union[str, Path]) -> tuple[dict[str, Any], dict[str, Any], Path]:
    """``(model kwargs, online settings, weight file)`` of a run directory or weight file."""
    data, weights = read_run_record(path, CONFIG_FILE, "DropTrack", _check_record)
    return data["model"], dict(data.get("online") or {}), weights


def load_droptrack(path: Union[str, Path]) -> tuple[torch.nn.Module, dict[str, Any]]:
    """``(DropTrack in eval mode, online settings)`` from a run directory or weight file."""
    from stpn.droptrack.build import build_droptrack
    from stpn.engine.checkpoint import load_model_state, read_model_state

    model_kwargs, online, weights = read_droptrack_config(path)
    try:
        model = build_droptrack(**model_kwargs)
    except TypeError as exc:
        raise ValueError(f"{CONFIG_FILE} `model` does not match build_droptrack: {exc}") from exc
    load_model_state(model, read_model_state(weights), f"{weights} (for the model {CONFIG_FILE} describes)")
    return model.eval(), online


def save_droptrack(run_dir: Union[str, Path], model: torch.nn.Module, model_kwargs: dict[str, Any],
                   online: Optional[dict[str, Any]] = None) -> Path:
    """A complete run directory (config + ``model.safetensors``); returns the directory."""
    from stpn.engine import export_safetensors

    save_droptrack_config(run_dir, model_kwargs, online)
    export_safetensors(model, Path(run_dir) / WEIGHT_FILES[0])
    return Path(run_dir)

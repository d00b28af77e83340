"""The files of a detector run directory that say what the model is: ``detector.json``.

``detector.json`` is the :class:`~stpn.detection.config.DetectorConfig` as a JSON object plus an
``inference`` entry, the :class:`~stpn.prompts.settings.InferenceSettings` the model runs with at
test time (``stpn train`` stores the config's ``eval`` section there). A file written before
that entry existed reads as the default settings.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stpn.detection.config import DetectorConfig
from stpn.prompts.settings import DEFAULT_INFERENCE, InferenceSettings

DETECTOR_FILE = "detector.json"
INFERENCE_KEY = "inference"  # detector.json entry holding the InferenceSettings


def write_detector_file(run_dir: Path, config: DetectorConfig, inference: InferenceSettings) -> Path:
    """``run_dir/detector.json``: the detector config plus its test-time settings."""
    path = Path(run_dir) / DETECTOR_FILE
    path.write_text(json.dumps({**config.to_dict(), INFERENCE_KEY: inference.to_dict()}, indent=2))
    return path


def read_detector_file(run_dir: str | Path) -> tuple[DetectorConfig, InferenceSettings]:
    """What ``run_dir/detector.json`` says: the detector and its test-time settings (the defaults
    when the file predates them)."""
    config_file = Path(run_dir) / DETECTOR_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: is {run_dir} a run directory of `stpn train`?")
    try:
        data: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{config_file}: not a valid detector.json ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{config_file}: expected a JSON object (the detector config)")
    inference = data.pop(INFERENCE_KEY, None)
    settings = DEFAULT_INFERENCE if inference is None else \
        InferenceSettings.from_dict(inference, f"{config_file} `{INFERENCE_KEY}`")
    return DetectorConfig.from_dict(data), settings


def run_directory(path: str | Path) -> Path:
    """The run directory of ``path`` (itself, or the directory of a weight file)."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def load_inference_settings(path: str | Path) -> InferenceSettings:
    """The test-time settings saved with a trained detector (run directory or weight file)."""
    return read_detector_file(run_directory(path))[1]

"""Loading the detectors to analyse, refusing what the analysis cannot take, in one line."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from stpn.detection.config import DetectorConfig
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.run import load_detector
from stpn.detection.run_files import DETECTOR_FILE, load_inference_settings, run_directory
from stpn.prompts.settings import InferenceSettings

# the file that marks a tracker run directory (stpn.tracking.checkpoint); named here because the
# analysis must not import the tracking package just to recognise its runs
TRACKER_FILE = "tracker.json"


@dataclass
class AnalysedDetector:
    """A trained detector with what the analysis needs to run and name it."""

    name: str
    model: VideoFasterRCNN
    config: DetectorConfig
    settings: InferenceSettings


def load_analysed_detector(path: str | Path, device: Optional[torch.device | str] = None, name: Optional[str] = None,
                           **overrides) -> AnalysedDetector:
    """A trained detector run (directory or weight file), named ``name`` (default: the run
    directory's name), with its test-time settings and ``overrides`` (``mode=``,
    ``num_support=``, ...; ``None`` changes nothing) applied.

    A tracker run (another task) and a SELSA detector (its box head needs support RoIs, which
    a one-frame CAM model and a per-box feature do not have) are refused with one line."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such checkpoint or run directory")
    run_dir = run_directory(path)
    if (run_dir / TRACKER_FILE).is_file() and not (run_dir / DETECTOR_FILE).is_file():
        raise ValueError(f"{path} is a tracker run ({run_dir / TRACKER_FILE}), not a detector: "
                         "give a run directory of `stpn train` or `stpn demo`")
    model, config = load_detector(path, device)
    if model.uses_selsa:
        raise ValueError(f"{path} is a SELSA detector: its box head needs support RoIs, which the analysis "
                         "does not supply; analyse the detector without SELSA")
    settings = load_inference_settings(path).override(**overrides)
    return AnalysedDetector(name or model_name(path), model, config, settings)


def model_name(path: str | Path) -> str:
    """How a run is called in pictures and tables: its run directory's name."""
    return run_directory(Path(path).resolve()).name

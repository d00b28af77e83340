"""Tiny untrained detector runs and videos for the analysis tests (CPU, seconds)."""
from pathlib import Path

import torch

from stpn.data.synthetic import CATEGORIES, generate_dataset
from stpn.detection.config import DetectorConfig, build_from_config
from stpn.detection.run_files import write_detector_file
from stpn.engine import export_safetensors
from stpn.prompts.settings import InferenceSettings
from tests.test_detection_model import HEADS, SWIN

SIZE = 128  # the pool level (stride 64) has 2 x 2 cells: the smallest frame where a CAM can vary
SETTINGS = InferenceSettings(num_support=3, stride=2)


def tiny_config(predictor) -> DetectorConfig:
    return DetectorConfig(class_names=list(CATEGORIES), predictor=predictor, fpn_channels=16,
                          swin_kwargs={**SWIN, "img_size": SIZE}, head_kwargs=dict(HEADS))


def tiny_run(path: Path, predictor, seed: int = 0) -> Path:
    """A run directory (``detector.json`` + ``model.safetensors``) of an untrained detector."""
    torch.manual_seed(seed)
    config = tiny_config(predictor)
    path.mkdir(parents=True, exist_ok=True)
    write_detector_file(path, config, SETTINGS)
    export_safetensors(build_from_config(config), path / "model.safetensors")
    return path


def tiny_videos(videos: int = 2, frames: int = 6):
    return generate_dataset(videos, frames, SIZE, seed=2, single_class=True)

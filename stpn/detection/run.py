"""Train and evaluate a video detector: the functions behind ``stpn train`` / ``stpn eval`` and
the demo. A run directory holds ``detector.json`` (what the model is), the engine's
``checkpoint.pt`` and the final ``model.safetensors``."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

import torch
from tqdm import tqdm

from stpn.data.clips import ClipDataset, KeyFrames, frame_to_tensor
from stpn.data.transforms import ResizeShortSide
from stpn.data.types import VideoDataset, load_frame
from stpn.detection.config import DetectorConfig, build_from_config
from stpn.detection.data import collate_detection
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.inference import detect_video
from stpn.engine import TrainConfig, fit, make_train_loader
from stpn.engine.checkpoint import load_model_state, read_model_state
from stpn.prompts.sampling import train_bilateral

DETECTOR_FILE = "detector.json"


def train_detector(
    model: VideoFasterRCNN,
    detector_config: DetectorConfig,
    dataset: VideoDataset,
    train_config: TrainConfig,
    out_dir: str | Path,
    transform=None,
    max_offset: int = 9,
    resume: Optional[str] = None,
    key_frames: KeyFrames = "all",
):
    """Train on the ``key_frames`` of ``dataset`` (every frame by default; ``stpn train`` passes
    those of the config's key-frame lists, :mod:`stpn.data.splits`); each item carries two
    support frames, one from each side within ``±max_offset`` (the released training sampler).
    Returns the engine's ``TrainHistory``."""
    if list(dataset.categories) != list(detector_config.class_names):
        raise ValueError(f"the dataset's classes {dataset.categories} differ from the detector's "
                         f"class_names {detector_config.class_names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / DETECTOR_FILE).write_text(json.dumps(detector_config.to_dict(), indent=2))
    clips = ClipDataset(dataset, train_bilateral(max_offset), transform=transform, key_frames=key_frames)
    loader = make_train_loader(clips, train_config.batch_size or 8, seed=train_config.seed, collate_fn=collate_detection)
    return fit(model, loader, train_config, out_dir, resume=resume)


def load_detector(path: str | Path) -> tuple[VideoFasterRCNN, DetectorConfig]:
    """A trained detector from a run directory (or its ``checkpoint.pt`` / ``model.safetensors``)."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    config_file = run_dir / DETECTOR_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} not found: is {run_dir} a run directory of `stpn train`?")
    try:
        config = DetectorConfig.from_dict(json.loads(config_file.read_text(encoding="utf-8")))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{config_file}: not a valid detector.json ({str(exc).splitlines()[0]})") from exc
    model = build_from_config(config)
    weights = path if path.is_file() else next(
        (run_dir / f for f in ("model.safetensors", "checkpoint.pt") if (run_dir / f).is_file()), None
    )
    if weights is None:
        raise FileNotFoundError(f"no model.safetensors or checkpoint.pt in {run_dir}")
    load_model_state(model, read_model_state(weights), weights)
    return model.eval(), config


def video_tensors(video, test_size: Optional[int] = None, max_size: int = 1333) -> tuple[list[torch.Tensor], float]:
    """A video's frames as ``(3, H, W)`` floats in [0, 1], resized so the short side is
    ``test_size`` (none if ``None``), and the scale applied (divide boxes by it to go back)."""
    frames = [frame_to_tensor(load_frame(f)) for f in video.frames]
    if test_size is None or not frames:
        return frames, 1.0
    resize = ResizeShortSide(test_size, max_size)
    size = resize.output_size(video.height, video.width, test_size)
    if size == (video.height, video.width):
        return frames, 1.0
    empty = {"boxes": torch.zeros(0, 4)}
    return [resize(f[None], empty)[0][0] for f in frames], size[1] / video.width


@torch.no_grad()
def predict_dataset(
    model: VideoFasterRCNN,
    dataset: VideoDataset,
    mode: str = "per-video",
    num_support: int = 14,
    stride: int = 8,
    batch_size: int = 4,
    progress: bool = True,
    test_size: Optional[int] = None,
    prompt_videos: Optional[Sequence[int]] = None,
) -> tuple[list[dict], float]:
    """Detections for every frame of every video, and the frames per second it ran at.

    Each detection dict: ``video_index``, ``frame_index``, ``boxes`` (N, 4) xyxy, ``scores``,
    ``labels`` (1-based), in the original frame's pixels (``test_size`` resizes the input).
    ``prompt_videos[v]`` (per-video STPN only): the video whose frames give video ``v``'s
    prompts (an ablation: another video's prompts); default each video's own."""
    model.eval()
    if prompt_videos is not None and len(prompt_videos) != len(dataset.videos):
        raise ValueError(f"prompt_videos has {len(prompt_videos)} entries for {len(dataset.videos)} videos")
    results, frames, seconds = [], 0, 0.0
    for v, video in enumerate(tqdm(dataset.videos, desc="detect", disable=not progress, leave=False)):
        tensors, scale = video_tensors(video, test_size)
        prompt_frames = None
        if prompt_videos is not None:
            prompt_frames = video_tensors(dataset.videos[prompt_videos[v]], test_size)[0]
        start = time.perf_counter()
        for t, det in detect_video(model, tensors, mode, num_support, stride, batch_size, prompt_frames):
            det["boxes"] = det["boxes"] / scale
            results.append({"video_index": v, "frame_index": t, **det})
        seconds += time.perf_counter() - start
        frames += len(tensors)
    return results, frames / max(seconds, 1e-9)

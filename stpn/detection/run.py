"""Train and evaluate a video detector: the functions behind ``stpn train`` / ``stpn eval`` and
the demo. A run directory holds ``detector.json`` (what the model is and how it runs at test
time, :mod:`stpn.detection.run_files`), the engine's ``checkpoint.pt`` and the final
``model.safetensors``."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from tqdm import tqdm

from stpn.data.clips import ClipDataset, KeyFrames, frame_to_tensor
from stpn.data.transforms import ResizeShortSide
from stpn.data.types import VideoDataset, load_frame
from stpn.detection.config import DetectorConfig, build_from_config
from stpn.detection.data import collate_detection
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.inference import detect_video
from stpn.detection.run_files import read_detector_file, run_directory, write_detector_file
from stpn.engine import TrainConfig, evaluate_sharded, fit, is_main_process, make_train_loader
from stpn.engine.checkpoint import load_model_state, read_model_state
from stpn.prompts.sampling import train_bilateral
from stpn.prompts.settings import DEFAULT_INFERENCE, InferenceSettings

MAX_TEST_SIZE = 1333  # longest side after the test resize (the recipe's max_size)


def train_detector(
    model: VideoFasterRCNN,
    detector_config: DetectorConfig,
    dataset: VideoDataset,
    train_config: TrainConfig,
    out_dir: str | Path,
    transform=None,
    max_offset: int = 9,
    support_per_side: int = 1,
    resume: Optional[str] = None,
    key_frames: KeyFrames = "all",
    inference: InferenceSettings = DEFAULT_INFERENCE,
):
    """Train on the ``key_frames`` of ``dataset`` (every frame by default; ``stpn train`` passes
    those of the config's key-frame lists, :mod:`stpn.data.splits`); each item carries two
    support frames, one from each side within ``±max_offset`` (the released training sampler;
    ``support_per_side`` frames from each side when larger).
    ``inference``: the test-time settings saved in ``detector.json`` beside the model.
    Returns the engine's ``TrainHistory``."""
    if list(dataset.categories) != list(detector_config.class_names):
        raise ValueError(f"the dataset's classes {dataset.categories} differ from the detector's "
                         f"class_names {detector_config.class_names}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_detector_file(out_dir, detector_config, inference)
    loader = training_loader(dataset, train_config, transform, max_offset, support_per_side, key_frames)
    return fit(model, loader, train_config, out_dir, resume=resume)


def training_loader(dataset: VideoDataset, train_config: TrainConfig, transform=None, max_offset: int = 9,
                    support_per_side: int = 1, key_frames: KeyFrames = "all"):
    """The engine's resumable loader of detection clips (key frame + bilateral support frames,
    :func:`stpn.prompts.sampling.train_bilateral`) that :func:`train_detector` trains on."""
    clips = ClipDataset(dataset, train_bilateral(max_offset, support_per_side), transform=transform, key_frames=key_frames)
    return make_train_loader(clips, train_config.batch_size or 8, seed=train_config.seed, collate_fn=collate_detection)


def load_detector(path: str | Path, device: Optional[torch.device | str] = None) -> tuple[VideoFasterRCNN, DetectorConfig]:
    """A trained detector from a run directory (or its ``checkpoint.pt`` / ``model.safetensors``),
    in eval mode on ``device`` (default CPU)."""
    path = Path(path)
    run_dir = run_directory(path)
    config, _ = read_detector_file(run_dir)
    model = build_from_config(config)
    weights = path if path.is_file() else next(
        (run_dir / f for f in ("model.safetensors", "checkpoint.pt") if (run_dir / f).is_file()), None
    )
    if weights is None:
        raise FileNotFoundError(f"no model.safetensors or checkpoint.pt in {run_dir}")
    load_model_state(model, read_model_state(weights), weights)
    return model.to(device or "cpu").eval(), config


def frame_resizer(height: int, width: int, test_size: Optional[int], max_size: int = MAX_TEST_SIZE
                ) -> tuple[Callable[[torch.Tensor], torch.Tensor], float]:
    """``(resize, scale)`` for frames of ``height × width``: ``resize`` maps a ``(3, H, W)``
    frame to short side ``test_size`` (long side at most ``max_size``; identity if ``None``),
    and boxes on the resized frame divided by ``scale`` are in the original pixels."""
    if test_size is None:
        return (lambda frame: frame), 1.0
    resize = ResizeShortSide(test_size, max_size)
    size = resize.output_size(height, width, test_size)
    if size == (height, width):
        return (lambda frame: frame), 1.0
    empty = {"boxes": torch.zeros(0, 4)}
    return (lambda frame: resize(frame[None], empty)[0][0]), size[1] / width


def video_tensors(video, test_size: Optional[int] = None, max_size: int = MAX_TEST_SIZE) -> tuple[list[torch.Tensor], float]:
    """A video's frames as ``(3, H, W)`` floats in [0, 1], resized so the short side is
    ``test_size`` (none if ``None``), and the scale applied (divide boxes by it to go back)."""
    resize, scale = frame_resizer(video.height, video.width, test_size, max_size)
    return [resize(frame_to_tensor(load_frame(f))) for f in video.frames], scale


@torch.no_grad()
def predict_dataset(
    model: VideoFasterRCNN,
    dataset: VideoDataset,
    mode: Optional[str] = None,
    num_support: Optional[int] = None,
    stride: Optional[int] = None,
    batch_size: Optional[int] = None,
    progress: bool = True,
    test_size: Optional[int] = None,
    prompt_videos: Optional[Sequence[int]] = None,
    bf16: bool = False,
    settings: InferenceSettings = DEFAULT_INFERENCE,
) -> tuple[Optional[list[dict]], Optional[float]]:
    """Detections for every frame of every video, and the frames per second it ran at.

    Under ``torchrun`` the videos are shared out across the processes (whole videos,
    :func:`stpn.engine.evaluate_sharded`) and gathered on rank 0, which gets the result; the
    other ranks get ``(None, None)``. The frames per second are over the time spent in the
    detector, summed over all videos (so they do not grow with the number of processes).

    ``settings`` say how the detector runs (default :data:`~stpn.prompts.settings.DEFAULT_INFERENCE`;
    ``stpn eval`` passes the ones saved with the model); ``mode`` / ``num_support`` / ``stride``
    / ``batch_size`` / ``test_size`` override single fields when not ``None`` (``test_size=0``:
    the frames' own resolution).

    Each detection dict: ``video_index``, ``frame_index``, ``boxes`` (N, 4) xyxy, ``scores``,
    ``labels`` (1-based), in the original frame's pixels (``test_size`` resizes the input).
    ``prompt_videos[v]`` (per-video STPN only): the video whose frames give video ``v``'s
    prompts (an ablation: another video's prompts); default each video's own. The model runs
    on its own device (frames go there), under bf16 autocast with ``bf16``; the detections are
    CPU tensors."""
    settings = settings.override(mode=mode, num_support=num_support, stride=stride, batch_size=batch_size,
                                 test_size=test_size)
    model.eval()
    if prompt_videos is not None and len(prompt_videos) != len(dataset.videos):
        raise ValueError(f"prompt_videos has {len(prompt_videos)} entries for {len(dataset.videos)} videos")
    bar = tqdm(total=len(dataset.videos), desc="detect", disable=not (progress and is_main_process()), leave=False)

    def run(v: int) -> tuple[list[dict], int, float]:
        video = dataset.videos[v]
        tensors, scale = video_tensors(video, settings.test_size)
        prompt_frames = None
        if prompt_videos is not None:
            prompt_frames = video_tensors(dataset.videos[prompt_videos[v]], settings.test_size)[0]
        start, out = time.perf_counter(), []
        for t, det in detect_video(model, tensors, settings.mode, settings.num_support, settings.stride,
                                   settings.batch_size, prompt_frames, bf16):
            det["boxes"] = det["boxes"] / scale
            out.append({"video_index": v, "frame_index": t, **det})
        bar.update(1)
        return out, len(tensors), time.perf_counter() - start

    per_video = evaluate_sharded(list(range(len(dataset.videos))), run, [len(v) for v in dataset.videos])
    bar.close()
    if per_video is None:  # not rank 0: its videos went to rank 0
        return None, None
    frames, seconds = sum(n for _, n, _ in per_video), sum(s for _, _, s in per_video)
    return [det for dets, _, _ in per_video for det in dets], frames / max(seconds, 1e-9)

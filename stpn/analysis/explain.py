"""``stpn explain``'s work: the EigenCAM picture of each chosen frame for one or two detectors.

Each detector sees the frames at its own test size (``test_size`` of its settings); boxes and
CAM are brought back to the frame's pixels for the picture.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from stpn.analysis.cam import FrameCam, NoDetectionError, frame_eigencam
from stpn.analysis.figures import png_bytes
from stpn.analysis.frames import Frame, frame_kinds
from stpn.analysis.models import AnalysedDetector
from stpn.analysis.panels import explain_figure
from stpn.data.types import VideoDataset, load_frame
from stpn.detection.run import video_tensors


@dataclass
class ExplainedFrame:
    """One picture: ``png`` of frame ``frame`` of video ``video``, and what it shows."""

    video: int
    frame: int
    caption: str
    png: bytes


def _in_frame_pixels(result: FrameCam, scale: float, size: tuple[int, int]) -> FrameCam:
    """Boxes divided by the test resize's ``scale``; the CAM resized to ``size`` ``(H, W)``."""
    if scale == 1.0 and result.cam.shape == tuple(size):
        return result
    cam = F.interpolate(torch.from_numpy(result.cam)[None, None], size, mode="bilinear")[0, 0].numpy()
    return FrameCam(cam, {**result.detections, "boxes": result.detections["boxes"] / scale})


def caption(dataset: VideoDataset, v: int, t: int) -> str:
    """``"NAME frame T: motion blur, noise; objects: a, b"`` (``"NAME frame T"`` for a video
    file, which has no annotations)."""
    video, annotation = dataset.videos[v], dataset.videos[v].annotations[t]
    if not dataset.categories:
        return f"{video.name} frame {t}"
    kinds = ", ".join(k.replace("_", " ") for k in frame_kinds(annotation)) or "no deterioration recorded"
    classes = sorted({dataset.categories[i.category_id] for i in annotation.instances})
    return f"{video.name} frame {t}: {kinds}" + (f"; objects: {', '.join(classes)}" if classes else "")


def explain_frames(dataset: VideoDataset, detectors: Sequence[AnalysedDetector], frames: Sequence[Frame],
                   score_thresh: float = 0.5, level: str = "pool", skip_empty: bool = False,
                   progress: bool = True, limit: Optional[int] = None) -> tuple[list[ExplainedFrame], list[str]]:
    """The pictures of ``frames`` and, with ``skip_empty``, a note for each frame left out
    because a detector found nothing over ``score_thresh`` there (without it, such a frame is a
    :class:`NoDetectionError` naming the frame and the model). ``limit``: stop after that many
    pictures (``frames`` then is a ranking to walk down, e.g. the most degraded frames first)."""
    pictures, skipped = [], []
    tensors: dict[tuple[int, object], tuple[list, float]] = {}
    for v, t in tqdm(frames, desc="explain", unit="frame", disable=not progress, leave=False):
        if limit is not None and len(pictures) >= limit:
            break
        video = dataset.videos[v]
        results = {}
        try:
            for detector in detectors:
                key = (v, detector.settings.test_size)
                if key not in tensors:
                    tensors[key] = video_tensors(video, detector.settings.test_size)
                frames_v, scale = tensors[key]
                try:
                    result = frame_eigencam(detector.model, frames_v, t, detector.settings, score_thresh, level)
                except NoDetectionError as exc:
                    raise NoDetectionError(f"{video.name} frame {t}: {detector.name} has {exc}") from None
                results[detector.name] = _in_frame_pixels(result, scale, (video.height, video.width))
        except NoDetectionError as exc:
            if not skip_empty:
                raise
            skipped.append(str(exc).split(": nothing")[0])
            continue
        annotation = video.annotations[t]
        boxes = np.array([i.box for i in annotation.instances], dtype=np.float64).reshape(-1, 4)
        names = [dataset.categories[i.category_id] for i in annotation.instances] if dataset.categories else []
        text = caption(dataset, v, t)
        figure = explain_figure(load_frame(video.frames[t]), boxes, names, results,
                                {d.name: d.config.class_names for d in detectors}, text,
                                "ground truth" if dataset.categories else "frame")
        pictures.append(ExplainedFrame(v, t, text, png_bytes(figure)))
    return pictures, skipped

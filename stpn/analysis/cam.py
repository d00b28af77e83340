"""EigenCAM of a detector on one frame, through the ``grad-cam`` package.

What the CAM looks at (the paper's supplementary §3): the detector's FPN output, every level
rescaled to one level's size and concatenated along the channels, with box-score targets for
the frame's detections. With ``level="pool"`` (the default, the coarsest map: stride 64 behind a
4-stage backbone, 32 behind a 3-stage one) this is the library's own
``fasterrcnn_reshape_transform``; a finer ``level`` ("0".."3", as many as the backbone has
stages) is offered for small frames, where the pool map has only a few cells.

EigenCAM itself (the first principal component of those activations) uses no gradients, so the
box-score targets do not change the map; they are passed because the library's interface asks
for targets, and a frame without a detection over the threshold has nothing to explain and is
refused (:class:`NoDetectionError`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stpn.analysis.key_frame_model import KeyFrameDetector, key_frame_prompts
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.inference import prepare_frame
from stpn.engine.device import model_device
from stpn.prompts.settings import InferenceSettings

CAM_LEVELS = ("pool", "0", "1", "2", "3")


class NoDetectionError(ValueError):
    """No detection over the score threshold on the frame: the CAM has no box targets."""


@dataclass
class FrameCam:
    """``cam``: ``(H, W)`` float32 in [0, 1], the frame's size; ``detections``: the detector's
    boxes (xyxy, frame pixels), ``scores`` and 1-based ``labels`` with score ≥ the threshold."""

    cam: np.ndarray
    detections: dict[str, Tensor]


def levels_at(features: dict[str, Tensor], level: str = "pool") -> Tensor:
    """FPN maps ``{name: (B, C, H_l, W_l)}`` → ``(B, L·C, H, W)`` at level ``level``'s size."""
    if level == "pool":
        from pytorch_grad_cam.utils.reshape_transforms import fasterrcnn_reshape_transform

        return fasterrcnn_reshape_transform(features)
    if level not in features:
        raise ValueError(f"CAM level {level!r} is not one of this detector's FPN levels ({', '.join(features)})")
    size = features[level].shape[-2:]  # the same rescaling as the library's, to a finer level
    return torch.cat([F.interpolate(m.abs(), size, mode="bilinear") for m in features.values()], dim=1)


def _normalised(cam: np.ndarray) -> np.ndarray:
    cam = cam - cam.min()
    top = cam.max()
    return (cam / top if top > 0 else cam).astype(np.float32)


@torch.no_grad()
def frame_eigencam(detector: VideoFasterRCNN, frames: Sequence[Tensor], t: int, settings: InferenceSettings,
                   score_thresh: float = 0.5, level: str = "pool") -> FrameCam:
    """EigenCAM of frame ``t`` of ``frames`` (``(3, H, W)`` in [0, 1], one video; the support
    frames of STPN come from them under ``settings``).

    The map is computed on the padded input and cropped to the frame, then stretched to [0, 1]
    again (the padding is no part of the picture)."""
    from pytorch_grad_cam import EigenCAM
    from pytorch_grad_cam.utils.model_targets import FasterRCNNBoxScoreTarget

    if level not in CAM_LEVELS:
        raise ValueError(f"unknown CAM level {level!r}; choose one of {', '.join(CAM_LEVELS)}")
    if not 0 <= t < len(frames):
        raise ValueError(f"frame {t} is past the end of the video ({len(frames)} frames)")
    detector.eval()
    height, width = frames[t].shape[-2:]
    model = KeyFrameDetector(detector, (height, width), key_frame_prompts(detector, frames, t, settings))
    image = prepare_frame(frames[t], device=model_device(detector))[None]
    found = model(image)[0]
    keep = found["scores"] >= score_thresh
    if not keep.any():
        raise NoDetectionError(f"no detection with score >= {score_thresh:g} (best "
                               f"{float(found['scores'].max()) if len(found['scores']) else 0:.2f}): "
                               "nothing for the CAM's box targets; lower --score-thresh")
    kept = {k: v[keep].detach().cpu() for k, v in found.items()}
    targets = [FasterRCNNBoxScoreTarget(labels=kept["labels"], bounding_boxes=kept["boxes"].numpy())]
    cam = EigenCAM(model, [detector.neck], reshape_transform=functools.partial(levels_at, level=level))
    try:  # not `with`: the library's __exit__ swallows IndexErrors
        grayscale = cam(image, targets=targets)[0]  # (H_pad, W_pad)
    finally:
        cam.activations_and_grads.release()
    return FrameCam(_normalised(grayscale[:height, :width]), kept)

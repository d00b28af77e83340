"""The STPN detector as a one-tensor model, for libraries that call ``model(images)``.

:class:`VideoFasterRCNN` takes a key frame *and* its support frames. The CAM library calls
``model(input_tensor)`` and hooks a layer, so :class:`KeyFrameDetector` fixes the prompts of one
key frame beforehand (:func:`key_frame_prompts`, computed the way the streaming extractor does
at test time) and runs the prompted backbone, the neck and the unchanged heads on the tensor it
is given. Its detections equal :func:`stpn.detection.inference.detect_video`'s for that frame.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList

from stpn.backbones.base import Prompts
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.inference import prepare_frame
from stpn.engine.device import model_device
from stpn.prompts.sampling import build_sampler
from stpn.prompts.settings import InferenceSettings


@torch.no_grad()
def key_frame_prompts(detector: VideoFasterRCNN, frames: Sequence[Tensor], t: int,
                      settings: InferenceSettings) -> Prompts:
    """The prompts of key frame ``t`` of ``frames`` (``(3, H, W)`` in [0, 1]) under ``settings``
    (mode, ``K``, ``S``): per-video mode samples the whole video once (every frame gets the same
    prompts), the windows sample around ``t``. ``None`` for the per-frame detector."""
    if not detector.uses_prompts:
        return None
    sampler = build_sampler(settings.mode, settings.num_support, settings.stride)
    indices = sampler(0 if settings.mode == "per-video" else t, len(frames))
    device = model_device(detector)
    support = torch.stack([prepare_frame(frames[i], device=device) for i in indices])
    return detector.extractor.predict_prompts(detector.extractor.embed_frames(support)[None])


def _repeat(prompts: Prompts, batch: int) -> Prompts:
    if prompts is None or isinstance(prompts, Tensor):
        return None if prompts is None else prompts.expand(batch, -1, -1)
    return [p.expand(batch, -1, -1) for p in prompts]


class KeyFrameDetector(nn.Module):
    """``forward(images)`` → torchvision detections, one dict per image.

    Args:
        detector: a per-frame or STPN :class:`VideoFasterRCNN` (not SELSA), in eval mode.
        image_size: the frame's true ``(H, W)``; the input is padded beyond it.
        prompts: the key frame's prompts (:func:`key_frame_prompts`), repeated over the batch;
            required by an STPN detector, ``None`` for the per-frame one.

    ``images``: ``(B, 3, H_pad, W_pad)``, normalised and padded (:func:`prepare_frame`). The FPN
    maps pass through ``detector.neck``, so a hook on it sees them.
    """

    def __init__(self, detector: VideoFasterRCNN, image_size: tuple[int, int], prompts: Prompts = None) -> None:
        super().__init__()
        if detector.uses_selsa:
            raise ValueError("a SELSA detector needs support RoIs: it cannot run on a key frame alone")
        if detector.uses_prompts and prompts is None:
            raise ValueError("an STPN detector needs the key frame's prompts (key_frame_prompts)")
        self.detector = detector
        self.image_size = tuple(image_size)
        self.prompts = prompts

    def forward(self, images: Tensor) -> list[dict[str, Tensor]]:
        detector = self.detector
        if detector.uses_prompts:
            maps = detector.extractor(images, prompts=_repeat(self.prompts, len(images)))
        else:
            maps = detector.extractor.forward_features(images)
        return detector.heads(ImageList(images, [self.image_size] * len(images)), detector.neck(maps))

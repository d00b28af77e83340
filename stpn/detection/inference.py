"""Detect objects in every frame of a video, with STPN prompts per mode.

Frames are moved to the model's device, normalised and padded once each
(:func:`prepare_frame`); under STPN the
:class:`~stpn.prompts.streaming.StreamingExtractor` supplies backbone maps with each support
embedding computed at most once, and the unchanged heads run on batches of those maps.
SELSA detectors also get each key frame's support RoI features (:mod:`stpn.detection.selsa_cache`,
same sampler as the prompts); they read a stream into a list first. With ``bf16`` every step
runs under bf16 autocast; detections always come back as float32 CPU tensors.
"""
from __future__ import annotations

import functools
import itertools
from typing import Iterable, Iterator, Optional, Sequence

import torch
from torch import Tensor

from stpn.data.normalisation import normalise_and_pad, padded_size
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.selsa_cache import SupportRoICache
from stpn.engine.device import inference_autocast, model_device, step_under
from stpn.prompts.settings import DEFAULT_INFERENCE
from stpn.prompts.streaming import StreamingExtractor


def prepare_frame(frame: Tensor, size_divisible: int = 32, device: Optional[torch.device] = None) -> Tensor:
    """``(3, H, W)`` in [0, 1] → on ``device`` (default: where it is), normalised, zero-padded
    to multiples of ``size_divisible``."""
    if frame.dim() != 3 or frame.shape[0] != 3:
        raise ValueError(f"a frame must be (3, H, W), got {tuple(frame.shape)}")
    if device is not None:
        frame = frame.to(device, non_blocking=True)
    return normalise_and_pad([frame], size_divisible)[0]


class PreparedFrames(Sequence):
    """Lazy ``prepare_frame`` onto ``device`` over a sequence (keeps random access for per-video
    mode)."""

    def __init__(self, frames: Sequence[Tensor], device: torch.device) -> None:
        self.frames, self.device = frames, device

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i):
        return prepare_frame(self.frames[i], device=self.device)


@torch.no_grad()
def detect_video(
    model: VideoFasterRCNN,
    frames: Sequence[Tensor] | Iterable[Tensor],
    mode: str = DEFAULT_INFERENCE.mode,
    num_support: int = DEFAULT_INFERENCE.num_support,
    stride: int = DEFAULT_INFERENCE.stride,
    batch_size: int = DEFAULT_INFERENCE.batch_size,
    prompt_frames: Optional[Sequence[Tensor]] = None,
    bf16: bool = False,
) -> Iterator[tuple[int, dict[str, Tensor]]]:
    """Yield ``(t, {"boxes", "scores", "labels"})`` for every frame ``(3, H, W)`` in [0, 1].

    All frames of a video share one size (a video file's frames do). ``mode`` /
    ``num_support`` / ``stride`` choose the support frames under STPN (per-video mode needs a
    sequence, not a stream); the per-frame baseline ignores them. SELSA detectors use them for
    their support RoIs as well. ``prompt_frames`` (per-video STPN only; frames in [0, 1]):
    predict the prompts from these frames instead of the video's own (an ablation).
    Frames may be on any device: they go to the model's. ``bf16``: run under bf16 autocast.
    """
    model.eval()
    device = model_device(model)
    if model.uses_selsa and not isinstance(frames, (Sequence, Tensor)):
        frames = list(frames)  # SELSA's support frames need random access
    if isinstance(frames, (Sequence, Tensor)):
        if len(frames) == 0:
            raise ValueError("the video has no frames")
        first, prepared = frames[0], PreparedFrames(frames, device)
    else:
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            raise ValueError("the video has no frames")
        prepared = map(functools.partial(prepare_frame, device=device), itertools.chain([first], frames))
    size = tuple(first.shape[-2:])
    if prompt_frames is not None and (not model.uses_prompts or model.uses_selsa):
        raise ValueError("prompt_frames needs an STPN detector without SELSA")
    if model.uses_prompts:
        extractor = StreamingExtractor(model.extractor, mode, num_support, stride, batch_size)
        stream = extractor.run(prepared, None if prompt_frames is None else PreparedFrames(prompt_frames, device))
    else:
        stream = ((t, [m[0] for m in model.extractor.forward_features(f[None])]) for t, f in enumerate(prepared))
    support = SupportRoICache(model, prepared, size, mode, num_support, stride, batch_size) if model.uses_selsa else None
    autocast = functools.partial(inference_autocast, device, bf16)
    batch: list[tuple[int, list[Tensor]]] = []
    for item in step_under(autocast, stream):
        batch.append(item)
        if len(batch) == batch_size:
            with autocast():
                detections = _run_heads(model, batch, size, support)
            yield from _to_cpu(detections)
            batch = []
    if batch:
        with autocast():
            detections = _run_heads(model, batch, size, support)
        yield from _to_cpu(detections)


def _to_cpu(detections) -> Iterator[tuple[int, dict[str, Tensor]]]:
    """Detections as CPU tensors, floats as float32 (bf16 autocast may give bf16 scores)."""
    for t, det in detections:
        yield t, {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype) for k, v in det.items()}


def _run_heads(model: VideoFasterRCNN, batch, size, support=None) -> list[tuple[int, dict[str, Tensor]]]:
    indices = [t for t, _ in batch]
    maps = [torch.stack(level) for level in zip(*(m for _, m in batch))]
    padded = padded_size(size)
    extra = {} if support is None else {"support": support.for_keys(indices)}
    detections = model.detect_from_maps(maps, [size] * len(indices), padded, **extra)
    return list(zip(indices, detections))

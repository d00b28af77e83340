"""Detect objects in every frame of a video, with STPN prompts per mode.

Frames are normalised and padded once each (:func:`prepare_frame`); under STPN the
:class:`~stpn.prompts.streaming.StreamingExtractor` supplies backbone maps with each support
embedding computed at most once, and the unchanged heads run on batches of those maps.
SELSA detectors also get each key frame's support RoI features (:mod:`stpn.detection.selsa_cache`,
same sampler as the prompts); they read a stream into a list first.
"""
from __future__ import annotations

import itertools
import math
from typing import Iterable, Iterator, Optional, Sequence

import torch
from torch import Tensor

from stpn.detection.clip_batch import IMAGENET_MEAN, IMAGENET_STD
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.selsa_cache import SupportRoICache
from stpn.prompts.streaming import StreamingExtractor


def prepare_frame(frame: Tensor, size_divisible: int = 32) -> Tensor:
    """``(3, H, W)`` in [0, 1] → normalised, zero-padded to multiples of ``size_divisible``."""
    if frame.dim() != 3 or frame.shape[0] != 3:
        raise ValueError(f"a frame must be (3, H, W), got {tuple(frame.shape)}")
    mean = torch.tensor(IMAGENET_MEAN, dtype=frame.dtype)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=frame.dtype)[:, None, None]
    h, w = frame.shape[-2:]
    ph, pw = (math.ceil(n / size_divisible) * size_divisible for n in (h, w))
    out = frame.new_zeros(3, ph, pw)
    out[:, :h, :w] = (frame - mean) / std
    return out


class _Prepared(Sequence):
    """Lazy ``prepare_frame`` over a sequence (keeps random access for per-video mode)."""

    def __init__(self, frames: Sequence[Tensor]) -> None:
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, i):
        return prepare_frame(self.frames[i])


@torch.no_grad()
def detect_video(
    model: VideoFasterRCNN,
    frames: Sequence[Tensor] | Iterable[Tensor],
    mode: str = "per-video",
    num_support: int = 14,
    stride: int = 8,
    batch_size: int = 4,
    prompt_frames: Optional[Sequence[Tensor]] = None,
) -> Iterator[tuple[int, dict[str, Tensor]]]:
    """Yield ``(t, {"boxes", "scores", "labels"})`` for every frame ``(3, H, W)`` in [0, 1].

    All frames of a video share one size (a video file's frames do). ``mode`` /
    ``num_support`` / ``stride`` choose the support frames under STPN (per-video mode needs a
    sequence, not a stream); the per-frame baseline ignores them. SELSA detectors use them for
    their support RoIs as well. ``prompt_frames`` (per-video STPN only; frames in [0, 1]):
    predict the prompts from these frames instead of the video's own (an ablation).
    """
    model.eval()
    if model.uses_selsa and not isinstance(frames, (Sequence, Tensor)):
        frames = list(frames)  # SELSA's support frames need random access
    if isinstance(frames, (Sequence, Tensor)):
        if len(frames) == 0:
            raise ValueError("the video has no frames")
        first, prepared = frames[0], _Prepared(frames)
    else:
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            raise ValueError("the video has no frames")
        prepared = map(prepare_frame, itertools.chain([first], frames))
    size = tuple(first.shape[-2:])
    if prompt_frames is not None and (not model.uses_prompts or model.uses_selsa):
        raise ValueError("prompt_frames needs an STPN detector without SELSA")
    if model.uses_prompts:
        extractor = StreamingExtractor(model.extractor, mode, num_support, stride, batch_size)
        stream = extractor.run(prepared, None if prompt_frames is None else _Prepared(prompt_frames))
    else:
        stream = ((t, [m[0] for m in model.extractor.forward_features(f[None])]) for t, f in enumerate(prepared))
    support = SupportRoICache(model, prepared, size, mode, num_support, stride, batch_size) if model.uses_selsa else None
    batch: list[tuple[int, list[Tensor]]] = []
    for item in stream:
        batch.append(item)
        if len(batch) == batch_size:
            yield from _run_heads(model, batch, size, support)
            batch = []
    if batch:
        yield from _run_heads(model, batch, size, support)


def _run_heads(model: VideoFasterRCNN, batch, size, support=None) -> Iterator[tuple[int, dict[str, Tensor]]]:
    indices = [t for t, _ in batch]
    maps = [torch.stack(level) for level in zip(*(m for _, m in batch))]
    padded = tuple(int(math.ceil(n / 32) * 32) for n in size)
    extra = {} if support is None else {"support": support.for_keys(indices)}
    detections = model.detect_from_maps(maps, [size] * len(indices), padded, **extra)
    return zip(indices, detections)

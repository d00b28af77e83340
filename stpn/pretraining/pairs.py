"""Frame pairs of one video for pair-MAE pre-training.

A sample draws a video (``index % len(videos)``, so ``samples_per_epoch`` may exceed the number
of videos), a first frame uniformly, and a second frame uniformly among the others within
``max_gap`` frames of it (the same frame only when the video has one frame); the earlier frame
takes slot 0 (the exported temporal embedding row 0). Each frame gets its own RandomResizedCrop
(scale 0.2-1, MAE's bicubic) and horizontal flip, then ImageNet normalisation. All draws use
the global RNGs, which :class:`stpn.engine.data.SeededDataset` seeds per sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchvision.transforms import v2

from stpn.data.normalisation import IMAGENET_MEAN, IMAGENET_STD


@dataclass
class PairSettings:
    """``img_size``: crop side; ``max_gap``: largest frame distance; ``scale``: crop area range."""

    img_size: int = 224
    max_gap: int = 50
    scale: tuple[float, float] = (0.2, 1.0)
    samples_per_epoch: Optional[int] = None

    def __post_init__(self) -> None:
        if self.img_size < 1 or self.max_gap < 1:
            raise ValueError(f"img_size and max_gap must be >= 1, got {self.img_size}, {self.max_gap}")
        if not 0 < self.scale[0] <= self.scale[1] <= 1:
            raise ValueError(f"scale must be 0 < low <= high <= 1, got {self.scale}")


def pick_pair(length: int, max_gap: int) -> tuple[int, int]:
    """Two frame indices ``(earlier, later)`` of a ``length``-frame video, at most ``max_gap``
    apart and distinct when ``length > 1`` (global torch RNG)."""
    if length == 1:
        return 0, 0
    first = int(torch.randint(length, ()))
    options = [t for t in range(max(0, first - max_gap), min(length, first + max_gap + 1)) if t != first]
    second = options[int(torch.randint(len(options), ()))]
    return min(first, second), max(first, second)


def frame_transform(settings: PairSettings) -> v2.Compose:
    """uint8 ``(H, W, 3)`` array → normalised float ``(3, S, S)``."""
    return v2.Compose([
        v2.ToImage(),
        v2.RandomResizedCrop(settings.img_size, scale=tuple(settings.scale),
                             interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
        v2.RandomHorizontalFlip(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])


class FramePairs(Dataset):
    """``ds[i]`` → ``(2, 3, S, S)``: two augmented frames of one video, earlier first.

    ``videos``: :mod:`stpn.pretraining.sources` sequences (``len`` and ``load(indices)``)."""

    def __init__(self, videos: Sequence, settings: PairSettings) -> None:
        if not videos:
            raise ValueError("no videos to draw frame pairs from")
        self.videos, self.settings = list(videos), settings
        self.transform = frame_transform(settings)

    def __len__(self) -> int:
        return self.settings.samples_per_epoch or len(self.videos)

    def __getitem__(self, index: int) -> Tensor:
        video = self.videos[index % len(self.videos)]
        frames = video.load(pick_pair(len(video), self.settings.max_gap))
        return torch.stack([self.transform(frame) for frame in frames])

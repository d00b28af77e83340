"""Per-frame training samples for the segmenter: a key frame, its support frames, its instances.

Each sample is one frame of a :class:`~stpn.data.types.VideoDataset` (YouTube-VIS read by
:mod:`stpn.data.formats.ytvis`, or the built-in benchmark) with the released training sampler's
support frames (:func:`stpn.prompts.sampling.train_bilateral`: ``support_per_side`` frames
drawn from each side within ``±max_offset``), made by :class:`stpn.data.clips.ClipDataset`;
the baseline's samples carry no support frames. Clip augmentation (one draw for the key frame
and its support frames): horizontal flip and a random short side (:mod:`stpn.data.transforms`).

:func:`collate_segmentation` gives what the segmenter's ``forward`` takes: ``images (B, 3, H, W)``
and ``support (B, K, 3, H, W)`` (or ``None``) ImageNet-normalised and zero-padded to multiples
of 32, and per frame ``{"masks": (M, H, W) bool, "labels": (M,) int64 0-based}`` padded alike.
"""
from __future__ import annotations

import random
from typing import Optional, Sequence

import torch
from torch import Tensor

from stpn.data.clips import ClipDataset
from stpn.data.normalisation import normalise_and_pad
from stpn.data.transforms import Compose, RandomHorizontalFlip, ResizeShortSide
from stpn.data.types import VideoDataset
from stpn.prompts.sampling import train_bilateral

SIZE_DIVISIBLE = 32


def no_support(t: int, length: int, rng: Optional[random.Random] = None) -> list[int]:
    """The baseline's sampler: no support frames."""
    return []


def segmentation_samples(dataset: VideoDataset, with_support: bool, train_sizes: Sequence[int],
                         max_size: int, max_offset: int = 9, support_per_side: int = 1, flip: bool = True,
                         key_frames: str = "annotated") -> ClipDataset:
    """The training frames of ``dataset`` (every ``key_frames`` frame) as a clip dataset with
    masks; support frames only ``with_support``."""
    sampler = train_bilateral(max_offset, support_per_side) if with_support else no_support
    steps = ([RandomHorizontalFlip()] if flip else []) + [ResizeShortSide(list(train_sizes), max_size)]
    return ClipDataset(dataset, sampler, transform=Compose(steps), key_frames=key_frames, with_masks=True)


def _pad_masks(masks: Tensor, size: tuple[int, int]) -> Tensor:
    out = masks.new_zeros((masks.shape[0],) + tuple(size))
    out[:, : masks.shape[1], : masks.shape[2]] = masks
    return out


def collate_segmentation(items: Sequence[dict]) -> tuple[Tensor, Optional[Tensor], list[dict[str, Tensor]]]:
    """Clip-dataset items → ``(images, support or None, targets)`` (module docstring)."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    images = normalise_and_pad([item["key"] for item in items], SIZE_DIVISIBLE)
    support = None
    if items[0]["support"].shape[0] > 0:
        support = normalise_and_pad([item["support"] for item in items], SIZE_DIVISIBLE)
    size = tuple(images.shape[-2:])
    targets = [{"masks": _pad_masks(item["target"]["masks"], size),
                "labels": item["target"]["labels"] - 1}  # ClipDataset labels are 1-based
               for item in items]
    return images, support, targets

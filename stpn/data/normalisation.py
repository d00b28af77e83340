"""The ImageNet mean / std (RGB, for images in [0, 1]) that every backbone here was trained
with, and the one normalise-and-pad routine: one place for detection, tracking and pre-training.

Frames are normalised channel-wise, ``(x - mean) / std``, in their own dtype and on their own
device, then (detection only) zero-padded at the bottom / right to a size divisible by
``size_divisible`` (32 for Swin's four stages), as torchvision's ``GeneralizedRCNNTransform``
does after resizing. Tracking crops *after* normalising, so a crop reads zeros (the mean colour)
outside the image.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise(images: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """``(..., 3, H, W)`` RGB in [0, 1] → ``(x - mean) / std`` per channel, same shape, dtype, device."""
    m = torch.tensor(mean, dtype=images.dtype, device=images.device)[:, None, None]
    s = torch.tensor(std, dtype=images.dtype, device=images.device)[:, None, None]
    return (images - m) / s


def padded_size(size: Sequence[int], size_divisible: int = 32) -> tuple[int, int]:
    """``(H, W)`` rounded up to multiples of ``size_divisible``."""
    return tuple(int(math.ceil(n / size_divisible) * size_divisible) for n in size)


def pad_stack(frames: Sequence[Tensor], size: Sequence[int]) -> Tensor:
    """Zero-pad ``[(..., 3, h_i, w_i)]`` at the bottom / right to ``size = (H, W)`` and stack:
    ``(F, ..., 3, H, W)``."""
    height, width = size
    out = frames[0].new_zeros((len(frames),) + tuple(frames[0].shape[:-2]) + (height, width))
    for i, f in enumerate(frames):
        out[i, ..., : f.shape[-2], : f.shape[-1]] = f
    return out


def normalise_and_pad(
    frames: Sequence[Tensor],
    size_divisible: int = 32,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Tensor:
    """``[(..., 3, h_i, w_i)]`` in [0, 1] → ``(F, ..., 3, H, W)``: each normalised, then
    zero-padded to the largest ``h_i`` / ``w_i`` rounded up to multiples of ``size_divisible``."""
    if len(frames) == 0:
        raise ValueError("no frames to normalise and pad")
    largest = (max(f.shape[-2] for f in frames), max(f.shape[-1] for f in frames))
    return pad_stack([normalise(f, mean, std) for f in frames], padded_size(largest, size_divisible))

"""Normalise and pad a batch of clips (key frames + support frames) for the detector.

Resizing is the data pipeline's job (:mod:`stpn.data.transforms` resizes a whole clip with one
scale), so that a key frame and its support frames always share one size. Here frames are only
normalised and zero-padded at the bottom/right to a common size divisible by ``size_divisible``
(32 for Swin's four stages), as torchvision's ``GeneralizedRCNNTransform`` does after resizing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList

from stpn.data.normalisation import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ClipBatch", "make_clip_batch"]


@dataclass
class ClipBatch:
    """``images``: padded key frames (B, 3, H, W) with their true sizes; ``support``: padded
    support frames (B, K, 3, H, W) or None; ``mask``: (B, K) validity or None."""

    images: ImageList
    support: Optional[Tensor]
    mask: Optional[Tensor]


def _pad_stack(frames: Sequence[Tensor], height: int, width: int) -> Tensor:
    """Zero-pad ``(..., 3, h, w)`` tensors to ``(..., 3, height, width)`` and stack them."""
    out = frames[0].new_zeros((len(frames),) + tuple(frames[0].shape[:-2]) + (height, width))
    for i, f in enumerate(frames):
        out[i, ..., : f.shape[-2], : f.shape[-1]] = f
    return out


def make_clip_batch(
    images: Sequence[Tensor],
    supports: Optional[Sequence[Tensor]] = None,
    masks: Optional[Sequence[Tensor]] = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    size_divisible: int = 32,
) -> ClipBatch:
    """Key frames ``[(3, H_i, W_i)]`` (values in [0, 1]) and support clips ``[(K, 3, H_i, W_i)]``
    → a padded, normalised :class:`ClipBatch`. Each clip's support frames must have its key
    frame's size; all clips need the same ``K`` (pad short ones and give ``masks``)."""
    if len(images) == 0:
        raise ValueError("empty batch: no key frames")
    for i, img in enumerate(images):
        if img.dim() != 3 or img.shape[0] != 3:
            raise ValueError(f"key frame {i} must be (3, H, W), got {tuple(img.shape)}")
    m = torch.tensor(mean, dtype=images[0].dtype, device=images[0].device)[:, None, None]
    s = torch.tensor(std, dtype=images[0].dtype, device=images[0].device)[:, None, None]
    sizes = [tuple(img.shape[-2:]) for img in images]
    height = int(math.ceil(max(h for h, _ in sizes) / size_divisible) * size_divisible)
    width = int(math.ceil(max(w for _, w in sizes) / size_divisible) * size_divisible)
    keys = _pad_stack([(img - m) / s for img in images], height, width)
    support = mask = None
    if supports is not None:
        if len(supports) != len(images):
            raise ValueError(f"{len(supports)} support clips for {len(images)} key frames")
        ks = {sup.shape[0] for sup in supports}
        if len(ks) != 1:
            raise ValueError(f"all clips need the same number of support frames, got {sorted(ks)}")
        for i, (img, sup) in enumerate(zip(images, supports)):
            if sup.dim() != 4 or tuple(sup.shape[-2:]) != tuple(img.shape[-2:]):
                raise ValueError(
                    f"support clip {i} must be (K, 3, {img.shape[-2]}, {img.shape[-1]}) like its "
                    f"key frame, got {tuple(sup.shape)}"
                )
        support = _pad_stack([(sup - m) / s for sup in supports], height, width)
        if masks is not None:
            mask = torch.stack(list(masks)).bool()
    return ClipBatch(ImageList(keys, sizes), support, mask)

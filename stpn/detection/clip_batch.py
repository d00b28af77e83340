"""Normalise and pad a batch of clips (key frames + support frames) for the detector.

Resizing is the data pipeline's job (:mod:`stpn.data.transforms` resizes a whole clip with one
scale), so that a key frame and its support frames always share one size. Here frames are only
normalised and zero-padded to a common size divisible by ``size_divisible``
(:func:`stpn.data.normalisation.normalise_and_pad`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList

from stpn.data.normalisation import IMAGENET_MEAN, IMAGENET_STD, normalise_and_pad

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ClipBatch", "make_clip_batch"]


@dataclass
class ClipBatch:
    """``images``: padded key frames (B, 3, H, W) with their true sizes; ``support``: padded
    support frames (B, K, 3, H, W) or None; ``mask``: (B, K) validity or None."""

    images: ImageList
    support: Optional[Tensor]
    mask: Optional[Tensor]


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
    sizes = [tuple(img.shape[-2:]) for img in images]
    keys = normalise_and_pad(images, size_divisible, mean, std)
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
        support = normalise_and_pad(supports, size_divisible, mean, std)  # each clip has its key's size
        if masks is not None:
            mask = torch.stack(list(masks)).bool()
    return ClipBatch(ImageList(keys, sizes), support, mask)

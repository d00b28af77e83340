"""Clip augmentations: one random draw per clip, applied alike to the key frame and every support
frame, with the key frame's boxes and masks following.

A transform is a callable ``(frames, target) -> (frames, target)``: ``frames`` is a
``(T, 3, H, W)`` float tensor in [0, 1] (key frame first, then its support frames) and ``target``
the key frame's dict with ``boxes`` ``(M, 4)`` xyxy pixels and optionally ``masks``
``(M, H, W)`` bool; other keys pass through. Random draws come from torch's global RNG, so
:class:`stpn.engine.data.SeededDataset` makes them reproducible.

Why one draw per clip: the DVP predictor compares the key frame with its support frames; flipping
or rescaling them differently would show it motion that is not in the video.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

ClipTransform = Callable[[Tensor, dict], tuple[Tensor, dict]]


def _check_frames(frames: Tensor) -> None:
    if frames.dim() != 4 or frames.shape[1] != 3:
        raise ValueError(f"clip frames must be (T, 3, H, W), got {tuple(frames.shape)}")


class Compose:
    def __init__(self, transforms: Sequence[ClipTransform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, frames: Tensor, target: dict) -> tuple[Tensor, dict]:
        for transform in self.transforms:
            frames, target = transform(frames, target)
        return frames, target


class RandomHorizontalFlip:
    """Mirror the whole clip with probability ``p``; ``x → W - x`` for boxes."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability must be in [0, 1], got {p}")
        self.p = p

    def __call__(self, frames: Tensor, target: dict) -> tuple[Tensor, dict]:
        _check_frames(frames)
        if torch.rand(()) >= self.p:
            return frames, target
        width = frames.shape[-1]
        target = dict(target)
        boxes = target["boxes"].clone()
        boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
        target["boxes"] = boxes
        if "masks" in target:
            target["masks"] = target["masks"].flip(-1)
        return frames.flip(-1), target


class ResizeShortSide:
    """Scale the clip so its short side is one of ``sizes`` (drawn once per clip; an int means
    always that size) unless the long side would exceed ``max_size``, which then wins (the
    Faster R-CNN convention, e.g. 480–800 / 1333 for training and 600 / 1333 for testing).
    Frames are resized bilinearly with antialiasing, masks with nearest neighbour."""

    def __init__(self, sizes: Union[int, Sequence[int]], max_size: int = 1333) -> None:
        self.sizes = [sizes] if isinstance(sizes, int) else list(sizes)
        if not self.sizes or min(self.sizes) < 1 or max_size < 1:
            raise ValueError(f"sizes {sizes!r} and max_size {max_size} must be positive")
        self.max_size = max_size

    def output_size(self, height: int, width: int, short: int) -> tuple[int, int]:
        scale = min(short / min(height, width), self.max_size / max(height, width))
        return max(1, round(height * scale)), max(1, round(width * scale))

    def __call__(self, frames: Tensor, target: dict) -> tuple[Tensor, dict]:
        _check_frames(frames)
        short = self.sizes[int(torch.randint(len(self.sizes), ()))]
        height, width = frames.shape[-2:]
        size = self.output_size(height, width, short)
        if size == (height, width):
            return frames, target
        frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
        target = dict(target)
        scale = torch.tensor([size[1] / width, size[0] / height] * 2, dtype=target["boxes"].dtype)
        target["boxes"] = target["boxes"] * scale
        if "masks" in target:
            masks = target["masks"]
            if len(masks):
                target["masks"] = F.interpolate(masks[None].float(), size=size, mode="nearest")[0].bool()
            else:
                target["masks"] = masks.new_zeros((0,) + size)
        return frames, target


class ColorJitter:
    """Brightness, contrast, saturation (factors uniform in ``[1 - x, 1 + x]``) and hue (shift
    uniform in ``[-hue, hue]``), drawn once per clip and applied in that fixed order to every
    frame (torchvision's ColorJitter draws per image and shuffles the order)."""

    def __init__(
        self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2, hue: float = 0.0
    ) -> None:
        for name, value, limit in (("brightness", brightness, 1.0), ("contrast", contrast, 1.0),
                                   ("saturation", saturation, 1.0), ("hue", hue, 0.5)):
            if not 0.0 <= value <= limit:
                raise ValueError(f"{name} must be in [0, {limit}], got {value}")
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def __call__(self, frames: Tensor, target: dict) -> tuple[Tensor, dict]:
        _check_frames(frames)
        factors = 1.0 + (torch.rand(3) * 2 - 1) * torch.tensor([self.brightness, self.contrast, self.saturation])
        shift = float((torch.rand(()) * 2 - 1) * self.hue)
        frames = TF.adjust_brightness(frames, float(factors[0]))
        frames = TF.adjust_contrast(frames, float(factors[1]))
        frames = TF.adjust_saturation(frames, float(factors[2]))
        if self.hue > 0:
            frames = TF.adjust_hue(frames, shift)
        return frames, target


def build_clip_transform(
    train: bool, train_sizes: Sequence[int] = tuple(range(480, 801, 32)), test_size: int = 600,
    max_size: int = 1333, color_jitter: float = 0.0,
) -> Compose:
    """The recipe's pipeline (docs/design.md §3.5): training flips and resizes to a random short side in
    480–800 (max 1333), testing resizes to 600. ``color_jitter > 0`` adds brightness / contrast /
    saturation jitter of that strength (not in the released recipe; off by default)."""
    if not train:
        return Compose([ResizeShortSide(test_size, max_size)])
    steps: list[ClipTransform] = [RandomHorizontalFlip(), ResizeShortSide(train_sizes, max_size)]
    if color_jitter > 0:
        steps.append(ColorJitter(color_jitter, color_jitter, color_jitter))
    return Compose(steps)

"""Square search / template crops around a target box, and the box jitter of tracker training.

A tracker sees the image only through crops: a square of side ``sqrt(w·h)·factor`` centred on
the target box ``(x, y, w, h)`` (factor 2 for templates, 5 for the search region in MixFormer's
GOT-10k setting), resized to ``out_size`` pixels. :class:`CropWindow` remembers where a crop came
from so that a box predicted in the crop maps back to the image.

Sampling uses torchvision's ``roi_align`` (``aligned=True``, 2×2 samples per output pixel): it
crops and resizes a batch in one call and reads zeros outside the image. Crops are taken from
*normalised* images, so the padding equals the mean colour, the padding MixFormer uses.

Box conventions: ``xywh`` = GOT-10k's ``(x, y, w, h)`` in image pixels (top-left corner);
``xyxy`` = ``(x1, y1, x2, y2)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor
from torchvision.ops import roi_align


def xywh_to_xyxy(box: Tensor) -> Tensor:
    """``(..., 4)`` x, y, w, h → x1, y1, x2, y2."""
    x, y, w, h = box.unbind(-1)
    return torch.stack([x, y, x + w, y + h], -1)


def xyxy_to_xywh(box: Tensor) -> Tensor:
    """``(..., 4)`` x1, y1, x2, y2 → x, y, w, h."""
    x1, y1, x2, y2 = box.unbind(-1)
    return torch.stack([x1, y1, x2 - x1, y2 - y1], -1)


def clip_box_xywh(box: Tensor, height: int, width: int, min_size: float = 1.0) -> Tensor:
    """Clip an ``(..., 4)`` xywh box to the image, keeping at least ``min_size`` pixels a side."""
    x1, y1, x2, y2 = xywh_to_xyxy(box).unbind(-1)
    x1 = x1.clamp(0, width - min_size)
    y1 = y1.clamp(0, height - min_size)
    x2 = torch.maximum(x2.clamp(max=width), x1 + min_size)
    y2 = torch.maximum(y2.clamp(max=height), y1 + min_size)
    return xyxy_to_xywh(torch.stack([x1, y1, x2, y2], -1))


def check_box(box: Sequence[float], height: int, width: int) -> None:
    """Raise a ``ValueError`` naming the problem if an ``x, y, w, h`` box cannot start a track."""
    if len(box) != 4 or not all(math.isfinite(float(v)) for v in box):
        raise ValueError(f"a box is four finite numbers x, y, w, h; got {list(box)}")
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0:
        raise ValueError(f"box {x:g},{y:g},{w:g},{h:g} has zero or negative size (w={w:g}, h={h:g})")
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        raise ValueError(
            f"box {x:g},{y:g},{w:g},{h:g} lies outside the {width}x{height} image (x, y, w, h in pixels)"
        )


@dataclass(frozen=True)
class CropWindow:
    """A square region of an image: top-left ``(x0, y0)`` and ``side`` in image pixels, sampled
    to ``out_size × out_size``."""

    x0: float
    y0: float
    side: float
    out_size: int

    def to_crop(self, box_xyxy: Tensor) -> Tensor:
        """Image-pixel ``(..., 4)`` xyxy → normalised xyxy of the crop (0..1 inside it)."""
        offset = box_xyxy.new_tensor([self.x0, self.y0, self.x0, self.y0])
        return (box_xyxy - offset) / self.side

    def to_image(self, box_normalised: Tensor) -> Tensor:
        """Normalised crop ``(..., 4)`` xyxy → image-pixel xyxy."""
        offset = box_normalised.new_tensor([self.x0, self.y0, self.x0, self.y0])
        return box_normalised * self.side + offset


def crop_window(box_xywh: Sequence[float], factor: float, out_size: int) -> CropWindow:
    """The square of side ``sqrt(w·h)·factor`` centred on the box (it may extend past the image)."""
    x, y, w, h = (float(v) for v in box_xywh)
    if w <= 0 or h <= 0:
        raise ValueError(f"cannot crop around a box of size {w:g}x{h:g}")
    side = math.sqrt(w * h) * factor
    return CropWindow(x + w / 2 - side / 2, y + h / 2 - side / 2, side, out_size)


def crop_images(images: Tensor, windows: Sequence[CropWindow]) -> Tensor:
    """``(B, C, H, W)`` images, one window each → ``(B, C, S, S)`` crops (zeros outside the image).

    All windows must share ``out_size``.
    """
    if images.dim() != 4 or images.shape[0] != len(windows):
        raise ValueError(f"need (B, C, H, W) images and B windows; got {tuple(images.shape)} and {len(windows)}")
    sizes = {w.out_size for w in windows}
    if len(sizes) != 1:
        raise ValueError(f"windows have different output sizes {sorted(sizes)}")
    rois = torch.tensor(
        [[i, w.x0, w.y0, w.x0 + w.side, w.y0 + w.side] for i, w in enumerate(windows)],
        dtype=images.dtype,
        device=images.device,
    )
    size = sizes.pop()
    return roi_align(images, rois, (size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)


def jitter_box(
    box_xywh: Tensor, centre_jitter: float, scale_jitter: float, generator: Optional[torch.Generator] = None
) -> Tensor:
    """The training-time box the search region is cropped around (pytracking / MixFormer rule).

    Size: ``(w, h)·exp(N(0, 1)·scale_jitter)`` per side; centre: shifted by up to
    ``±sqrt(w'·h')·centre_jitter / 2`` per axis (uniform). With MixFormer's GOT-10k search
    setting (``centre_jitter=4.5, scale_jitter=0.5``, factor 5) the target can sit anywhere in
    the search crop, and partly outside it.
    """
    x, y, w, h = box_xywh.tolist()
    scale = torch.exp(torch.randn(2, generator=generator) * scale_jitter)
    new_w, new_h = w * float(scale[0]), h * float(scale[1])
    reach = math.sqrt(new_w * new_h) * centre_jitter
    shift = (torch.rand(2, generator=generator) - 0.5) * reach
    cx, cy = x + w / 2 + float(shift[0]), y + h / 2 + float(shift[1])
    return box_xywh.new_tensor([cx - new_w / 2, cy - new_h / 2, new_w, new_h])

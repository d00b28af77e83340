"""In-memory annotation model shared by the synthetic generator, the format writers/readers and
the PyTorch datasets. Every on-disk format (ImageNet VID, CocoVID, YouTube-VIS, GOT-10k) is read
into and written from these classes, so a round trip is ``write(read(x)) == x`` on them.

Conventions: boxes are ``(x1, y1, x2, y2)`` in pixels, float, inside the image; masks are
``(H, W)`` bool arrays; frames are RGB ``(H, W, 3)`` uint8 arrays or paths to image files
(loaded on access with :func:`load_frame`); ``category_id`` indexes ``VideoDataset.categories``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

FrameSource = Union[np.ndarray, str, Path]

# Deterioration names used by the synthetic benchmark and recorded per object and per frame.
DETERIORATIONS = ("motion_blur", "occlusion", "defocus", "noise", "jpeg", "low_light")


@dataclass
class Instance:
    """One object in one frame."""

    track_id: int
    category_id: int
    box: np.ndarray  # (4,) float32 x1, y1, x2, y2
    mask: Optional[np.ndarray] = None  # (H, W) bool
    deteriorations: tuple[str, ...] = ()  # which deteriorations hit this object in this frame
    visible_fraction: float = 1.0  # 1 - occluded share (GOT-10k cover.label = ceil-ish of 8x)


@dataclass
class FrameAnnotation:
    """All objects of one frame plus frame-wide deteriorations."""

    instances: list[Instance] = field(default_factory=list)
    deteriorations: tuple[str, ...] = ()


@dataclass
class Video:
    """A video: ``len(frames) == len(annotations)``."""

    name: str
    frames: Sequence[FrameSource]
    annotations: list[FrameAnnotation]
    height: int
    width: int

    def __len__(self) -> int:
        return len(self.annotations)


@dataclass
class VideoDataset:
    categories: list[str]
    videos: list[Video]


def load_frame(source: FrameSource) -> np.ndarray:
    """Return an RGB ``(H, W, 3)`` uint8 array for an array or an image path; a corrupt or
    truncated file is a ``DatasetFormatError`` naming it."""
    if isinstance(source, np.ndarray):
        return source
    from PIL import Image

    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"frame file not found: {path}")
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as exc:  # PIL.UnidentifiedImageError, "image file is truncated", decoder errors
        from stpn.data.formats.errors import DatasetFormatError

        raise DatasetFormatError(path, "image", f"not a readable image: {str(exc).splitlines()[0]}") from None

"""Box and mask conversions shared by every format.

Boxes in memory are ``(x1, y1, x2, y2)`` float32 pixels (:mod:`stpn.data.types`); COCO-style files
store ``[x, y, w, h]``. Conversions run in float64 so a float32 box survives
``xyxy → xywh → xyxy`` bit for bit. Masks are ``(H, W)`` bool arrays in memory and COCO RLE
(``{"size": [H, W], "counts": ...}``) on disk, encoded and decoded by pycocotools.
"""
from __future__ import annotations

import warnings
from typing import Any, Optional, Sequence

import numpy as np

from stpn.data.formats.errors import ProblemLog

# How far (pixels) a box may poke out of the image before it is a problem rather than rounding.
BOX_TOLERANCE = 0.5


def xywh_to_xyxy(values: Sequence[float]) -> np.ndarray:
    """``[x, y, w, h]`` → ``(4,)`` float32 ``x1, y1, x2, y2``."""
    x, y, w, h = (float(v) for v in values)
    return np.array([x, y, x + w, y + h], dtype=np.float64).astype(np.float32)


def xyxy_to_xywh(box: np.ndarray) -> list[float]:
    """``(4,)`` ``x1, y1, x2, y2`` → ``[x, y, w, h]`` as Python floats (JSON-ready)."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float32))
    return [x1, y1, x2 - x1, y2 - y1]


def box_area(box: np.ndarray) -> float:
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(x2 - x1, 0.0) * max(y2 - y1, 0.0)


def parse_numbers(values: Any, count: int) -> Optional[list[float]]:
    """``values`` as ``count`` finite floats, or ``None`` if it is not that."""
    if not isinstance(values, (list, tuple)) or len(values) != count:
        return None
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        return None
    return numbers if all(np.isfinite(numbers)) else None


def check_box(
    box: np.ndarray, width: int, height: int, log: ProblemLog, file: Any, field: str
) -> Optional[np.ndarray]:
    """Validate an xyxy box against a ``width × height`` image.

    A box must have positive width and height and lie inside the image up to
    :data:`BOX_TOLERANCE` pixels (coordinate rounding); it is then clipped to the image. A bad
    box is reported to ``log`` and ``None`` returned.
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    if not np.all(np.isfinite([x1, y1, x2, y2])):
        log.report(file, field, f"box {[x1, y1, x2, y2]} has a non-finite coordinate")
        return None
    if x2 <= x1 or y2 <= y1:
        log.report(file, field, f"box {[x1, y1, x2, y2]} (x1, y1, x2, y2) has no area")
        return None
    t = BOX_TOLERANCE
    if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
        log.report(file, field, f"box {[x1, y1, x2, y2]} (x1, y1, x2, y2) lies outside the {width}x{height} image")
        return None
    return np.clip(np.asarray(box, dtype=np.float32), 0, [width, height, width, height]).astype(np.float32)


def encode_mask(mask: np.ndarray) -> dict:
    """``(H, W)`` bool mask → compressed COCO RLE with a ``str`` ``counts`` (JSON-ready)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """COCO RLE (compressed or uncompressed ``counts``) or polygon list → ``(H, W)`` bool.

    Raises ``ValueError`` when the value is none of these or its size is not ``height × width``;
    readers turn that into a :class:`~stpn.data.formats.errors.DatasetFormatError`.
    """
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if parse_numbers(size, 2) is None or counts is None:
            raise ValueError("an RLE needs 'size' [height, width] and 'counts'")
        if [int(size[0]), int(size[1])] != [height, width]:
            raise ValueError(f"RLE size {list(size)} differs from the image size [{height}, {width}]")
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects(segmentation, height, width)
        elif isinstance(counts, (str, bytes)):
            rle = {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        else:
            raise ValueError(f"RLE counts must be a string or a list, got {type(counts).__name__}")
    elif isinstance(segmentation, list) and segmentation and all(isinstance(p, list) for p in segmentation):
        if any(parse_numbers(p, len(p)) is None or len(p) < 6 or len(p) % 2 for p in segmentation):
            raise ValueError("a polygon needs an even number (>= 6) of finite coordinates")
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    else:
        raise ValueError(f"expected an RLE dict or a list of polygons, got {type(segmentation).__name__}")
    try:
        with warnings.catch_warnings():  # pycocotools 2.0.x + numpy 2 warn about __array__(copy=)
            warnings.simplefilter("ignore", DeprecationWarning)
            mask = mask_utils.decode(rle)
    except Exception as exc:  # pycocotools raises bare Exceptions on corrupt counts
        raise ValueError(f"cannot decode the RLE: {exc}") from None
    if mask.shape != (height, width):
        raise ValueError(f"decoded mask is {mask.shape}, expected ({height}, {width})")
    return mask.astype(bool)


def mask_box(mask: np.ndarray) -> Optional[np.ndarray]:
    """Tightest xyxy box around a mask's pixels (pixel edges: ``x2`` is last column + 1)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float32)

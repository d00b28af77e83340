"""Draw instance masks on a frame: each instance's mask blended in its own colour, outlined by
its box and captioned ``"class score"`` (boxes and captions by :func:`stpn.data.video.draw_boxes`)."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from stpn.data.video import PALETTE, draw_boxes


def mask_box(mask: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool → ``(4,)`` xyxy box around it (pixel edges)."""
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def draw_instances(frame: np.ndarray, masks: np.ndarray, labels: Sequence[str], scores: Sequence[float],
                   alpha: float = 0.5) -> np.ndarray:
    """A copy of ``frame`` ``(H, W, 3)`` uint8 with ``masks`` ``(K, H, W)`` bool drawn, instance
    ``k`` in colour ``PALETTE[k]`` (so an instance keeps its colour through a video when ``k``
    is its rank). Empty masks draw nothing."""
    image = np.asarray(frame)
    masks = np.asarray(masks, dtype=bool)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if masks.ndim != 3 or masks.shape[1:] != image.shape[:2]:
        raise ValueError(f"masks must be (K, {image.shape[0]}, {image.shape[1]}), got {masks.shape}")
    if not len(labels) == len(scores) == len(masks):
        raise ValueError(f"{len(masks)} masks but {len(labels)} labels and {len(scores)} scores")
    out = image.astype(np.float32)
    shown = [k for k in range(len(masks)) if masks[k].any()]
    colours = [PALETTE[k % len(PALETTE)] for k in shown]
    for k, colour in zip(shown, colours):
        out[masks[k]] = out[masks[k]] * (1 - alpha) + np.asarray(colour, np.float32) * alpha
    out = out.round().astype(np.uint8)
    if not shown:
        return out
    boxes = np.stack([mask_box(masks[k]) for k in shown])
    return draw_boxes(out, boxes, [labels[k] for k in shown], [scores[k] for k in shown], colours)

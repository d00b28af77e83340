"""FGFA motion-speed split (docs/design.md §5), computed from ground-truth tracks.

An object's motion IoU in frame ``t`` is the mean IoU of its box with the same track's boxes in
frames ``t - 10 .. t + 10`` (excluding ``t``; frames where the track is absent are skipped).
Groups: slow if motion IoU > 0.9, medium if 0.7 <= mIoU <= 0.9, fast if < 0.7. An object seen in
no neighbouring frame has no motion IoU and is put in the slow group (it did not move as far as
the annotation can tell).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

SPEED_GROUPS = ("slow", "medium", "fast")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``(N, 4)`` and ``(M, 4)`` xyxy boxes → ``(N, M)``."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(-1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def motion_ious(tracks: Sequence[dict[int, np.ndarray]], radius: int = 10) -> list[dict[int, float]]:
    """Motion IoU of every object in every frame.

    ``tracks[t]`` maps track id → xyxy box in frame ``t``; the result has the same layout with
    motion IoUs (NaN where the track appears in no frame within ``radius``).
    """
    result: list[dict[int, float]] = []
    for t, boxes in enumerate(tracks):
        frame: dict[int, float] = {}
        for track_id, box in boxes.items():
            lo, hi = max(t - radius, 0), min(t + radius, len(tracks) - 1)
            others = [tracks[u][track_id] for u in range(lo, hi + 1) if u != t and track_id in tracks[u]]
            frame[track_id] = float(box_iou(box, np.stack(others)).mean()) if others else float("nan")
        result.append(frame)
    return result


def speed_group(motion_iou: float) -> str:
    """``"slow"`` (> 0.9 or unknown), ``"medium"`` (0.7–0.9) or ``"fast"`` (< 0.7)."""
    if np.isnan(motion_iou) or motion_iou > 0.9:
        return "slow"
    return "medium" if motion_iou >= 0.7 else "fast"

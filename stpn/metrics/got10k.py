"""GOT-10k metrics, exactly as the got10k toolkit computes them (docs/design.md §5).

Per sequence of ``N`` frames the tracker gives a box for every frame (frame 0 is the given
initial box). A frame *counts* when it is not frame 0 and its ``cover`` label (visible share in
eighths) is above 0. Predicted and ground-truth ``x, y, w, h`` boxes are first clipped to the
``width × height`` image (``x`` into ``[0, W]``, then ``w`` into ``[0, W - x]``; same for y, h).

* AO: mean IoU over the counted frames of all sequences pooled together (long sequences weigh
  more, as in the toolkit), not a mean of per-sequence means.
* SR@0.5 / SR@0.75: share of counted frames with IoU *strictly* above 0.5 / 0.75.
* FPS: mean over frames of ``1 / time`` for every frame with a finite, positive time (frame 0's
  initialisation included), pooled over sequences, the toolkit's ``speed_fps``; ``-1`` when no
  times are known.

A frame subset (degraded frames, say) is a per-sequence boolean selector ANDed with the counted
frames; :func:`got10k_metrics` reports AO / SR on it in the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

IOU_THRESHOLDS = {"SR50": 0.5, "SR75": 0.75}


def clip_to_image(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """``(N, 4)`` xywh → a float64 copy clipped to the image (zero width/height allowed)."""
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    boxes[:, 0] = np.clip(boxes[:, 0], 0, width)
    boxes[:, 1] = np.clip(boxes[:, 1], 0, height)
    boxes[:, 2] = np.clip(boxes[:, 2], 0, width - boxes[:, 0])
    boxes[:, 3] = np.clip(boxes[:, 3], 0, height - boxes[:, 1])
    return boxes


def frame_ious(pred: np.ndarray, gt: np.ndarray, width: float, height: float) -> np.ndarray:
    """IoU of each row of two ``(N, 4)`` xywh arrays after clipping both to the image; 0 where
    the union is empty."""
    a, b = clip_to_image(pred, width, height), clip_to_image(gt, width, height)
    if a.shape != b.shape:
        raise ValueError(f"{len(a)} predicted boxes for {len(b)} ground-truth boxes")
    iw = np.maximum(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0)
    ih = np.maximum(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0)
    inter = iw * ih
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    ious = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return np.clip(ious, 0.0, 1.0)


@dataclass
class SequenceResult:
    """One tracked sequence: ``boxes`` / ``gt`` ``(N, 4)`` xywh, ``cover`` ``(N,)`` 0..8,
    image ``width`` / ``height``, optional per-frame ``times`` ``(N,)`` in seconds."""

    name: str
    boxes: np.ndarray
    gt: np.ndarray
    cover: np.ndarray
    width: float
    height: float
    times: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        n = len(self.gt)
        if len(self.boxes) != n or len(self.cover) != n or (self.times is not None and len(self.times) != n):
            lengths = (len(self.boxes), n, len(self.cover), None if self.times is None else len(self.times))
            raise ValueError(f"sequence {self.name!r}: boxes / gt / cover / times lengths differ: {lengths}")

    def counted(self) -> np.ndarray:
        """``(N,)`` bool: frames that count (not frame 0, cover > 0)."""
        keep = np.asarray(self.cover) > 0
        keep[:1] = False
        return keep

    def ious(self) -> np.ndarray:
        """``(N,)`` IoU of every frame (frame 0 and cover-0 frames included)."""
        return frame_ious(self.boxes, self.gt, self.width, self.height)


def speed_fps(times: np.ndarray) -> float:
    """The toolkit's FPS: mean of ``1 / t`` over finite, positive per-frame times; -1 if none."""
    times = np.asarray(times, dtype=np.float64).ravel()
    times = times[np.isfinite(times) & (times > 0)]
    return float(np.mean(1.0 / times)) if len(times) else -1.0


def summarize_ious(ious: np.ndarray) -> dict[str, float]:
    """AO / SR50 / SR75 of pooled IoUs (NaN for an empty set)."""
    ious = np.asarray(ious, dtype=np.float64)
    if len(ious) == 0:
        return {"AO": float("nan"), **{k: float("nan") for k in IOU_THRESHOLDS}}
    return {"AO": float(np.mean(ious)), **{k: float(np.mean(ious > t)) for k, t in IOU_THRESHOLDS.items()}}


def got10k_metrics(
    sequences: Sequence[SequenceResult], selectors: Optional[Sequence[np.ndarray]] = None
) -> dict[str, float]:
    """``{"AO", "SR50", "SR75", "FPS", "num_sequences", "num_frames"}`` over ``sequences``.

    ``selectors``: one ``(N,)`` bool array per sequence; only counted frames it selects enter
    AO / SR and ``num_frames`` (FPS always uses every frame's time).
    """
    if selectors is not None and len(selectors) != len(sequences):
        raise ValueError(f"{len(selectors)} selectors for {len(sequences)} sequences")
    pooled, times = [], []
    for i, seq in enumerate(sequences):
        keep = seq.counted()
        if selectors is not None:
            select = np.asarray(selectors[i], dtype=bool)
            if select.shape != keep.shape:
                raise ValueError(f"sequence {seq.name!r}: selector of shape {select.shape} for {len(keep)} frames")
            keep &= select
        pooled.append(seq.ious()[keep])
        if seq.times is not None:
            times.append(np.asarray(seq.times, dtype=np.float64))
    ious = np.concatenate(pooled) if pooled else np.zeros(0)
    fps = speed_fps(np.concatenate(times)) if times else -1.0
    return {**summarize_ious(ious), "FPS": fps, "num_sequences": len(sequences), "num_frames": int(len(ious))}

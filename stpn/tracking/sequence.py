"""Track one object through a whole video: the loop shared by ``stpn track``, the dataset
evaluator and training-time evaluation.

Frames are RGB ``(H, W, 3)`` uint8 arrays or image paths (loaded with
:func:`stpn.data.types.load_frame`). A frame's time covers the tracker call only (``init`` for
frame 0, ``update`` after), not reading the frame, as in the got10k toolkit.
"""
from __future__ import annotations

import time
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from stpn.data.types import FrameSource, load_frame
from stpn.tracking.online import OnlineTracker


def as_online_tracker(model_or_tracker, **online_kwargs) -> OnlineTracker:
    """An :class:`OnlineTracker`: the argument itself, or a new one around a model."""
    if isinstance(model_or_tracker, OnlineTracker):
        if online_kwargs:
            raise ValueError(f"settings {sorted(online_kwargs)} given with a ready OnlineTracker")
        return model_or_tracker
    return OnlineTracker(model_or_tracker, **online_kwargs)


def follow(
    tracker: OnlineTracker, frames: Iterable[FrameSource], init_box: Sequence[float]
) -> Iterator[tuple[int, np.ndarray, np.ndarray, Optional[float], float]]:
    """Yield ``(t, image, box_xywh (4,), score or None, seconds)`` for every frame; frame 0
    gives the initial box (clipped to the image) and no score."""
    for t, source in enumerate(frames):
        image = load_frame(source)
        start = time.perf_counter()
        if t == 0:
            tracker.init(image, init_box)
            box, score = np.asarray(tracker.state, dtype=np.float64), None
        else:
            box, score = tracker.update(image)
        yield t, image, box, score, time.perf_counter() - start


def track_video(
    model_or_tracker, frames: Iterable[FrameSource], init_box: Sequence[float], **online_kwargs
) -> tuple[np.ndarray, list[Optional[float]], np.ndarray]:
    """``(boxes (N, 4) xywh float64, scores (N,) [None for frame 0 / no score head],
    times (N,) seconds)`` for a whole video; ``online_kwargs`` go to :class:`OnlineTracker`."""
    tracker = as_online_tracker(model_or_tracker, **online_kwargs)
    boxes, scores, times = [], [], []
    for _, _, box, score, seconds in follow(tracker, frames, init_box):
        boxes.append(box)
        scores.append(score)
        times.append(seconds)
    if not boxes:
        raise ValueError("the video has no frames")
    return np.stack(boxes), scores, np.asarray(times)

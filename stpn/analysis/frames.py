"""Which frames ``stpn explain`` shows: the ones asked for (``--frames``), checked against the
videos, or by default the most degraded frames of the dataset.

"Most degraded" (the issue leaves it open): a frame's degradation is the number of its objects
that a deterioration hit plus the number of frame-wide deteriorations; frames without objects
are skipped (a CAM of nothing says little), ties go to the earlier video and frame, and each
video gives at most one frame, so that the pictures show different scenes.
"""
from __future__ import annotations

from stpn.data.types import FrameAnnotation, VideoDataset

Frame = tuple[int, int]  # (video index, frame index)


def degradation(annotation: FrameAnnotation) -> int:
    """Objects hit by a deterioration + frame-wide deteriorations of one frame."""
    return sum(bool(i.deteriorations) for i in annotation.instances) + len(annotation.deteriorations)


def frame_kinds(annotation: FrameAnnotation) -> list[str]:
    """Every deterioration kind that hit the frame or one of its objects, sorted."""
    return sorted(set(annotation.deteriorations).union(*(i.deteriorations for i in annotation.instances)))


def most_degraded_frames(dataset: VideoDataset, count: int) -> list[Frame]:
    """Up to ``count`` frames with objects and the highest :func:`degradation`, one per video."""
    best: dict[int, tuple[int, int]] = {}
    for v, video in enumerate(dataset.videos):
        scored = [(degradation(a), -t) for t, a in enumerate(video.annotations) if a.instances and degradation(a)]
        if scored:
            score, minus_t = max(scored)
            best[v] = (score, -minus_t)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0], item[1][1]))
    return [(v, t) for v, (_, t) in ranked[:count]]


def spread_frames(length: int, count: int) -> list[Frame]:
    """``count`` frames spread evenly over a single video without annotations (a video file)."""
    count = min(count, length)
    return [(0, round(i * (length - 1) / max(count - 1, 1))) for i in range(count)] if count else []


def _index(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"--frames: {what} {text!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"--frames: {what} {value} is negative")
    return value


def parse_frames(text: str, dataset: VideoDataset) -> list[Frame]:
    """``--frames``: comma-separated ``T`` (a single video) or ``V:T`` (video ``V`` of a
    dataset, 0-based), each checked to exist."""
    frames = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        video, sep, frame = item.rpartition(":")
        if not sep and len(dataset.videos) > 1:
            raise ValueError(f"--frames: {item!r} is ambiguous in a dataset of {len(dataset.videos)} videos; "
                             "write VIDEO:FRAME (0-based)")
        v = _index(video, "video") if sep else 0
        t = _index(frame, "frame")
        if v >= len(dataset.videos):
            raise ValueError(f"--frames: video {v} is past the end of the dataset ({len(dataset.videos)} videos)")
        length = len(dataset.videos[v])
        if t >= length:
            raise ValueError(f"--frames: frame {t} is past the end of video {dataset.videos[v].name!r} "
                             f"({length} frames, 0-{length - 1})")
        frames.append((v, t))
    if not frames:
        raise ValueError("--frames: no frame given")
    return frames

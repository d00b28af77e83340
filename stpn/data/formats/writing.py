"""What every writer shares: validating a video before it is written, saving its frames as
JPEG, and the summary a writer returns."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator

import numpy as np

from stpn.data.formats.errors import ProblemLog
from stpn.data.formats.geometry import check_box
from stpn.data.types import FrameSource, Video, load_frame

JPEG_QUALITY = 90


@dataclass
class WriteSummary:
    """What a writer put on disk."""

    format: str
    root: Path
    videos: int = 0
    frames: int = 0
    objects: int = 0  # object instances summed over frames
    files: list[Path] = field(default_factory=list)  # annotation files written (not frames)
    note: str = ""  # format-specific remark, e.g. GOT-10k's sequence count

    def count(self, video: Video) -> None:
        self.videos += 1
        self.frames += len(video)
        self.objects += sum(len(a.instances) for a in video.annotations)


def check_video(video: Video, categories: list[str]) -> None:
    """Raise ``ValueError`` if ``video`` cannot be written consistently by any format."""
    check_relative_name(video.name)
    if len(video) == 0:
        raise ValueError(f"video {video.name!r} has no frames")
    if len(video.frames) != len(video.annotations):
        raise ValueError(
            f"video {video.name!r} has {len(video.frames)} frames but {len(video.annotations)} annotations"
        )
    for t, (frame, annotation) in enumerate(zip(video.frames, video.annotations)):
        if isinstance(frame, np.ndarray) and frame.shape[:2] != (video.height, video.width):
            raise ValueError(
                f"video {video.name!r} frame {t} is {frame.shape[1]}x{frame.shape[0]}, "
                f"the video says {video.width}x{video.height}"
            )
        seen: set[int] = set()
        for inst in annotation.instances:
            if not 0 <= inst.category_id < len(categories):
                raise ValueError(
                    f"video {video.name!r} frame {t} track {inst.track_id}: category_id "
                    f"{inst.category_id} is outside the {len(categories)} categories"
                )
            if inst.track_id in seen:
                raise ValueError(f"video {video.name!r} frame {t}: track id {inst.track_id} appears twice")
            seen.add(inst.track_id)
            if np.asarray(inst.box).shape != (4,):
                raise ValueError(f"video {video.name!r} frame {t} track {inst.track_id}: box must have 4 values")
            # the readers' box rule, raised as a DatasetFormatError (a ValueError)
            check_box(inst.box, video.width, video.height, ProblemLog(strict=True), f"video {video.name!r}",
                      f"frame {t} track {inst.track_id}")


def check_relative_name(name: str) -> None:
    """Video names become folders: relative POSIX paths without ``..``."""
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name:
        raise ValueError(f"video name {name!r} must be a non-empty relative path without '..'")


def save_frame(source: FrameSource, path: Path) -> None:
    """Write one frame as JPEG (quality :data:`JPEG_QUALITY`); a JPEG file is copied unchanged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not isinstance(source, np.ndarray) and Path(source).suffix.lower() in (".jpg", ".jpeg"):
        shutil.copyfile(source, path)
        return
    from PIL import Image

    Image.fromarray(load_frame(source)).save(path, format="JPEG", quality=JPEG_QUALITY)


def checked_videos(videos: Iterable[Video], categories: list[str], summary: WriteSummary) -> Iterator[Video]:
    """Validate and count each video as a writer consumes the stream; reject repeated names."""
    names: set[str] = set()
    for video in videos:
        check_video(video, categories)
        if video.name in names:
            raise ValueError(f"two videos are named {video.name!r}")
        names.add(video.name)
        yield video
        summary.count(video)


def video_tracks(video: Video) -> dict[int, list]:
    """Track id → its :class:`~stpn.data.types.Instance` in every frame (``None`` where absent),
    in order of first appearance. A track that changes category is a ``ValueError`` (track-level
    formats store one category per track)."""
    tracks: dict[int, list] = {}
    for t, annotation in enumerate(video.annotations):
        for inst in annotation.instances:
            track = tracks.setdefault(inst.track_id, [None] * len(video))
            track[t] = inst
            first = next(i for i in track if i is not None)
            if first.category_id != inst.category_id:
                raise ValueError(f"video {video.name!r} track {inst.track_id} changes category at frame {t}")
    return tracks

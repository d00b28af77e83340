"""What the analysis commands look at: a video file, a dataset on disk, or the built-in benchmark.

A video file becomes a one-video :class:`VideoDataset` without annotations (read whole: the
per-video prompts need every frame). A dataset directory is read with its format detected; with
no ``--split`` its ``val`` split is taken, or its only split. The built-in benchmark is drawn by
default with the validation settings of ``stpn demo`` (seed 2 is the demo's validation seed for
data seed 0; one class per video), so that ``stpn explain --checkpoint runs/demo/...`` shows
the videos the demo's table was measured on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from stpn.data.types import FrameAnnotation, Video, VideoDataset


@dataclass(frozen=True)
class BenchmarkSettings:
    """The built-in benchmark's videos (:func:`stpn.data.synthetic.generate_dataset`)."""

    videos: int = 16
    frames: int = 24
    size: int = 128
    seed: int = 2
    single_class: bool = True


def read_video_file(path: str | Path) -> VideoDataset:
    """All frames of a video file, as a dataset of one unannotated video (no classes)."""
    from stpn.data.video import VideoReader

    reader = VideoReader(path)
    frames = list(reader)
    if not frames:
        raise ValueError(f"{path}: the video has no frames")
    height, width = frames[0].shape[:2]
    return VideoDataset([], [Video(Path(path).stem, frames, [FrameAnnotation() for _ in frames], height, width)])


def read_dataset_split(root: str | Path, fmt: Optional[str] = None, split: Optional[str] = None) -> VideoDataset:
    """One split of a dataset directory (``val`` or the only split when ``split`` is ``None``)."""
    from stpn.data.formats import dataset_splits, detect_format, read_dataset

    fmt = fmt or detect_format(root)
    if split is None:
        splits = dataset_splits(root, fmt)
        if "val" in splits:
            split = "val"
        elif len(splits) == 1:
            split = splits[0]
        else:
            raise ValueError(f"{root}: choose a split with --split (it has {', '.join(splits) or 'none'})")
    return read_dataset(root, fmt, split)


def read_source(source: Optional[str], fmt: Optional[str], split: Optional[str],
                benchmark: BenchmarkSettings, progress: bool = True) -> VideoDataset:
    """``source`` as a video file or dataset directory; the built-in benchmark when ``None``."""
    if source is None:
        from stpn.data.synthetic import generate_dataset

        return generate_dataset(benchmark.videos, benchmark.frames, benchmark.size, benchmark.seed,
                                progress=progress, single_class=benchmark.single_class)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such video file or dataset directory")
    return read_dataset_split(path, fmt, split) if path.is_dir() else read_video_file(path)

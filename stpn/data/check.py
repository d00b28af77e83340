"""``check_dataset(root)``: read a dataset in any format, collect every problem, and count what is
in it (videos, frames, objects per class, FGFA motion-speed groups, deteriorations).

Besides what the readers report (see :mod:`stpn.data.formats`), the check decodes every frame
file (``quick``: reads only the first frame's header) and compares its size with the video's,
flags tracks that change class, and for GOT-10k a missing ``cover.label``, a first frame without
a box and a one-line ``groundtruth.txt`` outside the test split.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

import numpy as np

from stpn.data.formats import DatasetFormatError, ProblemLog, dataset_splits, detect_format, read_dataset
from stpn.data.formats.frame_files import image_size
from stpn.data.formats.text_files import read_lines
from stpn.data.motion_speed import SPEED_GROUPS, motion_ious, speed_group
from stpn.data.types import DETERIORATIONS, Video, VideoDataset


@dataclass
class DatasetStatistics:
    videos: int = 0
    still_images: int = 0  # one-frame videos
    frames: int = 0
    annotated_frames: int = 0  # frames with at least one object
    objects_per_class: Counter = field(default_factory=Counter)  # object instances (summed over frames)
    tracks_per_class: Counter = field(default_factory=Counter)
    speed_groups: Counter = field(default_factory=Counter)  # object instances per FGFA speed group
    frame_deteriorations: Counter = field(default_factory=Counter)
    object_deteriorations: Counter = field(default_factory=Counter)

    def add(self, other: "DatasetStatistics") -> None:
        for name, value in vars(other).items():
            if isinstance(value, Counter):
                getattr(self, name).update(value)  # keeps zero counts, unlike Counter + Counter
            else:
                setattr(self, name, getattr(self, name) + value)


def dataset_statistics(dataset: VideoDataset) -> DatasetStatistics:
    """Counts over an in-memory dataset (no file access)."""
    stats = DatasetStatistics()
    for name in dataset.categories:  # list unused classes too, with zero counts
        stats.objects_per_class[name] += 0
        stats.tracks_per_class[name] += 0
    for video in dataset.videos:
        stats.videos += 1
        stats.still_images += len(video) == 1
        stats.frames += len(video)
        tracks: dict[int, int] = {}
        for annotation in video.annotations:
            stats.annotated_frames += bool(annotation.instances)
            stats.frame_deteriorations.update(annotation.deteriorations)
            for inst in annotation.instances:
                stats.objects_per_class[dataset.categories[inst.category_id]] += 1
                stats.object_deteriorations.update(inst.deteriorations)
                tracks.setdefault(inst.track_id, inst.category_id)
        stats.tracks_per_class.update(dataset.categories[c] for c in tracks.values())
        boxes = [{i.track_id: np.asarray(i.box) for i in a.instances} for a in video.annotations]
        stats.speed_groups.update(speed_group(m) for frame in motion_ious(boxes) for m in frame.values())
    return stats


@dataclass
class DatasetReport:
    root: Path
    format: Optional[str]
    splits: list[str]
    statistics: DatasetStatistics
    problems: list[DatasetFormatError]

    @property
    def ok(self) -> bool:
        return not self.problems

    def format_table(self) -> str:
        return format_report(self)


def check_dataset(root: Union[str, Path], fmt: Optional[str] = None, quick: bool = False) -> DatasetReport:
    """Check every split of the dataset at ``root`` (format detected unless ``fmt`` is given).
    Every frame file is decoded (corrupt, truncated or differently sized frames are problems)
    unless ``quick``, which reads only each video's first frame header."""
    root = Path(root)
    report = DatasetReport(root, fmt, [], DatasetStatistics(), [])
    try:
        report.format = fmt or detect_format(root)
        report.splits = dataset_splits(root, report.format)
    except DatasetFormatError as exc:
        report.problems.append(exc)
        return report
    if not report.splits:
        report.problems.append(DatasetFormatError(root, "splits", f"no {report.format} splits found"))
    for split in report.splits:
        log = ProblemLog(strict=False)
        dataset = read_dataset(root, report.format, split, log)
        check_consistency(dataset, log, decode=not quick)
        if report.format == "got10k":
            check_got10k_split(root / split, split, dataset, log)
        report.problems += log.problems
        report.statistics.add(dataset_statistics(dataset))
    return report


def check_consistency(dataset: VideoDataset, log: ProblemLog, decode: bool = True) -> None:
    """Checks beyond the readers': every frame file decodes (``decode``; else only the first
    frame's header is read) and has the video's size; one class per track."""
    for video in dataset.videos:
        check_frame_files(video, log, decode)
        classes: dict[int, int] = {}
        reported: set[int] = set()
        for t, annotation in enumerate(video.annotations):
            for inst in annotation.instances:
                changed = classes.setdefault(inst.track_id, inst.category_id) != inst.category_id
                if changed and inst.track_id not in reported:
                    log.report(video.frames[t], f"track {inst.track_id}", f"changes class in video {video.name!r}")
                    reported.add(inst.track_id)


def check_frame_files(video: Video, log: ProblemLog, decode: bool = True) -> None:
    """Each frame file of ``video`` (only the first unless ``decode``) must be readable and of
    the video's declared size; the first differing frame is reported, with the count of others."""
    paths = [Path(f) for f in video.frames if isinstance(f, (str, Path))]
    odd = []
    for path in paths if decode else paths[:1]:
        size = image_size(path, log, decode=decode)
        if size is not None and size != (video.width, video.height):
            odd.append((path, size))
    if odd:
        (path, (w, h)), more = odd[0], len(odd) - 1
        others = f"; {more} more frame(s) of this video differ" if more else ""
        log.report(path, "size", f"image is {w}x{h}, the annotation says {video.width}x{video.height} "
                   f"(all frames of video {video.name!r} must have one size){others}")


def check_got10k_split(split_dir: Path, split: str, dataset: VideoDataset, log: ProblemLog) -> None:
    """What GOT-10k training and evaluation need beyond what the reader checks: ``cover.label``,
    a box in the first frame, and (except in the test split) a box line for every frame."""
    for video in dataset.videos:
        folder = split_dir / video.name
        if not (folder / "cover.label").is_file():
            log.report(folder / "cover.label", "file", "cover.label is missing (visible share per frame)")
        if video.annotations and not video.annotations[0].instances:
            log.report(folder / "groundtruth.txt", "line 1",
                       "the first frame has no box (marked absent): a track cannot start from it")
        if split != "test" and len(video) > 1:
            lines = read_lines(folder / "groundtruth.txt", log)
            if lines is not None and len(lines) == 1:
                log.report(folder / "groundtruth.txt", "lines", f"one box for {len(video)} frames: only the "
                           "test split may give just the first frame's box")


def _rows(title: str, header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    width = max([len(header[0])] + [len(str(r[0])) for r in rows])
    lines = [title, "  " + header[0].ljust(width) + "".join(h.rjust(10) for h in header[1:])]
    lines += ["  " + str(r[0]).ljust(width) + "".join(str(v).rjust(10) for v in r[1:]) for r in rows]
    return lines


def format_report(report: DatasetReport) -> str:
    """The statistics as plain-text tables, followed by every problem."""
    lines = [f"{report.root}  format: {report.format or 'unknown'}  splits: {', '.join(report.splits) or '-'}"]
    if report.format is not None:
        lines += _statistics_lines(report.statistics)
    if report.problems:
        lines.append(f"Problems ({len(report.problems)}):")
        lines += [f"  {p}" for p in report.problems]
    else:
        lines.append("No problems found.")
    return "\n".join(lines)


def _statistics_lines(s: DatasetStatistics) -> list[str]:
    objects = sum(s.objects_per_class.values())
    lines = _rows("Totals", ("", "count"), [
        ("videos", s.videos), ("still images", s.still_images), ("frames", s.frames),
        ("annotated frames", s.annotated_frames), ("tracks", sum(s.tracks_per_class.values())), ("objects", objects)])
    classes = list(dict.fromkeys([*s.tracks_per_class, *s.objects_per_class]))  # category order
    lines += _rows("Objects per class", ("class", "tracks", "objects"),
                   [(c, s.tracks_per_class[c], s.objects_per_class[c]) for c in classes])
    lines += _rows("Motion speed (FGFA motion IoU over t±10)", ("group", "objects", "share"),
                   [(g, s.speed_groups[g], f"{100 * s.speed_groups[g] / max(objects, 1):.1f}%") for g in SPEED_GROUPS])
    seen = set(s.frame_deteriorations) | set(s.object_deteriorations)
    names = list(DETERIORATIONS) + sorted(seen - set(DETERIORATIONS))
    lines += _rows("Deteriorations", ("name", "frames", "objects"),
                   [(n, s.frame_deteriorations[n], s.object_deteriorations[n]) for n in names])
    return lines

"""ImageNet VID on disk (layout of ILSVRC2015)::

    root/Data/VID/<split>/<video>/000000.JPEG ...
    root/Annotations/VID/<split>/<video>/000000.xml ...      (see vid_xml.py)
    root/ImageSets/VID_<split>_videos.txt                     (video list)
    root/ImageSets/VID_<split>_15frames.txt                   (training key frames)

``<video>`` may contain slashes (``ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000``). A
split without an ``Annotations`` folder (the VID test set) reads as unannotated videos.

What VID XML cannot carry (frame and object deteriorations, exact visible fractions, masks) goes
to ``Annotations/VID/<split>/<video>/stpn_extras.json`` (see extras.py), and the class list to
``root/categories.txt``; with these the synthetic benchmark round-trips exactly except for boxes,
which VID stores in whole pixels.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from stpn.data.formats.errors import ProblemLog, strict_if_none
from stpn.data.formats.extras import SIDECAR_NAME, apply_sidecar, write_categories, write_sidecar
from stpn.data.formats.frame_files import check_numbering, image_size, list_frames
from stpn.data.formats.image_sets import find_image_set, image_set_lines, resolve_image_set, write_image_set
from stpn.data.formats.vid_xml import category_lookup, frame_xml, parse_frame_xml, resolve_categories
from stpn.data.formats.writing import WriteSummary, checked_videos, save_frame
from stpn.data.types import FrameAnnotation, Video, VideoDataset


def spread_frames(length: int, count: int) -> list[int]:
    """The centre frame of each of ``count`` equal segments (every frame if the video is shorter)."""
    count = min(count, length)
    return sorted({int((k + 0.5) * length / count) for k in range(count)})


def write_imagenet_vid(
    videos: Iterable[Video], categories: Sequence[str], root: Union[str, Path], split: str = "train",
    key_frames: int = 15,
) -> WriteSummary:
    """Write videos as an ImageNet VID tree; ``key_frames`` per video go to the key-frame list."""
    root, categories = Path(root), list(categories)
    summary = WriteSummary("vid", root)
    video_lines, key_lines, first = [], [], 1
    for video in checked_videos(videos, categories, summary):
        data_dir = root / "Data" / "VID" / split / video.name
        ann_dir = root / "Annotations" / "VID" / split / video.name
        ann_dir.mkdir(parents=True, exist_ok=True)
        for t, (frame, annotation) in enumerate(zip(video.frames, video.annotations)):
            save_frame(frame, data_dir / f"{t:06d}.JPEG")
            xml = frame_xml(annotation, categories, video.name, f"{t:06d}", video.width, video.height)
            (ann_dir / f"{t:06d}.xml").write_bytes(xml)
        write_sidecar(ann_dir / SIDECAR_NAME, video.annotations)
        video_lines.append(f"{split}/{video.name} {first} 0 {len(video)}")
        key_lines += [f"{split}/{video.name} 1 {t} {len(video)}" for t in spread_frames(len(video), key_frames)]
        first += len(video)
    summary.files += [
        write_image_set(root, f"VID_{split}_videos.txt", video_lines),
        write_image_set(root, f"VID_{split}_{key_frames}frames.txt", key_lines),
        write_categories(root, categories),
    ]
    return summary


def vid_splits(root: Union[str, Path]) -> list[str]:
    folder = Path(root) / "Data" / "VID"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _listed_videos(list_file: Path, split: str, log: ProblemLog) -> list[tuple[str, Optional[int], str]]:
    """``(video, expected length or None, field)`` for each distinct video of an image set."""
    seen: dict[str, tuple[str, Optional[int], str]] = {}
    for path, columns, field in image_set_lines(list_file, split, log):
        video = path.rsplit("/", 1)[0] if len(columns) == 1 else path  # frame lists name frames
        length = None
        if len(columns) == 3:
            if not columns[2].isdigit():
                log.report(list_file, field, f"frame count {columns[2]!r} is not an integer")
                continue
            length = int(columns[2])
        seen.setdefault(video, (video, length, field))
    return list(seen.values())


def _walked_videos(split_dir: Path) -> list[tuple[str, Optional[int], str]]:
    """Folders under ``split_dir`` holding JPEG files, as video names."""
    names = []
    for folder, _, files in os.walk(split_dir):
        if any(f.lower().endswith((".jpeg", ".jpg")) for f in files):
            names.append(Path(folder).relative_to(split_dir).as_posix())
    return [(name, None, "") for name in sorted(names)]


def read_imagenet_vid(
    root: Union[str, Path], split: str = "train", image_set: Union[str, Path, None] = None,
    categories: Optional[Sequence[str]] = None, log: Optional[ProblemLog] = None,
) -> VideoDataset:
    """Read one split. Videos come from ``image_set`` (any VID list: videos, key frames or
    frames), else ``VID_<split>_videos.txt`` if present, else every frame folder of the split.
    Categories: ``categories``, else ``root/categories.txt``, else the 30 VID classes (by class
    name; synsets in ``<name>`` resolve to them). Frames stay file paths."""
    log, root = strict_if_none(log), Path(root)
    categories = resolve_categories(root, categories, log)
    lookup = category_lookup(categories)
    list_file = resolve_image_set(root, image_set) if image_set else find_image_set(root, [f"VID_{split}_videos.txt"])
    entries = _listed_videos(list_file, split, log) if list_file else _walked_videos(root / "Data" / "VID" / split)
    videos = []
    for name, length, field in entries:
        video = _read_video(root, split, name, lookup, log)
        if video is not None and length is not None and length != len(video):
            log.report(list_file, field, f"says {length} frames but {name} has {len(video)} frame files")
        if video is not None:
            videos.append(video)
    if not videos:
        log.report(root / "Data" / "VID" / split, "videos", "no videos found")
    return VideoDataset(categories, videos)


def _read_video(root: Path, split: str, name: str, lookup: dict[str, int], log: ProblemLog) -> Optional[Video]:
    data_dir = root / "Data" / "VID" / split / name
    ann_dir = root / "Annotations" / "VID" / split / name
    frames = list_frames(data_dir)
    if not frames:
        log.report(data_dir, "frames", "no frame files (missing folder or empty video)")
        return None
    if not check_numbering(frames, 0, data_dir, log):
        return None
    if not (root / "Annotations" / "VID" / split).is_dir():  # an unannotated split (VID test)
        size = image_size(frames[0], log)
        return Video(name, frames, [FrameAnnotation() for _ in frames], size[1], size[0]) if size else None
    if not ann_dir.is_dir():
        log.report(ann_dir, "annotations", "annotation folder of the video is missing")
        return None
    stems = {p.stem for p in frames}
    for xml in sorted(ann_dir.glob("*.xml")):
        if xml.stem not in stems:
            missing = data_dir / f"{xml.stem}.JPEG"
            log.report(xml, "frame file", f"annotates frame {xml.stem} but {missing} is missing")
    annotations, incomplete, size = [], [], None
    for frame in frames:
        xml = ann_dir / f"{frame.stem}.xml"
        parsed = parse_frame_xml(xml, lookup, log)
        if parsed is not None and size is not None and (parsed.width, parsed.height) != size:
            log.report(xml, "size",
                       f"{parsed.width}x{parsed.height} differs from the first frame's {size[0]}x{size[1]}")
        if parsed is not None:
            size = size or (parsed.width, parsed.height)
        annotations.append(parsed.annotation if parsed is not None else FrameAnnotation())
        incomplete.append(parsed is None or parsed.dropped)
    size = size or image_size(frames[0], log)
    if size is None:
        return None
    apply_sidecar(ann_dir / SIDECAR_NAME, annotations, size[1], size[0], log, incomplete)
    return Video(name, frames, annotations, height=size[1], width=size[0])


def read_key_frames(
    list_file: Union[str, Path], dataset: VideoDataset, split: str = "train", log: Optional[ProblemLog] = None
) -> list[tuple[int, int]]:
    """``(video index, frame index)`` pairs of a key-frame list (``VID_train_15frames.txt``,
    ``train/<video> 1 <frame> <frames>``) or frame list (``val/<video>/000123 <n>``), for
    :class:`stpn.data.clips.ClipDataset` ``key_frames``."""
    log, list_file = strict_if_none(log), Path(list_file)
    index = {video.name: i for i, video in enumerate(dataset.videos)}
    pairs = []
    for path, columns, field in image_set_lines(list_file, split, log):
        if len(columns) == 1:
            video, _, frame = path.rpartition("/")
        elif len(columns) == 3:
            video, frame = path, columns[1]
        else:
            log.report(list_file, field, f"expected 2 or 4 columns, got {len(columns) + 1}")
            continue
        if video not in index:
            log.report(list_file, field, f"video {video!r} is not in the dataset")
        elif not frame.isdigit() or int(frame) >= len(dataset.videos[index[video]]):
            log.report(list_file, field, f"frame {frame!r} is outside video {video!r}")
        else:
            pairs.append((index[video], int(frame)))
    return pairs

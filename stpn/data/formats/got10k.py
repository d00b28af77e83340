"""GOT-10k (single-object tracking)::

    root/<split>/list.txt                    sequence names, one per line
    root/<split>/<sequence>/00000001.jpg ...
    root/<split>/<sequence>/groundtruth.txt  x,y,w,h per frame (4 decimals); the test split has
                                             only the first frame's line
    root/<split>/<sequence>/absence.label    1 where the object is out of view, else 0
    root/<split>/<sequence>/cover.label      visible share in eighths, 0 (hidden) .. 8 (fully seen)
    root/<split>/<sequence>/cut_by_image.label  1 where the box reaches past the image border
    root/<split>/<sequence>/meta_info.ini    [METAINFO] object_class: ..., resolution: (W, H), ...

One object per sequence, so writing a video makes one sequence per track, spanning the track's
first to last frame: named like the video if it has one track, else ``<video>_<track id>``
(videos without objects are skipped). Absent frames get a ``0,0,0,0`` box, absence 1 and cover
0; ``cover = ceil(8 · visible_fraction)`` and reads back as ``cover / 8``. ``meta_info.ini`` gets
the extra keys ``source_video``, ``track_id`` and ``first_frame`` (the reader takes the track id
from it, default 0); the side-car ``stpn_extras.json`` keeps deteriorations, exact visible
fractions and masks, and ``root/categories.txt`` the class list. Without a class list the
reader uses the sorted ``object_class`` names it finds.
"""
from __future__ import annotations

import configparser
import math
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union


from stpn.data.formats.errors import ProblemLog, strict_if_none
from stpn.data.formats.extras import SIDECAR_NAME, apply_sidecar, read_categories, write_categories, write_sidecar
from stpn.data.formats.frame_files import check_numbering, image_size, list_frames
from stpn.data.formats.geometry import check_box, parse_numbers, xywh_to_xyxy, xyxy_to_xywh
from stpn.data.formats.text_files import read_lines, read_text
from stpn.data.formats.writing import WriteSummary, checked_videos, save_frame, video_tracks
from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset


def cover_level(visible_fraction: float) -> int:
    """Visible share → GOT-10k cover level ``ceil(8 v)`` (0 only when fully hidden)."""
    return min(8, max(0, math.ceil(round(8 * visible_fraction, 6))))


def write_got10k(
    videos: Iterable[Video], categories: Sequence[str], root: Union[str, Path], split: str = "train"
) -> WriteSummary:
    root, categories = Path(root), list(categories)
    summary = WriteSummary("got10k", root)
    names: list[str] = []
    for video in checked_videos(videos, categories, summary):
        tracks = video_tracks(video)
        for track_id, track in tracks.items():
            name = video.name if len(tracks) == 1 else f"{video.name}_{track_id}"
            if name in names:
                raise ValueError(f"two GOT-10k sequences would be named {name!r}")
            names.append(name)
            _write_sequence(root / split / name, video, track_id, track, categories)
    list_file = root / split / "list.txt"
    list_file.parent.mkdir(parents=True, exist_ok=True)
    list_file.write_text("".join(f"{n}\n" for n in names))
    summary.files += [list_file, write_categories(root, categories)]
    summary.note = f"{len(names)} sequences (one per track)"
    return summary


def _write_sequence(folder: Path, video: Video, track_id: int, track: list, categories: list[str]) -> None:
    present = [t for t, inst in enumerate(track) if inst is not None]
    span = range(present[0], present[-1] + 1)
    boxes, absence, cover, annotations = [], [], [], []
    for k, t in enumerate(span):
        save_frame(video.frames[t], folder / f"{k + 1:08d}.jpg")
        inst = track[t]
        boxes.append(",".join(f"{v:.4f}" for v in (xyxy_to_xywh(inst.box) if inst else [0, 0, 0, 0])))
        absence.append("0" if inst else "1")
        cover.append(str(cover_level(inst.visible_fraction) if inst else 0))
        annotations.append(FrameAnnotation([inst] if inst else [], video.annotations[t].deteriorations))
    cut = [str(int(_cut_by_image(track[t], video.width, video.height))) for t in span]
    labels = (("groundtruth.txt", boxes), ("absence.label", absence), ("cover.label", cover),
              ("cut_by_image.label", cut))
    for file, lines in labels:
        (folder / file).write_text("".join(f"{line}\n" for line in lines))
    meta = {
        "object_class": categories[track[present[0]].category_id], "resolution": f"({video.width}, {video.height})",
        "anno_fps": "10Hz", "source_video": video.name, "track_id": str(track_id), "first_frame": str(span[0]),
    }
    # real GOT-10k writes "key: value" lines, and the got10k toolkit parses only that form
    (folder / "meta_info.ini").write_text("[METAINFO]\n" + "".join(f"{k}: {v}\n" for k, v in meta.items()))
    write_sidecar(folder / SIDECAR_NAME, annotations)


def _cut_by_image(instance, width: int, height: int) -> bool:
    """GOT-10k's ``cut_by_image.label``: the object's box reaches past the image border."""
    if instance is None:
        return False
    x1, y1, x2, y2 = (float(v) for v in instance.box)
    return x1 < 0 or y1 < 0 or x2 > width or y2 > height


def got10k_splits(root: Union[str, Path]) -> list[str]:
    root = Path(root)
    return sorted(p.parent.name for p in root.glob("*/list.txt"))


def read_got10k(
    root: Union[str, Path], split: str = "train", categories: Optional[Sequence[str]] = None,
    log: Optional[ProblemLog] = None,
) -> VideoDataset:
    """Read one split as one-track videos; frames stay file paths."""
    log, root = strict_if_none(log), Path(root)
    split_dir = root / split
    list_file = split_dir / "list.txt"
    if list_file.is_file():
        names = read_lines(list_file, log) or []
    else:
        names = sorted(p.name for p in split_dir.iterdir() if p.is_dir()) if split_dir.is_dir() else []
    fixed = list(categories) if categories is not None else read_categories(root, log)
    parsed = [(name, seq) for name in names if (seq := _read_sequence(split_dir / name, log)) is not None]
    classes = fixed if fixed is not None else sorted({seq["object_class"] for _, seq in parsed})
    index = {c: i for i, c in enumerate(classes)}
    videos = []
    for name, seq in parsed:
        if seq["object_class"] not in index:
            log.report(split_dir / name / "meta_info.ini", "object_class", f"unknown class {seq['object_class']!r}")
            continue
        category = index[seq["object_class"]]
        annotations = [
            FrameAnnotation([] if box is None else [Instance(seq["track_id"], category, box, visible_fraction=visible)])
            for box, visible in seq["frames"]
        ]
        apply_sidecar(split_dir / name / SIDECAR_NAME, annotations, seq["height"], seq["width"], log)
        videos.append(Video(name, seq["files"], annotations, height=seq["height"], width=seq["width"]))
    if not videos:
        log.report(split_dir, "sequences", "no sequences found")
    return VideoDataset(classes, videos)


def _read_labels(path: Path, length: int, allowed: range, log: ProblemLog) -> Optional[list[int]]:
    """A ``*.label`` file: one integer in ``allowed`` per frame; ``None`` if absent or bad."""
    if not path.is_file():
        return None
    lines = read_lines(path, log)
    if lines is None:
        return None
    if len(lines) != length:
        log.report(path, "lines", f"{len(lines)} labels for {length} frames")
        return None
    for n, line in enumerate(lines, start=1):
        if not line.lstrip("-").isdigit() or int(line) not in allowed:
            log.report(path, f"line {n}", f"{line!r} is not an integer in [{allowed.start}, {allowed.stop - 1}]")
            return None
    return [int(line) for line in lines]


def _read_meta(path: Path, log: ProblemLog) -> tuple[str, int]:
    """``(object_class, track_id)`` from ``meta_info.ini`` (``"object"``, 0 where missing)."""
    meta = configparser.ConfigParser(interpolation=None)
    try:
        text = read_text(path, log) if path.is_file() else ""
        meta.read_string(text or "")
    except configparser.Error as exc:
        log.report(path, "ini", f"not a valid ini file: {exc.message.splitlines()[0]}")
        return "object", 0
    info = meta["METAINFO"] if meta.has_section("METAINFO") else {}
    track_id = info.get("track_id", "0").strip()
    if not track_id.lstrip("-").isdigit():
        log.report(path, "track_id", f"{track_id!r} is not an integer")
        track_id = "0"
    return info.get("object_class", "object").strip() or "object", int(track_id)


def _read_sequence(folder: Path, log: ProblemLog) -> Optional[dict]:
    """Frame files, size, class, track id and per frame ``(box or None, visible fraction)``."""
    files = list_frames(folder)
    if not files:
        log.report(folder, "frames", "no frame files (missing folder or empty sequence)")
        return None
    size = image_size(files[0], log) if check_numbering(files, 1, folder, log) else None
    if size is None:
        return None
    gt = folder / "groundtruth.txt"
    if not gt.is_file():
        log.report(gt, "file", "groundtruth.txt is missing")
        return None
    lines = read_lines(gt, log)
    if lines is None:
        return None
    if len(lines) not in (1, len(files)):
        log.report(gt, "lines", f"{len(lines)} boxes for {len(files)} frame files")
        return None
    absence = _read_labels(folder / "absence.label", len(files), range(0, 2), log) or [0] * len(files)
    cover = _read_labels(folder / "cover.label", len(files), range(0, 9), log) or [8] * len(files)
    object_class, track_id = _read_meta(folder / "meta_info.ini", log)
    frames = []
    for t in range(len(files)):
        box = None
        if t < len(lines) and not absence[t]:
            xywh = parse_numbers(re.split(r"[,\s]+", lines[t]), 4)
            if xywh is None:
                log.report(gt, f"line {t + 1}", f"expected x,y,w,h, got {lines[t]!r}")
            else:
                box = check_box(xywh_to_xyxy(xywh), size[0], size[1], log, gt, f"line {t + 1}")
        frames.append((box, cover[t] / 8.0))
    return {"files": files, "width": size[0], "height": size[1], "object_class": object_class,
            "track_id": track_id, "frames": frames}

"""YouTube-VIS 2019 JSON (one annotation per object track, one entry per frame)::

    {"categories": [{"id": 1, "name": "person", "supercategory": "object"}, ...],
     "videos": [{"id": 1, "width": W, "height": H, "length": T,
                 "file_names": ["<video>/00000.jpg", ...]}, ...],
     "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "iscrowd": 0, "height": H, "width": W,
                      "segmentations": [RLE or null per frame], "bboxes": [[x, y, w, h] or null],
                      "areas": [number or null]}, ...]}

``null`` marks frames where the object is absent. Written layout: ``root/<split>.json`` with frames
in ``root/<split>/JPEGImages/<video>/00000.jpg`` (``file_names`` are relative to that folder), as
the official download. Splits without ``annotations`` (valid/test) read as unannotated videos.

Every object needs a mask (the writer raises ``ValueError`` otherwise); masks are compressed RLE
and round-trip exactly, boxes are float64 ``[x, y, w, h]`` (exact). Extra keys carry the rest:
``annotations[k].track_id`` (else the annotation id is the track id),
``annotations[k].deteriorations`` / ``visible_fractions`` (per frame, ``null`` where absent) and
``videos[i].deteriorations`` (frame-wide, per frame). Predictions: ytvis_results.py.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Optional, Sequence, Union

from stpn.data.formats.errors import ProblemLog, strict_if_none
from stpn.data.formats.extras import parse_deteriorations, parse_visible_fraction
from stpn.data.formats.geometry import (
    check_box, decode_mask, encode_mask, mask_box, parse_numbers, xywh_to_xyxy, xyxy_to_xywh,
)
from stpn.data.formats.json_fields import coco_categories, has_list, is_int, load_json, typed_records
from stpn.data.formats.writing import WriteSummary, checked_videos, save_frame, video_tracks
from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset


def write_ytvis(
    videos: Iterable[Video], categories: Sequence[str], root: Union[str, Path], split: str = "train"
) -> WriteSummary:
    root, categories = Path(root), list(categories)
    summary = WriteSummary("ytvis", root)
    video_entries: list[dict] = []
    annotations: list[dict] = []
    for video in checked_videos(videos, categories, summary):
        video_id = len(video_entries) + 1
        entry = video_entry(video, video_id)
        for frame, file_name in zip(video.frames, entry["file_names"]):
            save_frame(frame, root / split / "JPEGImages" / file_name)
        video_entries.append(entry)
        annotations += track_annotations(video, video_id, len(annotations) + 1)
    data = {"categories": [{"id": i + 1, "name": n, "supercategory": "object"} for i, n in enumerate(categories)],
            "videos": video_entries, "annotations": annotations}
    path = root / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    summary.files.append(path)
    return summary


def video_entry(video: Video, video_id: int) -> dict:
    """The ``videos`` entry of ``video`` (frame files ``{name}/{t:05d}.jpg``)."""
    entry = {"id": video_id, "width": int(video.width), "height": int(video.height), "length": len(video),
             "file_names": [f"{video.name}/{t:05d}.jpg" for t in range(len(video))]}
    if any(a.deteriorations for a in video.annotations):
        entry["deteriorations"] = [list(a.deteriorations) for a in video.annotations]
    return entry


def track_annotations(video: Video, video_id: int, first_id: int) -> list[dict]:
    """The ``annotations`` entries of ``video``'s tracks, ids from ``first_id`` on."""
    return [_track_entry(video, track, first_id + k, video_id) for k, track in enumerate(_tracks(video))]


def _tracks(video: Video) -> list[list[Optional[Instance]]]:
    tracks = video_tracks(video)
    for track_id, track in tracks.items():
        for t, inst in enumerate(track):
            if inst is not None and inst.mask is None:
                raise ValueError(f"YouTube-VIS needs masks: video {video.name!r} frame {t} track {track_id} has none")
    return list(tracks.values())


def _track_entry(video: Video, track: list[Optional[Instance]], ann_id: int, video_id: int) -> dict:
    present = [i for i in track if i is not None]
    entry: dict[str, Any] = {
        "id": ann_id, "video_id": video_id, "category_id": int(present[0].category_id) + 1, "iscrowd": 0,
        "height": int(video.height), "width": int(video.width), "length": len(video),
        "track_id": int(present[0].track_id),
        "segmentations": [encode_mask(i.mask) if i else None for i in track],
        "bboxes": [xyxy_to_xywh(i.box) if i else None for i in track],
        "areas": [float(i.mask.sum()) if i else None for i in track],
    }
    if any(i.deteriorations for i in present):
        entry["deteriorations"] = [list(i.deteriorations) if i else None for i in track]
    if any(i.visible_fraction != 1.0 for i in present):
        entry["visible_fractions"] = [float(i.visible_fraction) if i else None for i in track]
    return entry


def ytvis_splits(root: Union[str, Path]) -> list[str]:
    root = Path(root)
    return sorted(p.stem for p in root.glob("*.json") if (root / p.stem / "JPEGImages").is_dir())


def read_ytvis(
    root: Union[str, Path], split: str = "train", ann_file: Union[str, Path, None] = None,
    image_root: Union[str, Path, None] = None, log: Optional[ProblemLog] = None,
) -> VideoDataset:
    """Read ``ann_file`` (default ``root/<split>.json``) with frames under ``image_root``
    (default ``root/<split>/JPEGImages``); frames stay file paths."""
    log, root = strict_if_none(log), Path(root)
    path = Path(ann_file) if ann_file else root / f"{split}.json"
    image_root = Path(image_root) if image_root else root / split / "JPEGImages"
    data = load_json(path, log)
    if data is None:
        return VideoDataset([], [])
    for key in ("categories", "videos"):
        if not has_list(data, key):
            log.report(path, key, "missing or not a list")
            return VideoDataset([], [])
    categories, cat_index = coco_categories(data, path, log)
    videos = {}
    required = {"id": int, "width": int, "height": int, "file_names": list}
    for i, entry in typed_records(data, "videos", required, path, log):
        if entry["id"] in videos:
            log.report(path, f"videos[{i}].id", f"video id {entry['id']} is used twice")
            continue
        video = _read_video(entry, f"videos[{i}]", path, image_root, log)
        if video is not None:
            videos[entry["id"]] = video
    if "annotations" in data and not has_list(data, "annotations"):
        log.report(path, "annotations", "not a list")
    elif "annotations" in data:  # valid / test splits have none
        required = {"id": int, "video_id": int, "category_id": int, "segmentations": list}
        for k, ann in typed_records(data, "annotations", required, path, log):
            _read_track(ann, f"annotations[{k}]", path, videos, cat_index, log)
    return VideoDataset(categories, list(videos.values()))


def _read_video(entry: dict, where: str, path: Path, image_root: Path, log: ProblemLog) -> Optional[Video]:
    names = entry["file_names"]
    if not names or not all(isinstance(n, str) for n in names):
        log.report(path, f"{where}.file_names", "needs one file name per frame (empty video?)")
        return None
    if "length" in entry and entry["length"] != len(names):
        log.report(path, f"{where}.length", f"says {entry['length']} frames but file_names lists {len(names)}")
        return None
    missing = [n for n in names if not (image_root / n).is_file()]
    if missing:
        log.report(path, f"{where}.file_names", f"{len(missing)} frame files missing, e.g. {image_root / missing[0]}")
        return None
    annotations = [FrameAnnotation() for _ in names]
    frame_deteriorations = entry.get("deteriorations")
    if frame_deteriorations is not None:
        if not isinstance(frame_deteriorations, list) or len(frame_deteriorations) != len(names):
            log.report(path, f"{where}.deteriorations", "needs one list per frame")
        else:
            for t, value in enumerate(frame_deteriorations):
                annotations[t].deteriorations = parse_deteriorations(value, log, path, f"{where}.deteriorations[{t}]")
    name = str(PurePosixPath(names[0]).parent)
    return Video(name, [image_root / n for n in names], annotations, entry["height"], entry["width"])


def _per_frame(ann: dict, key: str, length: int, where: str, path: Path, log: ProblemLog) -> Optional[list]:
    """``ann[key]`` as a per-frame list (all ``None`` if absent); wrong length is reported."""
    values = ann.get(key)
    if values is None:
        return [None] * length
    if not isinstance(values, list) or len(values) != length:
        log.report(path, f"{where}.{key}", f"needs {length} entries (one per frame), got "
                   f"{len(values) if isinstance(values, list) else type(values).__name__}")
        return None
    return values


def _read_track(ann: dict, where: str, path: Path, videos: dict, cat_index: dict, log: ProblemLog) -> None:
    video = videos.get(ann["video_id"])
    if video is None:
        log.report(path, f"{where}.video_id", f"unknown (or invalid) video id {ann['video_id']}")
        return
    if ann["category_id"] not in cat_index:
        log.report(path, f"{where}.category_id", f"unknown category id {ann['category_id']}")
        return
    track_id = ann.get("track_id", ann["id"])
    if not is_int(track_id):
        log.report(path, f"{where}.track_id", "not an integer")
        return
    per_frame = {key: _per_frame(ann, key, len(video), where, path, log)
                 for key in ("segmentations", "bboxes", "deteriorations", "visible_fractions")}
    if any(values is None for values in per_frame.values()):
        return
    for t, annotation in enumerate(video.annotations):
        field = f"{where}.segmentations[{t}]"
        segmentation, bbox = per_frame["segmentations"][t], per_frame["bboxes"][t]
        if segmentation is None:
            if bbox is not None:
                log.report(path, field, "null although the frame has a box")
            continue
        try:
            mask = decode_mask(segmentation, video.height, video.width)
        except ValueError as exc:
            log.report(path, field, str(exc))
            continue
        xywh = parse_numbers(bbox, 4) if bbox is not None else None
        if bbox is not None and xywh is None:
            log.report(path, f"{where}.bboxes[{t}]", "expected [x, y, w, h] or null")
            continue
        box = xywh_to_xyxy(xywh) if xywh is not None else mask_box(mask)
        if box is None:  # an empty mask without a box: the object is not visible
            continue
        box = check_box(box, video.width, video.height, log, path, f"{where}.bboxes[{t}]")
        if box is None:
            continue
        if any(i.track_id == track_id for i in annotation.instances):
            log.report(path, f"{where}.track_id", f"track id {track_id} is used by two annotations of the video")
            return
        visible = per_frame["visible_fractions"][t]
        annotation.instances.append(Instance(
            track_id, cat_index[ann["category_id"]], box, mask,
            parse_deteriorations(per_frame["deteriorations"][t], log, path, f"{where}.deteriorations[{t}]"),
            1.0 if visible is None else parse_visible_fraction(visible, log, path, f"{where}.visible_fractions[{t}]"),
        ))

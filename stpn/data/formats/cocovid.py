"""mmtracking's CocoVID JSON (the format mmtracking converts ImageNet VID into)::

    {"categories": [{"id": 1, "name": "airplane"}, ...],
     "videos": [{"id": 1, "name": "<video>"}, ...],
     "images": [{"id": 1, "video_id": 1, "frame_id": 0, "file_name": "<split>/<video>/000000.jpg",
                 "height": H, "width": W}, ...],
     "annotations": [{"id": 1, "image_id": 1, "video_id": 1, "category_id": 1, "instance_id": 0,
                      "bbox": [x, y, w, h], "area": w*h, "iscrowd": 0, "occluded": false,
                      "generated": false, "segmentation": RLE (optional)}, ...]}

Written layout: ``root/annotations/<split>.json`` with frames in ``root/images/<split>/<video>/``
(``file_name`` is relative to ``root/images``). When reading, the image root defaults to
``root/images`` if it exists, else ``root/Data/VID`` (mmtracking's ILSVRC layout).

Extra keys carry what CocoVID has no field for: ``images[i].deteriorations`` (frame-wide),
``annotations[k].deteriorations`` and ``annotations[k].visible_fraction``; other tools ignore
them. ``occluded`` is ``visible_fraction < 1``. Category ids are 1-based (index + 1); boxes are
stored as float64 and round-trip exactly; masks as compressed RLE.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence, Union

from stpn.data.formats.errors import ProblemLog, strict_if_none
from stpn.data.formats.extras import parse_deteriorations, parse_visible_fraction
from stpn.data.formats.geometry import (
    box_area, check_box, decode_mask, encode_mask, parse_numbers, xywh_to_xyxy, xyxy_to_xywh,
)
from stpn.data.formats.json_fields import coco_categories, has_list, load_json, typed_records
from stpn.data.formats.writing import WriteSummary, checked_videos, save_frame
from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset


def write_cocovid(
    videos: Iterable[Video], categories: Sequence[str], root: Union[str, Path], split: str = "train"
) -> WriteSummary:
    root, categories = Path(root), list(categories)
    summary = WriteSummary("cocovid", root)
    images: list[dict] = []
    annotations: list[dict] = []
    video_entries: list[dict] = []
    for video in checked_videos(videos, categories, summary):
        video_id = len(video_entries) + 1
        video_entries.append({"id": video_id, "name": video.name})
        for t, (frame, annotation) in enumerate(zip(video.frames, video.annotations)):
            file_name = f"{split}/{video.name}/{t:06d}.jpg"
            save_frame(frame, root / "images" / file_name)
            image = {"id": len(images) + 1, "video_id": video_id, "frame_id": t, "file_name": file_name,
                     "height": int(video.height), "width": int(video.width)}
            if annotation.deteriorations:
                image["deteriorations"] = list(annotation.deteriorations)
            images.append(image)
            for inst in annotation.instances:
                annotations.append(_annotation_entry(inst, len(annotations) + 1, image["id"], video_id))
    data = {"categories": [{"id": i + 1, "name": name} for i, name in enumerate(categories)],
            "videos": video_entries, "images": images, "annotations": annotations}
    path = root / "annotations" / f"{split}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    summary.files.append(path)
    return summary


def _annotation_entry(inst: Instance, ann_id: int, image_id: int, video_id: int) -> dict:
    entry: dict[str, Any] = {
        "id": ann_id, "image_id": image_id, "video_id": video_id, "category_id": int(inst.category_id) + 1,
        "instance_id": int(inst.track_id), "bbox": xyxy_to_xywh(inst.box),
        "area": float(inst.mask.sum()) if inst.mask is not None else box_area(inst.box),
        "iscrowd": 0, "occluded": bool(inst.visible_fraction < 1.0), "generated": False,
    }
    if inst.mask is not None:
        entry["segmentation"] = encode_mask(inst.mask)
    if inst.deteriorations:
        entry["deteriorations"] = list(inst.deteriorations)
    if inst.visible_fraction != 1.0:
        entry["visible_fraction"] = float(inst.visible_fraction)
    return entry


def cocovid_splits(root: Union[str, Path]) -> list[str]:
    folder = Path(root) / "annotations"
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def read_cocovid(
    root: Union[str, Path], split: str = "train", ann_file: Union[str, Path, None] = None,
    image_root: Union[str, Path, None] = None, log: Optional[ProblemLog] = None,
) -> VideoDataset:
    """Read ``ann_file`` (default ``root/annotations/<split>.json``); frames stay file paths."""
    log, root = strict_if_none(log), Path(root)
    path = Path(ann_file) if ann_file else root / "annotations" / f"{split}.json"
    if image_root is None:
        image_root = next((p for p in (root / "images", root / "Data" / "VID") if p.is_dir()), root)
    data = load_json(path, log)
    if data is None:
        return VideoDataset([], [])
    missing = [k for k in ("categories", "videos", "images", "annotations") if not has_list(data, k)]
    if missing:
        log.report(path, missing[0], "missing or not a list")
        return VideoDataset([], [])
    categories, cat_index = coco_categories(data, path, log)
    videos: dict[int, tuple[int, str]] = {}
    for i, v in typed_records(data, "videos", {"id": int, "name": str}, path, log):
        if v["id"] in videos:
            log.report(path, f"videos[{i}].id", f"video id {v['id']} is used twice")
        else:
            videos[v["id"]] = (i, v["name"])
    frames = _read_images(data, path, Path(image_root), videos, log)
    _read_annotations(data, path, frames, cat_index, log)
    result = []
    for video_id, (i, name) in videos.items():
        by_frame = frames.get(video_id, {})
        if not by_frame:
            log.report(path, f"videos[{i}]", f"video {name!r} has no images (empty video)")
            continue
        if sorted(by_frame) != list(range(len(by_frame))):
            log.report(path, f"videos[{i}].frame_id", f"frame ids of video {name!r} are not 0..{len(by_frame) - 1}")
            continue
        ordered = [by_frame[t] for t in range(len(by_frame))]
        height, width = ordered[0]["height"], ordered[0]["width"]
        result.append(Video(name, [f["file"] for f in ordered], [f["annotation"] for f in ordered], height, width))
    return VideoDataset(categories, result)


def _read_images(data: dict, path: Path, image_root: Path, videos: dict, log: ProblemLog) -> dict:
    """``video_id`` → ``frame_id`` → frame record (file path, size, annotation being built)."""
    required = {"id": int, "video_id": int, "frame_id": int, "file_name": str, "height": int, "width": int}
    frames: dict[int, dict[int, dict]] = {}
    seen_ids: set[int] = set()
    for i, image in typed_records(data, "images", required, path, log):
        where = f"images[{i}]"
        if image["video_id"] not in videos:
            log.report(path, f"{where}.video_id", f"unknown video id {image['video_id']}")
            continue
        by_frame = frames.setdefault(image["video_id"], {})
        if image["frame_id"] in by_frame or image["id"] in seen_ids:
            log.report(path, f"{where}.frame_id", "another image has the same video and frame id, or the same id")
            continue
        file = image_root / image["file_name"]
        if not file.is_file():
            log.report(path, f"{where}.file_name", f"frame file {file} is missing")
            continue
        first = next(iter(by_frame.values()), None)
        if first is not None and (first["height"], first["width"]) != (image["height"], image["width"]):
            log.report(path, f"{where}.height", "frame size differs from the video's other frames")
            continue
        deteriorations = parse_deteriorations(image.get("deteriorations"), log, path, f"{where}.deteriorations")
        seen_ids.add(image["id"])
        by_frame[image["frame_id"]] = {"id": image["id"], "file": file, "height": image["height"],
                                       "width": image["width"], "annotation": FrameAnnotation([], deteriorations)}
    return frames


def _read_annotations(data: dict, path: Path, frames: dict, cat_index: dict, log: ProblemLog) -> None:
    by_image = {f["id"]: f for by_frame in frames.values() for f in by_frame.values()}
    required = {"image_id": int, "category_id": int, "instance_id": int}
    for k, ann in typed_records(data, "annotations", required, path, log):
        where = f"annotations[{k}]"
        frame = by_image.get(ann["image_id"])
        if frame is None:
            log.report(path, f"{where}.image_id", f"unknown (or invalid) image id {ann['image_id']}")
            continue
        if ann["category_id"] not in cat_index:
            log.report(path, f"{where}.category_id", f"unknown category id {ann['category_id']}")
            continue
        instances = frame["annotation"].instances
        if any(i.track_id == ann["instance_id"] for i in instances):
            log.report(path, f"{where}.instance_id", f"instance {ann['instance_id']} appears twice in one image")
            continue
        xywh = parse_numbers(ann.get("bbox"), 4)
        if xywh is None:
            log.report(path, f"{where}.bbox", "expected [x, y, w, h]")
            continue
        box = check_box(xywh_to_xyxy(xywh), frame["width"], frame["height"], log, path, f"{where}.bbox")
        if box is None:
            continue
        mask = None
        if ann.get("segmentation") is not None:
            try:
                mask = decode_mask(ann["segmentation"], frame["height"], frame["width"])
            except ValueError as exc:
                log.report(path, f"{where}.segmentation", str(exc))
                continue
        visible = 1.0
        if "visible_fraction" in ann:
            visible = parse_visible_fraction(ann["visible_fraction"], log, path, f"{where}.visible_fraction")
        deteriorations = parse_deteriorations(ann.get("deteriorations"), log, path, f"{where}.deteriorations")
        category = cat_index[ann["category_id"]]
        instances.append(Instance(ann["instance_id"], category, box, mask, deteriorations, visible))

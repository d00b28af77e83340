"""Video detection ground truth and detections in COCO form (in memory and as result JSON).

Every (video index, frame index) becomes one COCO image with a stable 1-based id: frames are
numbered video by video in dataset order, so the same dataset always gives the same ids.
Categories get 1-based ids (``category_id + 1``), matching the detectors' labels, where 0 is the
background.

Detections are dicts ``{video_index, frame_index, boxes (N, 4) xyxy, scores (N,), labels (N,)
1-based}``; arrays may be numpy arrays, torch tensors or lists.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from stpn.data.formats.geometry import xyxy_to_xywh
from stpn.data.types import Instance, VideoDataset

# ignore_fn(video_index, frame_index, instance) -> True to ignore that ground-truth object
IgnoreFn = Callable[[int, int, Instance], bool]
DETECTION_KEYS = ("video_index", "frame_index", "boxes", "scores", "labels")


def image_ids(dataset: VideoDataset) -> dict[tuple[int, int], int]:
    """Stable COCO image id (1-based) of every ``(video index, frame index)``."""
    ids: dict[tuple[int, int], int] = {}
    for v, video in enumerate(dataset.videos):
        for t in range(len(video)):
            ids[(v, t)] = len(ids) + 1
    return ids


def coco_ground_truth(dataset: VideoDataset, ignore_fn: Optional[IgnoreFn] = None) -> dict:
    """The dataset as a COCO ground-truth dict.

    Annotations carry xywh ``bbox``, ``area`` (box area: there are no masks to measure), ``iscrowd``
    0 and ``ignore`` (1 where ``ignore_fn(v, t, instance)`` is true). Plain pycocotools drops the
    ``ignore`` key (it rewrites it from ``iscrowd``); :mod:`stpn.metrics.coco_detection` honours it.
    """
    ids = image_ids(dataset)
    images, annotations = [], []
    for v, video in enumerate(dataset.videos):
        for t, frame in enumerate(video.annotations):
            images.append({"id": ids[(v, t)], "width": video.width, "height": video.height,
                           "file_name": f"{video.name}/{t:06d}"})
            for inst in frame.instances:
                if not 0 <= inst.category_id < len(dataset.categories):
                    raise ValueError(f"video {video.name!r} frame {t} track {inst.track_id}: category_id "
                                     f"{inst.category_id} outside 0..{len(dataset.categories) - 1}")
                bbox = xyxy_to_xywh(inst.box)
                annotations.append({
                    "id": len(annotations) + 1, "image_id": ids[(v, t)], "category_id": inst.category_id + 1,
                    "bbox": bbox, "area": bbox[2] * bbox[3], "iscrowd": 0,
                    "ignore": int(bool(ignore_fn and ignore_fn(v, t, inst))),
                })
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(dataset.categories)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _numpy(values, dtype) -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor, possibly on a GPU
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)


def coco_results(dataset: VideoDataset, detections: Sequence[dict]) -> list[dict]:
    """Detections as a COCO result list ``[{image_id, category_id, bbox (xywh), score}]``."""
    ids = image_ids(dataset)
    num_categories = len(dataset.categories)
    results = []
    for n, det in enumerate(detections):
        missing = [k for k in DETECTION_KEYS if k not in det]
        if missing:
            raise ValueError(f"detection {n} lacks key(s) {missing}; expected {list(DETECTION_KEYS)}")
        key = (int(det["video_index"]), int(det["frame_index"]))
        if key not in ids:
            raise ValueError(f"detection {n} is for video {key[0]} frame {key[1]}, which the dataset does not have")
        boxes = _numpy(det["boxes"], np.float64).reshape(-1, 4)
        scores, labels = _numpy(det["scores"], np.float64).ravel(), _numpy(det["labels"], np.int64).ravel()
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"detection {n}: {len(boxes)} boxes, {len(scores)} scores and {len(labels)} labels")
        if len(labels) and (labels.min() < 1 or labels.max() > num_categories):
            raise ValueError(f"detection {n}: labels must be 1-based category ids in 1..{num_categories} "
                             f"(0 is background), got {labels.min()}..{labels.max()}")
        results.extend({"image_id": ids[key], "category_id": int(label), "score": float(score),
                        "bbox": xyxy_to_xywh(box)} for box, score, label in zip(boxes, scores, labels))
    return results


def save_coco_results(path: str | Path, dataset: VideoDataset, detections: Sequence[dict]) -> Path:
    """Write the detections as a COCO result JSON file (what pycocotools' ``loadRes`` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(coco_results(dataset, detections)))
    return path


def load_coco_results(path: str | Path, dataset: VideoDataset) -> list[dict]:
    """Read a COCO result JSON file back into per-frame detection dicts (numpy arrays; frames
    without detections are left out), in image-id order."""
    entries = json.loads(Path(path).read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: a COCO result file holds a list of detections, got {type(entries).__name__}")
    frame_of = {image_id: key for key, image_id in image_ids(dataset).items()}
    per_image: dict[int, list[dict]] = {}
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"image_id", "category_id", "bbox", "score"} <= set(entry):
            raise ValueError(f"{path}: entry {n} needs image_id, category_id, bbox and score")
        if entry["image_id"] not in frame_of:
            raise ValueError(f"{path}: entry {n} has image_id {entry['image_id']}, which the dataset does not have")
        per_image.setdefault(entry["image_id"], []).append(entry)
    detections = []
    for image_id in sorted(per_image):
        entries = per_image[image_id]
        xywh = np.array([e["bbox"] for e in entries], dtype=np.float64).reshape(-1, 4)
        detections.append({
            "video_index": frame_of[image_id][0], "frame_index": frame_of[image_id][1],
            "boxes": np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
            "scores": np.array([e["score"] for e in entries], dtype=np.float64),
            "labels": np.array([e["category_id"] for e in entries], dtype=np.int64),
        })
    return detections

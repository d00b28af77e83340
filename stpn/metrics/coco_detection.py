"""Video object detection metrics through pycocotools (DESIGN.md §5).

* COCO AP, AP50, AP75, AP_S/M/L over all frames;
* AP50 per FGFA motion-speed group: for group ``g`` the ground truth of the other groups is
  marked ``iscrowd`` so that detections on it count neither as true nor as false positives
  (pycocotools reads ignore flags only from ``iscrowd``; a crowd region absorbs a detection
  whose overlap with it, intersection over the detection's area, passes the threshold);
* AP50 on degraded frames (any frame-wide deterioration, or any object hit) and clean frames,
  and per deterioration kind (the frames that kind hit).

Detections are dicts ``{video_index, frame_index, boxes (N, 4) xyxy, scores (N,), labels (N,)
1-based}``. Values are fractions in [0, 1]; NaN where a subset has no ground truth.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from stpn.data.types import VideoDataset
from stpn.metrics.motion_speed import SPEED_GROUPS, motion_ious, speed_group

STAT_NAMES = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")


def image_ids(dataset: VideoDataset) -> dict[tuple[int, int], int]:
    """Stable COCO image id (1-based) of every (video index, frame index)."""
    ids, next_id = {}, 1
    for v, video in enumerate(dataset.videos):
        for t in range(len(video)):
            ids[(v, t)] = next_id
            next_id += 1
    return ids


def coco_ground_truth(dataset: VideoDataset, crowd: Optional[Callable[[int, int, int], bool]] = None) -> dict:
    """The dataset as a COCO ground-truth dict; ``crowd(v, t, track_id)`` marks ignored objects."""
    ids = image_ids(dataset)
    images, annotations = [], []
    for v, video in enumerate(dataset.videos):
        for t, frame in enumerate(video.annotations):
            images.append({"id": ids[(v, t)], "width": video.width, "height": video.height,
                           "file_name": f"{video.name}/{t:06d}"})
            for inst in frame.instances:
                x1, y1, x2, y2 = (float(c) for c in inst.box)
                annotations.append({
                    "id": len(annotations) + 1, "image_id": ids[(v, t)], "category_id": inst.category_id + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": int(bool(crowd and crowd(v, t, inst.track_id))),
                })
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(dataset.categories)]
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_results(dataset: VideoDataset, detections: Sequence[dict]) -> list[dict]:
    """Detections as a COCO result list (xywh boxes, 1-based category ids)."""
    ids = image_ids(dataset)
    out = []
    for det in detections:
        key = (int(det["video_index"]), int(det["frame_index"]))
        if key not in ids:
            raise ValueError(f"detection for video {key[0]} frame {key[1]}, which the dataset does not have")
        boxes = np.asarray(det["boxes"], dtype=np.float64).reshape(-1, 4)
        for box, score, label in zip(boxes, np.asarray(det["scores"]), np.asarray(det["labels"])):
            out.append({"image_id": ids[key], "category_id": int(label), "score": float(score),
                        "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    return out


def save_coco_results(path: str | Path, dataset: VideoDataset, detections: Sequence[dict]) -> Path:
    path = Path(path)
    path.write_text(json.dumps(coco_results(dataset, detections)))
    return path


def coco_eval(gt: dict, results: list[dict], image_subset: Optional[Sequence[int]] = None) -> dict[str, float]:
    """AP, AP50, AP75, AP_S, AP_M, AP_L (NaN where undefined); pycocotools' prints silenced."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    subset = list(image_subset) if image_subset is not None else [im["id"] for im in gt["images"]]
    if not subset or not any(a["image_id"] in set(subset) and not a["iscrowd"] for a in gt["annotations"]):
        return {name: math.nan for name in STAT_NAMES}
    if not results:
        return {name: 0.0 for name in STAT_NAMES}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, "bbox")
        evaluator.params.imgIds = subset
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: (float(v) if v >= 0 else math.nan) for name, v in zip(STAT_NAMES, evaluator.stats[:6])}


def frame_deteriorations(dataset: VideoDataset) -> dict[tuple[int, int], set[str]]:
    """Every deterioration that hit each frame (frame-wide or on any of its objects)."""
    return {
        (v, t): set(frame.deteriorations) | {d for inst in frame.instances for d in inst.deteriorations}
        for v, video in enumerate(dataset.videos) for t, frame in enumerate(video.annotations)
    }


def detection_report(dataset: VideoDataset, detections: Sequence[dict]) -> dict:
    """All detection metrics (keys: ``AP``, ``AP50``, ``AP75``, ``AP_S``, ``AP_M``, ``AP_L``,
    ``AP50_slow``/``_medium``/``_fast``, ``AP50_degraded``, ``AP50_clean``,
    ``AP50_by_deterioration`` {kind: AP50})."""
    gt = coco_ground_truth(dataset)
    results = coco_results(dataset, detections)
    report: dict = dict(coco_eval(gt, results))
    groups = {}
    for v, video in enumerate(dataset.videos):
        tracks = [{i.track_id: i.box for i in frame.instances} for frame in video.annotations]
        for t, frame_ious in enumerate(motion_ious(tracks)):
            for track_id, miou in frame_ious.items():
                groups[(v, t, track_id)] = speed_group(miou)
    for group in SPEED_GROUPS:
        gt_g = coco_ground_truth(dataset, crowd=lambda v, t, k, g=group: groups[(v, t, k)] != g)
        report[f"AP50_{group}"] = coco_eval(gt_g, results)["AP50"]
    ids = image_ids(dataset)
    hits = frame_deteriorations(dataset)
    report["AP50_degraded"] = coco_eval(gt, results, [ids[k] for k, h in hits.items() if h])["AP50"]
    report["AP50_clean"] = coco_eval(gt, results, [ids[k] for k, h in hits.items() if not h])["AP50"]
    kinds = sorted({d for h in hits.values() for d in h})
    report["AP50_by_deterioration"] = {
        kind: coco_eval(gt, results, [ids[k] for k, h in hits.items() if kind in h])["AP50"] for kind in kinds
    }
    return report


def format_table(rows: dict[str, dict]) -> str:
    """Rows of metric dicts as an aligned text table (AP values in percent)."""
    columns = [c for c in (*STAT_NAMES, "AP50_slow", "AP50_medium", "AP50_fast", "AP50_degraded", "AP50_clean", "fps")
               if any(c in r for r in rows.values())]
    fmt = lambda c, x: f"{x:.2f}" if c == "fps" else ("-" if math.isnan(x) else f"{100 * x:.1f}")  # noqa: E731
    body = [[name] + [fmt(c, r[c]) for c in columns] for name, r in rows.items()]
    widths = [max(len(x) for x in col) for col in zip(["model"] + columns, *body)]
    return "\n".join("  ".join(x.rjust(w) for x, w in zip(line, widths)) for line in [["model"] + columns] + body)

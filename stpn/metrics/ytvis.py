"""YouTube-VIS AP on pycocotools' COCOeval (docs/design.md §5, docs/vis_eval.md).

COCO matching and accumulation are pycocotools' own (10 IoU thresholds .50:.05:.95, 101 recall
points, maxDets 1 / 10 / 100, crowd ground truth ignored and absorbing any number of
detections); only two things change, because each "image" is a video and each object a mask
track:

* **video IoU** = Σ_frames intersection / Σ_frames union; a frame where only one of the two
  tracks has a mask adds that mask's area to the union. Against a crowd track the union is
  replaced by the detection's summed area (COCO's crowd rule, summed over frames).
  Intersections come from pycocotools.mask: ``iou(d, g, iscrowd=1) · area(d)``, rounded to the
  integer pixel count it is.
* **area** of a track = its mean mask area over the frames where it has a non-empty mask
  (0 for a track with none); the ranges are small < 128², medium 128²–256², large > 256².

On one-frame videos this is COCO segm AP exactly (tests/test_ytvis_metric.py checks all twelve
numbers against pycocotools with COCO's 32² / 96² bounds).

Inputs: ``gt`` a YouTube-VIS dict (``videos``, ``annotations``, ``categories``; see
:mod:`stpn.data.formats.ytvis`) and ``results`` a list of ``{video_id, category_id, score,
segmentations}`` (:mod:`stpn.data.formats.ytvis_results`). Masks may be compressed or
uncompressed RLE. Values are fractions in [0, 1]; NaN where nothing counts (no ground truth).
"""
from __future__ import annotations

import contextlib
import io
import math
from typing import Optional, Sequence

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ["VIS_STAT_NAMES", "YTVIS_AREA_BOUNDS", "VideoCOCOeval", "video_iou_matrix", "ytvis_stats"]

VIS_STAT_NAMES = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AR1", "AR10", "AR100", "AR_S", "AR_M", "AR_L")
YTVIS_AREA_BOUNDS = (128, 256)  # side lengths: small < 128², large > 256² (the youtubevos cocoapi fork)


def _rle(segmentation, height: int, width: int, where: str) -> Optional[dict]:
    """A frame's segmentation as a pycocotools RLE (``None`` stays ``None``), size checked."""
    if segmentation is None:
        return None
    if not isinstance(segmentation, dict) or "counts" not in segmentation or "size" not in segmentation:
        raise ValueError(f"{where}: expected an RLE dict with 'size' and 'counts' or null")
    if [int(s) for s in segmentation["size"]] != [height, width]:
        raise ValueError(f"{where}: mask size {list(segmentation['size'])} but the video is {height}x{width} (H x W)")
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def _track(entry: dict, video: dict, where: str) -> tuple[list[Optional[dict]], np.ndarray]:
    """``(RLE or None per frame, (T,) float64 areas)`` of one track, checked against ``video``."""
    segmentations = entry.get("segmentations")
    length = len(video["file_names"]) if "file_names" in video else int(video["length"])
    if not isinstance(segmentations, list) or len(segmentations) != length:
        got = len(segmentations) if isinstance(segmentations, list) else type(segmentations).__name__
        raise ValueError(f"{where}: video {video['id']} has {length} frames but segmentations has {got}")
    rles = [_rle(s, int(video["height"]), int(video["width"]), f"{where}.segmentations[{t}]")
            for t, s in enumerate(segmentations)]
    areas = np.array([float(mask_utils.area(r)) if r is not None else 0.0 for r in rles])
    return rles, areas


def _mean_area(areas: np.ndarray) -> float:
    present = areas[areas > 0]
    return float(present.mean()) if len(present) else 0.0


def video_iou_matrix(dts: Sequence[dict], gts: Sequence[dict]) -> np.ndarray:
    """``(D, G)`` video IoUs of detection tracks against ground-truth tracks.

    Each track is a dict with ``rles`` (RLE or ``None`` per frame, all of one video) and
    ``areas`` ``(T,)``; ground truth also has ``iscrowd``. See the module docstring."""
    if len(dts) == 0 or len(gts) == 0:
        return np.zeros((len(dts), len(gts)))
    inter = np.zeros((len(dts), len(gts)))
    for t in range(len(gts[0]["rles"])):
        d_idx = [i for i, d in enumerate(dts) if d["rles"][t] is not None]
        g_idx = [j for j, g in enumerate(gts) if g["rles"][t] is not None]
        if not d_idx or not g_idx:
            continue
        # with iscrowd=1 pycocotools returns intersection / area(d), exact in float64
        over_d = np.asarray(mask_utils.iou([dts[i]["rles"][t] for i in d_idx],
                                           [gts[j]["rles"][t] for j in g_idx], [1] * len(g_idx)))
        d_area = np.array([dts[i]["areas"][t] for i in d_idx])
        inter[np.ix_(d_idx, g_idx)] += np.round(over_d * d_area[:, None])
    d_sum = np.array([d["areas"].sum() for d in dts])[:, None]
    g_sum = np.array([g["areas"].sum() for g in gts])[None, :]
    crowd = np.array([bool(g.get("iscrowd", 0)) for g in gts])[None, :]
    union = np.where(crowd, d_sum, d_sum + g_sum - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class VideoCOCOeval(COCOeval):
    """COCOeval over videos: image ids are video ids, annotations are tracks carrying ``rles``,
    ``areas`` and ``area`` (mean area); IoU is :func:`video_iou_matrix`. Run as the bbox type so
    pycocotools does not convert the (per-frame) segmentations itself; nothing else in
    COCOeval looks at boxes."""

    def __init__(self, coco_gt: COCO, coco_dt: COCO, area_bounds: Sequence[float] = YTVIS_AREA_BOUNDS):
        super().__init__(coco_gt, coco_dt, "bbox")
        small, large = (float(b) ** 2 for b in area_bounds)
        self.params.areaRng = [[0.0, 1e5 ** 2], [0.0, small], [small, large], [large, 1e5 ** 2]]

    def computeIoU(self, imgId, catId):  # noqa: N802 (pycocotools' name)
        p = self.params
        cats = [catId] if p.useCats else p.catIds
        gt = [g for c in cats for g in self._gts[imgId, c]]
        dt = [d for c in cats for d in self._dts[imgId, c]]
        if len(gt) == 0 and len(dt) == 0:
            return []
        order = np.argsort([-d["score"] for d in dt], kind="mergesort")  # as COCOeval
        dt = [dt[i] for i in order][: p.maxDets[-1]]
        return video_iou_matrix(dt, gt)


def _coco(images: list[dict], categories: list[dict], annotations: list[dict]) -> COCO:
    coco = COCO()
    coco.dataset = {"images": images, "categories": categories, "annotations": annotations}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def _ground_truth(gt: dict) -> tuple[COCO, dict]:
    for key in ("videos", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            raise ValueError(f"YouTube-VIS ground truth: '{key}' missing or not a list")
    videos = {int(v["id"]): v for v in gt["videos"]}
    tracks = []
    for k, ann in enumerate(gt["annotations"]):
        video = videos.get(int(ann["video_id"]))
        if video is None:
            raise ValueError(f"ground truth annotations[{k}]: unknown video id {ann['video_id']}")
        rles, areas = _track(ann, video, f"ground truth annotations[{k}]")
        tracks.append({"id": k + 1, "image_id": int(ann["video_id"]), "category_id": int(ann["category_id"]),
                       "iscrowd": int(ann.get("iscrowd", 0)), "rles": rles, "areas": areas,
                       "area": _mean_area(areas)})
    images = [{"id": i, "height": int(v["height"]), "width": int(v["width"])} for i, v in videos.items()]
    return _coco(images, [dict(c) for c in gt["categories"]], tracks), videos


def _detections(results: Sequence[dict], videos: dict, coco_gt: COCO) -> COCO:
    tracks = []
    for k, result in enumerate(results):
        video = videos.get(int(result["video_id"]))
        if video is None:
            raise ValueError(f"results[{k}]: video id {result['video_id']} is not in the ground truth")
        rles, areas = _track(result, video, f"results[{k}]")
        tracks.append({"id": k + 1, "image_id": int(result["video_id"]), "category_id": int(result["category_id"]),
                       "score": float(result["score"]), "iscrowd": 0, "rles": rles, "areas": areas,
                       "area": _mean_area(areas)})
    return _coco(coco_gt.dataset["images"], coco_gt.dataset["categories"], tracks)


def ytvis_stats(gt: dict, results: Sequence[dict], area_bounds: Sequence[float] = YTVIS_AREA_BOUNDS,
                verbose: bool = False) -> dict[str, float]:
    """The twelve COCO numbers (:data:`VIS_STAT_NAMES`: AP, AP50, AP75, AP_S/M/L, AR1, AR10,
    AR100, AR_S/M/L) of ``results`` on the YouTube-VIS dict ``gt``; pycocotools' prints shown
    only if ``verbose``. ``area_bounds``: the small / large side lengths (128, 256)."""
    coco_gt, videos = _ground_truth(gt)
    evaluator = VideoCOCOeval(coco_gt, _detections(results, videos, coco_gt), area_bounds)
    with contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO()):
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(v) if v > -1 else math.nan for name, v in zip(VIS_STAT_NAMES, evaluator.stats)}

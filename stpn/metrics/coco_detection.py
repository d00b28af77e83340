"""Video object detection metrics through pycocotools' COCOeval (docs/design.md §5).

* COCO AP, AP50, AP75, AP_S / AP_M / AP_L over all frames (bbox, maxDets 100);
* AP50 per FGFA motion-speed group, the other groups' ground truth ignored;
* AP50 on degraded and on clean frames, and per deterioration kind
  (:mod:`stpn.metrics.detection_splits` says which objects and frames).

Ignoring ground truth. pycocotools 2.0 overwrites every ground truth's ``ignore`` key with its
``iscrowd`` flag, so ``ignore`` alone does nothing there, and ``iscrowd`` changes the matching
(overlap measured over the detection's area, and one crowd box absorbs any number of
detections). :class:`IgnoreAwareCOCOeval` restores the ``ignore`` key after that step, so an
ignored object is matched with the ordinary IoU, after the non-ignored ones, and absorbs the one
detection matched to it: that detection is neither a true nor a false positive, while a duplicate
on the same object stays a false positive, as everywhere in COCO. This differs from FGFA's own
VID evaluation, which also skips unmatched detections that overlap ignored objects best and
weights false positives on empty frames; we keep COCO matching so that the speed split and the
overall AP follow one rule.

Values are fractions in [0, 1]; NaN where the evaluated frames hold no (non-ignored) ground
truth. No detections at all gives 0, not an error.
"""
from __future__ import annotations

import contextlib
import io
import math
import numbers
from typing import Iterable, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from stpn.data.types import VideoDataset
from stpn.metrics.coco_format import IgnoreFn, coco_ground_truth, coco_results, image_ids, save_coco_results
from stpn.metrics.detection_splits import deterioration_subsets, ignore_other_speeds, speed_groups
from stpn.data.motion_speed import SPEED_GROUPS

__all__ = ["STAT_NAMES", "IgnoreAwareCOCOeval", "coco_stats", "evaluate_detections", "detection_report",
           "format_table", "save_coco_results"]

STAT_NAMES = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")  # the first six COCOeval.stats


class IgnoreAwareCOCOeval(COCOeval):
    """COCOeval that honours the ground truth's ``ignore`` key (or ``iscrowd``, as before).

    ``iou_cache``: a dict shared by evaluations of one result set against ground truths that
    differ only in ``ignore`` flags and evaluated images (IoUs do not depend on either), so each
    image's IoUs are computed once.
    """

    def __init__(self, coco_gt: COCO, coco_dt: COCO, iou_type: str = "bbox", iou_cache: Optional[dict] = None):
        super().__init__(coco_gt, coco_dt, iou_type)
        # read before the first _prepare, which overwrites the key in place
        self.ignored_ids = {a["id"] for a in coco_gt.dataset["annotations"] if a.get("ignore")}
        self.iou_cache = iou_cache

    def _prepare(self) -> None:
        super()._prepare()
        for gts in self._gts.values():
            for gt in gts:
                gt["ignore"] = bool(gt["ignore"]) or gt["id"] in self.ignored_ids

    def computeIoU(self, imgId, catId):  # noqa: N802 (pycocotools' name)
        if self.iou_cache is None:
            return super().computeIoU(imgId, catId)
        if (imgId, catId) not in self.iou_cache:
            self.iou_cache[imgId, catId] = super().computeIoU(imgId, catId)
        return self.iou_cache[imgId, catId]


def _quiet(verbose: bool):
    return contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())


def _coco_gt(gt: dict, verbose: bool = False) -> COCO:
    coco = COCO()
    # copies: pycocotools writes "ignore" / "_ignore" into the annotation dicts it is given
    coco.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
    with _quiet(verbose):
        coco.createIndex()
    return coco


def _coco_dt(coco_gt: COCO, results: list[dict], verbose: bool = False) -> COCO:
    with _quiet(verbose):
        if results:
            return coco_gt.loadRes([dict(r) for r in results])  # loadRes adds id / area to each dict
        # loadRes fails on an empty list; no detections is a valid (if poor) result
        coco = COCO()
        coco.dataset = {"images": coco_gt.dataset["images"], "categories": coco_gt.dataset["categories"],
                        "annotations": []}
        coco.createIndex()
        return coco


def _evaluate(coco_gt: COCO, coco_dt: COCO, img_ids: Optional[Sequence[int]] = None, ap50_only: bool = False,
              verbose: bool = False, iou_cache: Optional[dict] = None) -> dict[str, float]:
    """The six COCO stats, or with ``ap50_only`` just ``{"AP50": ...}`` from a run restricted to
    IoU 0.5 and the ``all`` area range (4x fewer per-image evaluations, same number)."""
    evaluator = IgnoreAwareCOCOeval(coco_gt, coco_dt, "bbox", iou_cache)
    if img_ids is not None:
        evaluator.params.imgIds = sorted(img_ids)
    if ap50_only:
        evaluator.params.iouThrs = np.array([0.5])
        evaluator.params.areaRng, evaluator.params.areaRngLbl = evaluator.params.areaRng[:1], ["all"]
        evaluator.params.maxDets = evaluator.params.maxDets[-1:]
    with _quiet(verbose):
        evaluator.evaluate()
        evaluator.accumulate()
        if not ap50_only:
            evaluator.summarize()
    if ap50_only:
        # what summarize() does for AP50: mean precision over recall thresholds and categories
        # that have ground truth (-1 marks the others)
        precision = evaluator.eval["precision"][0, :, :, 0, 0]
        return {"AP50": float(precision[precision > -1].mean()) if (precision > -1).any() else math.nan}
    return {name: float(v) if v > -1 else math.nan for name, v in zip(STAT_NAMES, evaluator.stats[:6])}


def coco_stats(gt: dict, results: list[dict], img_ids: Optional[Sequence[int]] = None,
               verbose: bool = False) -> dict[str, float]:
    """AP, AP50, AP75, AP_S, AP_M, AP_L of a COCO ground-truth dict and result list, on the
    images ``img_ids`` (all by default); pycocotools' prints shown only if ``verbose``."""
    coco_gt = _coco_gt(gt, verbose)
    return _evaluate(coco_gt, _coco_dt(coco_gt, results, verbose), img_ids, verbose=verbose)


def _frame_ids(dataset: VideoDataset, frames: Iterable[tuple[int, int]]) -> list[int]:
    ids = image_ids(dataset)
    unknown = [frame for frame in frames if tuple(frame) not in ids]
    if unknown:
        raise ValueError(f"image_subset names (video, frame) pairs the dataset does not have: {unknown[:5]}")
    return [ids[tuple(frame)] for frame in frames]


def evaluate_detections(
    dataset: VideoDataset,
    detections: Sequence[dict],
    image_subset: Optional[Iterable[tuple[int, int]]] = None,
    ignore_fn: Optional[IgnoreFn] = None,
    verbose: bool = False,
) -> dict[str, float]:
    """COCO AP, AP50, AP75, AP_S, AP_M, AP_L of ``detections`` on ``dataset``.

    ``image_subset``: the ``(video index, frame index)`` pairs to evaluate (all by default).
    ``ignore_fn(video index, frame index, instance)``: true for ground truth to ignore.
    """
    img_ids = None if image_subset is None else _frame_ids(dataset, list(image_subset))
    return coco_stats(coco_ground_truth(dataset, ignore_fn), coco_results(dataset, detections), img_ids, verbose)


def detection_report(dataset: VideoDataset, detections: Sequence[dict], verbose: bool = False) -> dict:
    """Every detection metric of ``detections`` on ``dataset``.

    Keys: ``AP``, ``AP50``, ``AP75``, ``AP_S``, ``AP_M``, ``AP_L`` (all frames);
    ``AP50_slow`` / ``AP50_medium`` / ``AP50_fast`` (other speed groups ignored);
    ``AP50_degraded`` / ``AP50_clean`` (frame subsets); ``AP50_by_deterioration``
    ``{kind: AP50 on the frames that kind hit}``; ``num_objects`` ``{"all", "slow", "medium",
    "fast"}`` and ``num_frames`` ``{"all", "degraded", "clean", kind...}``, the counts behind them.
    """
    results = coco_results(dataset, detections)
    coco_gt = _coco_gt(coco_ground_truth(dataset), verbose)
    coco_dt = _coco_dt(coco_gt, results, verbose)  # one result set for every evaluation below,
    iou_cache: dict = {}  # so one set of IoUs: the ground truths differ only in ignore flags

    def ap50(gt: COCO, frames: Optional[list[tuple[int, int]]] = None) -> float:
        img_ids = None if frames is None else _frame_ids(dataset, frames)
        return _evaluate(gt, coco_dt, img_ids, ap50_only=True, verbose=verbose, iou_cache=iou_cache)["AP50"]

    report: dict = _evaluate(coco_gt, coco_dt, verbose=verbose, iou_cache=iou_cache)
    groups = speed_groups(dataset)
    for group in SPEED_GROUPS:
        report[f"AP50_{group}"] = ap50(_coco_gt(coco_ground_truth(dataset, ignore_other_speeds(groups, group))))
    degraded, clean, by_kind = deterioration_subsets(dataset)
    report["AP50_degraded"], report["AP50_clean"] = ap50(coco_gt, degraded), ap50(coco_gt, clean)
    report["AP50_by_deterioration"] = {kind: ap50(coco_gt, frames) for kind, frames in by_kind.items()}

    report["num_objects"] = {"all": len(groups), **{g: sum(v == g for v in groups.values()) for g in SPEED_GROUPS}}
    report["num_frames"] = {"all": len(degraded) + len(clean), "degraded": len(degraded), "clean": len(clean),
                            **{kind: len(frames) for kind, frames in by_kind.items()}}
    return report


TABLE_COLUMNS = (*STAT_NAMES, "AP50_slow", "AP50_medium", "AP50_fast", "AP50_degraded", "AP50_clean", "fps")


def format_table(rows: dict[str, dict], columns: Optional[Sequence[str]] = None) -> str:
    """An aligned text table, one row per model: ``rows = {model name: report dict}``.

    ``columns`` defaults to those of :data:`TABLE_COLUMNS` any row has. Columns whose name starts
    with ``AP`` or ``AR`` are fractions shown in percent (one decimal); others (``fps``...) with two
    decimals; ``-`` marks a missing or NaN value.
    """
    if columns is None:
        columns = [c for c in TABLE_COLUMNS if any(c in row for row in rows.values())]

    def cell(column: str, value) -> str:
        if not isinstance(value, numbers.Real) or math.isnan(value):
            return "-"
        return f"{100 * value:.1f}" if column.startswith(("AP", "AR")) else f"{value:.2f}"

    lines = [["model", *columns]] + [[name, *(cell(c, row.get(c)) for c in columns)] for name, row in rows.items()]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join([line[0].ljust(widths[0])] + [x.rjust(w) for x, w in zip(line[1:], widths[1:])])
                     for line in lines)

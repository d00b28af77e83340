"""Evaluate a video instance segmenter on a :class:`~stpn.data.types.VideoDataset`.

Every video is segmented (:func:`stpn.vis.video_inference.associate_frames`, frames resized to
``settings.test_size`` when set, masks back at the video's size), its top instances become
YouTube-VIS results (one compressed RLE per frame, :func:`stpn.data.formats.ytvis_results.ytvis_result`)
and the results are scored with :func:`stpn.metrics.ytvis.ytvis_stats`, overall and on the
degraded frames only (the built-in benchmark records which frames a deterioration hit; there
both the ground truth and the predictions keep just those frames' masks). Under ``torchrun``
the videos are shared out and rank 0 gets the result.
"""
from __future__ import annotations

import math
import time
from typing import Optional, Sequence

from tqdm import tqdm

from stpn.data.formats.ytvis import track_annotations, video_entry
from stpn.data.formats.ytvis_results import ytvis_result
from stpn.data.types import VideoDataset
from stpn.detection.run import video_tensors
from stpn.engine import evaluate_sharded, is_main_process
from stpn.metrics.detection_splits import deterioration_subsets
from stpn.metrics.ytvis import ytvis_stats
from stpn.prompts.settings import DEFAULT_INFERENCE, InferenceSettings
from stpn.vis.association import TOP_K
from stpn.vis.video_inference import associate_frames


def ytvis_ground_truth(dataset: VideoDataset, video_ids: Optional[Sequence[int]] = None) -> dict:
    """The YouTube-VIS dict of ``dataset`` (as :func:`stpn.data.formats.ytvis.write_ytvis` writes
    it, without frame files); video ``i`` gets id ``video_ids[i]`` (default ``i + 1``)."""
    ids = _video_ids(dataset, video_ids)
    videos, annotations = [], []
    for video, video_id in zip(dataset.videos, ids):
        videos.append(video_entry(video, video_id))
        annotations += track_annotations(video, video_id, len(annotations) + 1)
    return {"categories": [{"id": i + 1, "name": n} for i, n in enumerate(dataset.categories)],
            "videos": videos, "annotations": annotations}


def _video_ids(dataset: VideoDataset, video_ids: Optional[Sequence[int]]) -> list[int]:
    if video_ids is None:
        return list(range(1, len(dataset.videos) + 1))
    if len(video_ids) != len(dataset.videos):
        raise ValueError(f"{len(video_ids)} video ids for {len(dataset.videos)} videos")
    return [int(i) for i in video_ids]


def check_classes(model, dataset: VideoDataset, where: str = "the dataset") -> None:
    """The model must predict the dataset's categories, in its order (results use its ids)."""
    if list(model.class_names) != list(dataset.categories):
        raise ValueError(f"{where} has categories {list(dataset.categories)} but the model predicts "
                         f"{list(model.class_names)}")


def predict_vis_dataset(
    model, dataset: VideoDataset, settings: InferenceSettings = DEFAULT_INFERENCE, bf16: bool = False,
    video_ids: Optional[Sequence[int]] = None, top_k: int = TOP_K, progress: bool = True,
) -> tuple[Optional[list[dict]], Optional[float]]:
    """``(YouTube-VIS results, frames per second in the model)`` for every video; on ranks other
    than 0 ``(None, None)``. Category ids are 1-based indices of ``model.class_names``."""
    ids = _video_ids(dataset, video_ids)
    bar = tqdm(total=sum(len(v) for v in dataset.videos), desc="segment", unit="frame",
               disable=not (progress and is_main_process()), leave=False)

    def run(v: int) -> tuple[list[dict], int, float]:
        video = dataset.videos[v]
        if len(video) == 0:
            raise ValueError(f"video {video.name!r} has no frames")
        frames, _ = video_tensors(video, settings.test_size)
        start = time.perf_counter()
        segmented = associate_frames(model, frames, settings, bf16=bf16, progress=lambda t: bar.update(1))
        seconds = time.perf_counter() - start
        results = [ytvis_result(ids[v], inst.category + 1, inst.score, list(inst.masks.numpy()))
                   for inst in segmented.instances((video.height, video.width), top_k)]
        return results, len(video), seconds

    per_video = evaluate_sharded(list(range(len(dataset.videos))), run, [len(v) for v in dataset.videos])
    bar.close()
    if per_video is None:
        return None, None
    frames, seconds = sum(n for _, n, _ in per_video), sum(s for _, _, s in per_video)
    return [r for results, _, _ in per_video for r in results], frames / max(seconds, 1e-9)


def keep_frames(gt: dict, results: Sequence[dict], frames: dict[int, set[int]]) -> tuple[dict, list[dict]]:
    """Copies of ``gt`` and ``results`` with masks only on ``frames[video_id]`` (the others
    ``None``); ground-truth tracks left without a mask are dropped, and so are videos with no
    kept frame."""
    def masked(segmentations, kept):
        return [s if t in kept else None for t, s in enumerate(segmentations)]

    annotations = []
    for ann in gt["annotations"]:
        segmentations = masked(ann["segmentations"], frames.get(ann["video_id"], set()))
        if any(s is not None for s in segmentations):
            annotations.append({**ann, "segmentations": segmentations})
    kept_gt = {**gt, "annotations": annotations, "videos": [v for v in gt["videos"] if frames.get(v["id"])]}
    kept_results = [{**r, "segmentations": masked(r["segmentations"], frames[r["video_id"]])}
                    for r in results if frames.get(r["video_id"])]
    return kept_gt, kept_results


def vis_report(gt: dict, results: Sequence[dict], dataset: Optional[VideoDataset] = None,
               video_ids: Optional[Sequence[int]] = None) -> dict:
    """The twelve YouTube-VIS numbers of ``results`` on ``gt``, plus ``AP_degraded`` and
    ``AP50_degraded`` (on the frames a recorded deterioration hit; NaN when ``dataset`` records
    none) and ``num_frames`` ``{"all", "degraded"}``."""
    report: dict = ytvis_stats(gt, results)
    degraded: list = []
    if dataset is not None:
        ids = _video_ids(dataset, video_ids)
        degraded, _, _ = deterioration_subsets(dataset)
        by_video: dict[int, set[int]] = {}
        for v, t in degraded:
            by_video.setdefault(ids[v], set()).add(t)
        if degraded:
            sub = ytvis_stats(*keep_frames(gt, results, by_video))
            report["AP_degraded"], report["AP50_degraded"] = sub["AP"], sub["AP50"]
    report.setdefault("AP_degraded", math.nan)
    report.setdefault("AP50_degraded", math.nan)
    report["num_frames"] = {"all": sum(len(v["file_names"]) for v in gt["videos"]), "degraded": len(degraded)}
    return report


def evaluate_vis(
    model, dataset: VideoDataset, settings: InferenceSettings = DEFAULT_INFERENCE, bf16: bool = False,
    gt: Optional[dict] = None, video_ids: Optional[Sequence[int]] = None, progress: bool = True,
) -> tuple[Optional[dict], Optional[list[dict]]]:
    """``(report, results)``: :func:`vis_report` (plus ``fps``) and the YouTube-VIS results.
    ``gt``: the dataset's YouTube-VIS dict as read from its file (default: built from
    ``dataset``). Other ranks than 0 get ``(None, None)``."""
    check_classes(model, dataset)
    results, fps = predict_vis_dataset(model, dataset, settings, bf16, video_ids, progress=progress)
    if results is None:
        return None, None
    gt = gt if gt is not None else ytvis_ground_truth(dataset, video_ids)
    return {**vis_report(gt, results, dataset, video_ids), "fps": fps}, results

"""Run a tracker over every sequence of a GOT-10k split and score it (GOT-10k metrics overall and
on degraded / clean frames). The function behind ``stpn eval-track``.

Each sequence starts from its first ground-truth box. With a dataset *root*, the ground truth
is read from the GOT-10k files in float64 (as the toolkit does); with an in-memory
:class:`~stpn.data.types.VideoDataset` it comes from the annotations (one object per video).
A frame is *degraded* when a deterioration hit it, frame-wide or on the target
(:func:`stpn.metrics.detection_splits.frame_deteriorations`; the built-in benchmark records
them); ``AO_degraded`` / ``AO_clean`` are ``None`` when the split has no counted frame of that
kind. Sequences are split across processes under ``torchrun`` (whole sequences per rank,
:func:`stpn.engine.evaluate_sharded`); every rank returns the report, computed on rank 0.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Union

import numpy as np
from tqdm import tqdm

from stpn.data.formats.got10k import cover_level, read_got10k
from stpn.data.types import Video, VideoDataset
from stpn.engine import all_gather_objects, evaluate_sharded, is_main_process
from stpn.metrics.detection_splits import frame_deteriorations
from stpn.metrics.got10k import SequenceResult, got10k_metrics
from stpn.metrics.got10k_files import read_ground_truth, read_results, write_results
from stpn.tracking.sequence import track_video

SUBSETS = ("degraded", "clean")


def video_ground_truth(video: Video) -> tuple[np.ndarray, np.ndarray]:
    """``(gt (N, 4) xywh, cover (N,))`` of a one-object video; absent frames are ``0,0,0,0`` with
    cover 0, cover levels from the visible fractions (GOT-10k's ``ceil(8 v)``)."""
    gt, cover = np.zeros((len(video), 4)), np.zeros(len(video), dtype=int)
    for t, frame in enumerate(video.annotations):
        if len(frame.instances) > 1:
            raise ValueError(f"video {video.name!r} frame {t} has {len(frame.instances)} objects; "
                             "tracking evaluation needs one object per video (GOT-10k sequences)")
        if frame.instances:
            inst = frame.instances[0]
            x1, y1, x2, y2 = (float(v) for v in inst.box)
            gt[t], cover[t] = (x1, y1, x2 - x1, y2 - y1), cover_level(inst.visible_fraction)
    return gt, cover


def _ground_truth(dataset: VideoDataset, root: Optional[Path], split: str) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for video in dataset.videos:
        if root is None:
            out.append(video_ground_truth(video))
            continue
        gt, cover, _ = read_ground_truth(root / split / video.name)
        if len(gt) != len(video):
            raise ValueError(f"sequence {video.name!r}: {len(gt)} ground-truth boxes for {len(video)} frames "
                             "(the test split has no ground truth to evaluate against)")
        out.append((gt, cover))
    return out


def _degraded_selectors(dataset: VideoDataset) -> list[np.ndarray]:
    hits = frame_deteriorations(dataset)
    return [np.array([bool(hits[(v, t)]) for t in range(len(video))]) for v, video in enumerate(dataset.videos)]


def evaluate_tracker(
    model,
    data: Union[str, Path, VideoDataset],
    split: str = "val",
    results_dir: Optional[Union[str, Path]] = None,
    tracker_name: str = "stpn",
    progress: bool = True,
    **online_kwargs,
) -> dict:
    """``{"AO", "SR50", "SR75", "FPS", "AO_degraded", "AO_clean", "num_sequences", "num_frames",
    ...}`` of ``model`` on a split (a GOT-10k root or a ``VideoDataset``).

    ``results_dir``: write the toolkit layout there (``results_dir/tracker_name/seq/...``) and
    score the written files (boxes at 3 decimals, as the toolkit reads them).
    ``online_kwargs`` go to :class:`~stpn.tracking.online.OnlineTracker`.
    """
    root = None if isinstance(data, VideoDataset) else Path(data)
    dataset = data if root is None else read_got10k(root, split)
    truth = _ground_truth(dataset, root, split)
    bar = tqdm(total=sum(len(v) for v in dataset.videos), desc="track", unit="frame", disable=not (progress and is_main_process()), leave=False)

    def run(index: int):
        video, (gt, cover) = dataset.videos[index], truth[index]
        if cover[0] == 0:
            raise ValueError(f"sequence {video.name!r}: the target is not visible in the first frame")
        boxes, _, times = track_video(model, video.frames, gt[0], **online_kwargs)
        bar.update(len(video))
        return boxes, times

    lengths = [len(v) for v in dataset.videos]
    tracked = evaluate_sharded(list(range(len(dataset.videos))), run, lengths)
    bar.close()
    report = None
    if is_main_process():
        report = _report(dataset, truth, tracked, results_dir, tracker_name)
    return all_gather_objects(report)[0]


def _report(dataset, truth, tracked, results_dir, tracker_name) -> dict:
    sequences = []
    for video, (gt, cover), (boxes, times) in zip(dataset.videos, truth, tracked):
        if results_dir is not None:  # score what the files say (3 decimals), as the toolkit would
            write_results(results_dir, tracker_name, video.name, boxes, times)
            boxes, times = read_results(results_dir, tracker_name, video.name)
        sequences.append(SequenceResult(video.name, boxes, gt, cover, video.width, video.height, times))
    report = got10k_metrics(sequences)
    degraded = _degraded_selectors(dataset)
    for name, selectors in zip(SUBSETS, (degraded, [~d for d in degraded])):
        part = got10k_metrics(sequences, selectors)
        report[f"AO_{name}"] = None if math.isnan(part["AO"]) else part["AO"]
        report[f"SR50_{name}"] = None if math.isnan(part["SR50"]) else part["SR50"]
        report[f"num_frames_{name}"] = part["num_frames"]
    if report["num_frames_degraded"] == 0:  # nothing recorded: a clean split is not a finding
        report["AO_clean"] = report["SR50_clean"] = None
    return report

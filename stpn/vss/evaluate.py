"""mIoU (all frames and degraded frames), temporal consistency and speed on segmentation videos.

TC is reported twice: ``tc`` as ETC computes it (every pixel whose flow stays inside the frame)
and ``tc_visible`` leaving out the pixels the benchmark knows are occluded or disoccluded in the
next frame (:mod:`stpn.vss.synthetic`). ``fps`` counts frames over the model's wall time (data
generation excluded; one frame at a time, as in streaming use). With a ``flow`` function (RAFT,
:mod:`stpn.vss.raft_flow`) instead of the benchmark's exact flow, ``tc`` uses it and
``tc_visible`` is NaN (visibility is known only with the exact flow).
"""
from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np

import torch

from stpn.vss.inference import StreamingSegmenter
from stpn.vss.metrics import TemporalConsistency, confusion_matrix, iou_from_confusion, mean_iou
from stpn.vss.model import VideoSegmenter
from stpn.vss.synthetic import SegmentationVideo


FlowFn = Callable[[np.ndarray, np.ndarray], torch.Tensor]  # frames t, t + 1 (H, W, 3) uint8 -> (2, H, W)


def evaluate_videos(model: VideoSegmenter, videos: Sequence[SegmentationVideo],
                    device: torch.device | str = "cpu", flow: Optional[FlowFn] = None) -> dict[str, float]:
    """``miou``, ``miou_degraded`` (NaN without degraded frames), ``tc``, ``tc_visible``, per-class
    ``iou_<c>``, ``frames`` and ``fps``."""
    classes = model.num_classes
    segmenter = StreamingSegmenter(model, device)
    confusion = torch.zeros(classes, classes, dtype=torch.int64)
    degraded = torch.zeros_like(confusion)
    tc, tc_visible = TemporalConsistency(classes), TemporalConsistency(classes)
    frames, seconds = 0, 0.0
    was_training = model.training
    for video in videos:
        segmenter.reset()
        previous = None
        for t, frame in enumerate(video.frames):
            start = time.perf_counter()
            pred = segmenter.step(frame)
            if torch.device(device).type == "cuda":
                torch.cuda.synchronize()
            seconds += time.perf_counter() - start
            frames += 1
            counts = confusion_matrix(pred, torch.from_numpy(video.labels[t]).long(), classes)
            confusion += counts
            if video.degraded[t]:
                degraded += counts
            if previous is not None and flow is not None:
                tc.update(previous, pred, flow(video.frames[t - 1], frame))
            elif previous is not None:
                exact = torch.from_numpy(video.flows[t - 1])
                tc.update(previous, pred, exact)
                tc_visible.update(previous, pred, exact, torch.from_numpy(video.visible[t - 1]))
            previous = pred
    model.train(was_training)
    out = {"miou": mean_iou(confusion),
           "miou_degraded": mean_iou(degraded) if int(degraded.sum()) else float("nan"),
           "tc": tc.compute(), "tc_visible": tc_visible.compute(),
           "frames": float(frames), "fps": frames / seconds if seconds else float("nan")}
    out.update({f"iou_{c}": float(v) for c, v in enumerate(iou_from_confusion(confusion))})
    return out

"""The detector's box-head features of every ground-truth object (RoIAlign on the ground-truth
boxes, then the two-layer head whose output the classifier reads), with each object's class,
FGFA speed group (:func:`stpn.metrics.detection_splits.speed_groups`) and whether a
deterioration hit it.

The backbone maps come from the same extractor as test-time detection (STPN's prompts under the
detector's settings: mode, ``K``, ``S``), so the features are those the detector classifies.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from stpn.analysis.models import AnalysedDetector
from stpn.data.types import VideoDataset
from stpn.detection.inference import prepare_frame
from stpn.detection.run import video_tensors
from stpn.engine.device import model_device
from stpn.metrics.detection_splits import speed_groups
from stpn.prompts.streaming import StreamingExtractor


@dataclass
class ObjectFeatures:
    """N ground-truth objects: ``features`` ``(N, D)`` float32, ``labels`` ``(N,)`` category ids,
    ``speeds`` ``(N,)`` "slow" / "medium" / "fast", ``degraded`` ``(N,)`` bool."""

    features: np.ndarray
    labels: np.ndarray
    speeds: np.ndarray
    degraded: np.ndarray

    def subset(self, keep: np.ndarray) -> "ObjectFeatures":
        return ObjectFeatures(self.features[keep], self.labels[keep], self.speeds[keep], self.degraded[keep])

    def __len__(self) -> int:
        return len(self.labels)


def frame_maps(detector: AnalysedDetector, frames: Sequence[Tensor]) -> Iterator[tuple[int, list[Tensor]]]:
    """``(t, [(C_i, H_i, W_i)] backbone maps)`` of every frame ``(3, H, W)`` in [0, 1]."""
    model, settings = detector.model, detector.settings
    device = model_device(model)
    prepared = [prepare_frame(f, device=device) for f in frames]
    if model.uses_prompts:
        extractor = StreamingExtractor(model.extractor, settings.mode, settings.num_support, settings.stride,
                                       settings.batch_size)
        yield from extractor.run(prepared)
    else:
        for t, frame in enumerate(prepared):
            yield t, [m[0] for m in model.extractor.forward_features(frame[None])]


@torch.no_grad()
def ground_truth_features(detector: AnalysedDetector, dataset: VideoDataset, videos: Optional[Sequence[int]] = None,
                          progress: bool = True) -> ObjectFeatures:
    """Box-head features of every ground-truth object of ``videos`` (default: all)."""
    model = detector.model.eval()
    groups = speed_groups(dataset)
    videos = range(len(dataset.videos)) if videos is None else videos
    rows: list[np.ndarray] = []
    labels, speeds, degraded = [], [], []
    for v in tqdm(videos, desc=f"RoI features ({detector.name})", unit="video", disable=not progress, leave=False):
        video = dataset.videos[v]
        frames, scale = video_tensors(video, detector.settings.test_size)
        size = tuple(frames[0].shape[-2:])
        for t, maps in frame_maps(detector, frames):
            annotation = video.annotations[t]
            if not annotation.instances:
                continue
            boxes = torch.from_numpy(np.stack([i.box for i in annotation.instances]).astype(np.float32) * scale)
            features = model.neck([m[None] for m in maps])
            pooled = model.roi_heads.box_roi_pool(features, [boxes.to(maps[0].device)], [size])
            rows.append(model.roi_heads.box_head(pooled).float().cpu().numpy())
            for inst in annotation.instances:
                labels.append(inst.category_id)
                speeds.append(groups[(v, t, inst.track_id)])
                degraded.append(bool(inst.deteriorations or annotation.deteriorations))
    if not rows:
        raise ValueError("the videos have no ground-truth objects: nothing to embed")
    return ObjectFeatures(np.concatenate(rows), np.array(labels), np.array(speeds), np.array(degraded))

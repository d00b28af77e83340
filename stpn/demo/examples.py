"""Example frames for the demo report: a degraded frame with each model's boxes and class
names, beside a clean frame of the same video, enlarged so that the classes can be read."""
from __future__ import annotations

import numpy as np
from PIL import Image

from stpn.data.types import VideoDataset, load_frame
from stpn.data.video import draw_boxes

SCALE = 3  # 128-pixel frames are shown at 384 pixels
SHOWN_KINDS = ("motion_blur", "occlusion", "defocus", "noise", "jpeg")  # low light: too dark to see


def _hits(annotation) -> set[str]:
    return set(annotation.deteriorations) | {d for i in annotation.instances for d in i.deteriorations}


def pick_frames(dataset: VideoDataset) -> list[tuple[str, int, int, int]]:
    """Per kind of :data:`SHOWN_KINDS`: the first validation frame it hits (with objects) and
    the nearest clean frame of that video: ``(kind, video, degraded frame, clean frame)``."""
    picks = []
    for kind in SHOWN_KINDS:
        found = next(((v, t) for v, video in enumerate(dataset.videos) for t, ann in enumerate(video.annotations)
                      if ann.instances and kind in _hits(ann)), None)
        if found is None:
            continue
        v, t = found
        clean = [u for u, ann in enumerate(dataset.videos[v].annotations) if ann.instances and not _hits(ann)]
        if clean:
            picks.append((kind, v, t, min(clean, key=lambda u: (abs(u - t), u))))
    return picks


def _enlarge(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return np.asarray(Image.fromarray(frame).resize((w * SCALE, h * SCALE), Image.BICUBIC))


def _panel(frame, gt, detections, names, score_thresh: float) -> np.ndarray:
    panel = draw_boxes(_enlarge(frame), np.asarray(gt).reshape(-1, 4) * SCALE, colors=[(255, 255, 255)] * len(gt))
    if detections is None:
        return panel
    keep = detections["scores"] >= score_thresh
    labels = [names[int(i) - 1] for i in detections["labels"][keep]]
    return draw_boxes(panel, detections["boxes"][keep].numpy() * SCALE, labels, detections["scores"][keep].numpy())


def example_frames(dataset: VideoDataset, detections: dict[str, list[dict]], score_thresh: float = 0.5):
    """``(examples, headers)`` for :func:`stpn.demo.report.write_report`: per picked frame a
    caption and panels [clean neighbour (ground truth), degraded frame with each model's boxes]."""
    names = dataset.categories
    examples = []
    for kind, v, t, u in pick_frames(dataset):
        video = dataset.videos[v]
        gt = [i.box for i in video.annotations[t].instances]
        panels = [_panel(load_frame(video.frames[u]), [i.box for i in video.annotations[u].instances], None, names, 0)]
        for model, dets in detections.items():
            det = next(d for d in dets if d["video_index"] == v and d["frame_index"] == t)
            panels.append(_panel(load_frame(video.frames[t]), gt, det, names, score_thresh))
        classes = sorted({names[i.category_id] for i in video.annotations[t].instances})
        examples.append((f"{kind.replace('_', ' ')}: {video.name} frame {t} (clean frame {u}); objects: "
                         f"{', '.join(classes)}", panels))
    headers = ["clean frame nearby (ground truth)"] + [f"degraded frame: {m}" for m in detections]
    return examples, headers

"""Detection metrics: COCO AP through pycocotools, speed groups, degraded/clean subsets."""
import json
import math

import numpy as np
import pytest
import torch

from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset
from stpn.metrics.coco_detection import coco_results, detection_report, format_table, save_coco_results


def dataset(fast_step=8.0):
    """One video, two tracks: a still one (slow) and one jumping ``fast_step`` px per frame."""
    annotations = []
    for t in range(12):
        still = Instance(1, 0, np.array([10, 10, 40, 40], np.float32))
        moving = Instance(2, 1, np.array([4 + fast_step * t, 60, 24 + fast_step * t, 80], np.float32),
                          deteriorations=("motion_blur",) if t in (3, 4) else ())
        annotations.append(FrameAnnotation([still, moving], ("noise",) if t == 8 else ()))
    frames = [np.zeros((128, 128, 3), np.uint8)] * 12
    return VideoDataset(["a", "b"], [Video("v", frames, annotations, 128, 128)])


def detections(data, keep=lambda inst: True, shift=0.0, extra=None):
    out = []
    for t, ann in enumerate(data.videos[0].annotations):
        insts = [i for i in ann.instances if keep(i)]
        boxes = [i.box + np.array([shift, 0, shift, 0]) for i in insts]
        labels = [i.category_id + 1 for i in insts]
        if extra is not None:  # the most confident detection
            boxes.insert(0, extra)
            labels.insert(0, 1)
        out.append({"video_index": 0, "frame_index": t, "boxes": torch.tensor(np.array(boxes).reshape(-1, 4)),
                    "scores": torch.linspace(0.9, 0.5, len(boxes)), "labels": torch.tensor(labels)})
    return out


def test_perfect_detections():
    data = dataset()
    report = detection_report(data, detections(data))
    assert report["AP"] == pytest.approx(1.0) and report["AP50_fast"] == pytest.approx(1.0)
    assert report["AP50_degraded"] == pytest.approx(1.0) and report["AP50_clean"] == pytest.approx(1.0)


def test_iou_between_thresholds():
    data = dataset()
    report = detection_report(data, detections(data, shift=6.0))  # 20..30 px boxes, IoU 0.6-0.67
    assert report["AP50"] == pytest.approx(1.0) and report["AP75"] == pytest.approx(0.0)


def test_false_positives_lower_ap_and_empty_is_zero():
    data = dataset()
    worse = detection_report(data, detections(data, extra=np.array([90, 5, 120, 30])))
    assert worse["AP50"] < 1.0
    empty = detection_report(data, [])
    assert empty["AP"] == 0.0 and empty["AP50_degraded"] == 0.0


def test_speed_split_ignores_other_groups():
    data = dataset()
    only_slow = detections(data, keep=lambda i: i.track_id == 1)
    report = detection_report(data, only_slow)
    assert report["AP50_slow"] == pytest.approx(1.0) and report["AP50_fast"] == pytest.approx(0.0)
    # detecting the fast object as well adds no false positive to the slow group
    both = detection_report(data, detections(data))
    assert both["AP50_slow"] == pytest.approx(1.0)
    assert math.isnan(report["AP50_medium"])  # no medium ground truth at all


def test_degraded_and_clean_subsets():
    data = dataset()
    # miss the moving object exactly on the frames where a deterioration hit
    dets = detections(data)
    for t in (3, 4, 8):
        keep = dets[t]["labels"] == 1
        dets[t] = {k: (v[keep] if torch.is_tensor(v) else v) for k, v in dets[t].items()}
    report = detection_report(data, dets)
    assert report["AP50_clean"] == pytest.approx(1.0)
    assert report["AP50_degraded"] < 1.0
    assert set(report["AP50_by_deterioration"]) == {"motion_blur", "noise"}


def test_results_json_and_table(tmp_path):
    data = dataset()
    path = save_coco_results(tmp_path / "dets.json", data, detections(data))
    loaded = json.loads(path.read_text())
    assert loaded == json.loads(json.dumps(coco_results(data, detections(data))))
    assert len(loaded) == 24 and loaded[0]["bbox"] == [10.0, 10.0, 30.0, 30.0]
    text = format_table({"m": {"AP": 0.5, "AP50": 0.75, "fps": 3.0}})
    assert "50.0" in text and "75.0" in text and "3.00" in text
    with pytest.raises(ValueError, match="frame 99"):
        coco_results(data, [{"video_index": 0, "frame_index": 99, "boxes": [], "scores": [], "labels": []}])

"""Detection metrics: COCO AP through pycocotools, speed groups, degraded/clean subsets."""
import json
import math

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset
from stpn.metrics.coco_detection import detection_report, evaluate_detections, format_table
from stpn.metrics.coco_format import coco_ground_truth, coco_results, image_ids, load_coco_results, save_coco_results
from stpn.metrics.detection_splits import deterioration_subsets, ignore_other_speeds, speed_groups
from stpn.metrics.motion_speed import box_iou

FRAMES = 12
STILL, MOVING = 1, 2  # track ids


def dataset(moving_category=1):
    """One video, three categories ("c" has no ground truth), two tracks: a still 30 px box
    (slow, category "a") and a 20 px box jumping 8 px per frame (fast). Motion blur hits the
    moving object in frames 3 and 4, frame-wide noise frame 8. COCO AP is per category, so the
    speed tests put both objects in one category: only then can the fast object's detections
    be false positives of the slow group."""
    annotations = []
    for t in range(FRAMES):
        still = Instance(STILL, 0, np.array([10, 10, 40, 40], np.float32))
        moving = Instance(MOVING, moving_category, np.array([4 + 8 * t, 60, 24 + 8 * t, 80], np.float32),
                          deteriorations=("motion_blur",) if t in (3, 4) else ())
        annotations.append(FrameAnnotation([still, moving], ("noise",) if t == 8 else ()))
    frames = [np.zeros((128, 128, 3), np.uint8)] * FRAMES
    return VideoDataset(["a", "b", "c"], [Video("v", frames, annotations, 128, 128)])


def detections(data, keep=lambda t, inst: True, shift=0.0, extra=()):
    """One detection per kept object (scores 0.9 down to 0.5 in instance order), boxes moved
    ``shift`` px right; ``extra`` = ``(frame, box, label, score)`` detections added."""
    out = []
    for t, ann in enumerate(data.videos[0].annotations):
        insts = [i for i in ann.instances if keep(t, i)]
        boxes = [i.box + np.array([shift, 0, shift, 0], np.float32) for i in insts]
        scores = list(np.linspace(0.9, 0.5, len(boxes)))
        labels = [i.category_id + 1 for i in insts]
        for frame, box, label, score in extra:
            if frame == t:
                boxes, labels, scores = boxes + [np.asarray(box, np.float32)], labels + [label], scores + [score]
        out.append({"video_index": 0, "frame_index": t, "boxes": torch.tensor(np.array(boxes).reshape(-1, 4)),
                    "scores": torch.tensor(scores, dtype=torch.float32), "labels": torch.tensor(labels)})
    return out


def pycocotools_stats(tmp_path, data, dets, img_ids=None):
    """The six stats from a plain pycocotools run on files, as a user would call it."""
    gt_file, dt_file = tmp_path / "gt.json", tmp_path / "dt.json"
    gt_file.write_text(json.dumps(coco_ground_truth(data)))
    save_coco_results(dt_file, data, dets)
    coco_gt = COCO(str(gt_file))
    evaluator = COCOeval(coco_gt, coco_gt.loadRes(str(dt_file)), "bbox")
    if img_ids is not None:
        evaluator.params.imgIds = img_ids
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return [float(v) if v > -1 else math.nan for v in evaluator.stats[:6]]


def test_perfect_detections():
    data = dataset()
    report = detection_report(data, detections(data))
    for key in ("AP", "AP50", "AP75", "AP_S", "AP50_slow", "AP50_fast", "AP50_degraded", "AP50_clean"):
        assert report[key] == pytest.approx(1.0), key
    assert math.isnan(report["AP_M"]) and math.isnan(report["AP_L"])  # every box is under 32² px


def test_iou_between_thresholds():
    data = dataset()
    dets = detections(data, shift=6.0)
    gt_boxes = np.stack([i.box for i in data.videos[0].annotations[0].instances])
    ious = np.diag(box_iou(np.asarray(dets[0]["boxes"]), gt_boxes))
    assert np.all((ious > 0.5) & (ious < 0.75))
    report = evaluate_detections(data, dets)
    assert report["AP50"] == pytest.approx(1.0) and report["AP75"] == pytest.approx(0.0)


def test_false_positive_lowers_ap_and_matches_pycocotools(tmp_path):
    data = dataset()
    dets = detections(data, extra=[(t, [90, 5, 120, 30], 1, 0.95) for t in (0, 5, 9)])
    report = evaluate_detections(data, dets)
    assert 0 < report["AP50"] < 1
    assert list(report.values()) == pytest.approx(list(pycocotools_stats(tmp_path, data, dets)), nan_ok=True)


def test_no_detections_is_zero_not_an_error():
    data = dataset()
    empty_frames = [{"video_index": 0, "frame_index": 0, "boxes": np.zeros((0, 4)), "scores": [], "labels": []}]
    for dets in ([], empty_frames):
        report = detection_report(data, dets)
        assert report["AP"] == 0.0 and report["AP50_slow"] == 0.0 and report["AP50_degraded"] == 0.0
        assert math.isnan(report["AP_L"])  # no large ground truth: undefined, not 0


def test_category_without_ground_truth_is_left_out():
    data = dataset()  # category "c" (label 3) has no ground truth
    dets = detections(data, extra=[(t, [60, 5, 90, 30], 3, 0.99) for t in range(FRAMES)])
    assert evaluate_detections(data, dets)["AP"] == pytest.approx(1.0)


def test_speed_groups_from_tracks():
    groups = speed_groups(dataset())
    assert {g for (v, t, k), g in groups.items() if k == STILL} == {"slow"}
    assert {g for (v, t, k), g in groups.items() if k == MOVING} == {"fast"}


def test_speed_split_ignores_the_other_groups():
    data = dataset(moving_category=0)
    only_slow = detection_report(data, detections(data, keep=lambda t, i: i.track_id == STILL))
    assert only_slow["AP50_slow"] == pytest.approx(1.0) and only_slow["AP50_fast"] == pytest.approx(0.0)
    assert math.isnan(only_slow["AP50_medium"])  # no medium ground truth at all
    both = detection_report(data, detections(data))  # the fast object's detections are no FPs for "slow"
    assert both["AP50_slow"] == pytest.approx(1.0) and both["AP50_fast"] == pytest.approx(1.0)


def test_plain_pycocotools_drops_the_ignore_flag():
    """Why IgnoreAwareCOCOeval exists: plain COCOeval still counts "ignored" objects as misses."""
    data = dataset(moving_category=0)
    dets = detections(data, keep=lambda t, i: i.track_id == STILL)
    gt = coco_ground_truth(data, ignore_other_speeds(speed_groups(data), "slow"))
    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    plain = COCOeval(coco_gt, coco_gt.loadRes(coco_results(data, dets)), "bbox")
    plain.evaluate()
    plain.accumulate()
    plain.summarize()
    ours = evaluate_detections(data, dets, ignore_fn=ignore_other_speeds(speed_groups(data), "slow"))
    assert plain.stats[1] < 1.0 and ours["AP50"] == pytest.approx(1.0)


def test_ignored_object_absorbs_one_detection_not_duplicates():
    data = dataset(moving_category=0)
    moving = {t: ann.instances[1].box for t, ann in enumerate(data.videos[0].annotations)}
    # per frame: the fast object found twice (scores 0.97, 0.96), then the slow one (0.9)
    dets = detections(data, keep=lambda t, i: i.track_id == STILL,
                      extra=[(t, moving[t], 1, s) for t in range(FRAMES) for s in (0.97, 0.96)])
    # slow group: first hit on the fast object ignored, the duplicate a false positive ranked
    # above every true positive, so precision never exceeds TP / (TP + FP)
    expected = FRAMES / (FRAMES + FRAMES)
    assert detection_report(data, dets)["AP50_slow"] == pytest.approx(expected)


def test_ignore_fn_and_image_subset():
    data = dataset()
    only_slow = detections(data, keep=lambda t, i: i.track_id == STILL)
    assert evaluate_detections(data, only_slow)["AP50"] < 1.0
    ignore_moving = evaluate_detections(data, only_slow, ignore_fn=lambda v, t, i: i.track_id == MOVING)
    assert ignore_moving["AP50"] == pytest.approx(1.0)
    miss_early = detections(data, keep=lambda t, i: t >= 6)
    assert evaluate_detections(data, miss_early, image_subset=[(0, t) for t in range(6, FRAMES)])["AP"] == 1.0
    assert evaluate_detections(data, miss_early, image_subset=[(0, t) for t in range(6)])["AP"] == 0.0
    with pytest.raises(ValueError, match="does not have"):
        evaluate_detections(data, miss_early, image_subset=[(0, FRAMES)])


def test_degraded_and_clean_subsets(tmp_path):
    data = dataset()
    degraded, clean, by_kind = deterioration_subsets(data)
    assert degraded == [(0, 3), (0, 4), (0, 8)] and clean == [(0, t) for t in range(FRAMES) if t not in (3, 4, 8)]
    assert by_kind == {"motion_blur": [(0, 3), (0, 4)], "noise": [(0, 8)]}
    # miss the moving object where motion blur hit it, plus a false positive on a clean frame
    dets = detections(data, keep=lambda t, i: not i.deteriorations, extra=[(0, [90, 5, 120, 30], 1, 0.95)])
    report = detection_report(data, dets)
    assert report["AP50_by_deterioration"]["noise"] == pytest.approx(1.0)
    assert report["AP50_by_deterioration"]["motion_blur"] < 1.0 and report["AP50_degraded"] < 1.0
    assert 0 < report["AP50_clean"] < 1.0
    assert report["num_frames"] == {"all": 12, "degraded": 3, "clean": 9, "motion_blur": 2, "noise": 1}
    ids = image_ids(data)  # the AP50-only shortcut agrees with a plain pycocotools run on files
    for key, frames in (("AP50_degraded", degraded), ("AP50_clean", clean)):
        assert report[key] == pytest.approx(pycocotools_stats(tmp_path, data, dets, [ids[f] for f in frames])[1])


def test_report_equals_separate_evaluations():
    """The report's shared IoUs and AP50-only runs give what one full evaluation per split gives."""
    data = dataset(moving_category=0)
    rng = np.random.default_rng(0)
    dets = detections(data, keep=lambda t, i: t % 4 != 1, shift=3.0,
                      extra=[(t, np.tile(rng.uniform(0, 60, 2), 2) + [0, 0, 25, 25], 1, rng.uniform()) for t in range(9)])
    report = detection_report(data, dets)
    groups = speed_groups(data)
    for group in ("slow", "fast"):
        alone = evaluate_detections(data, dets, ignore_fn=ignore_other_speeds(groups, group))["AP50"]
        assert 0 < report[f"AP50_{group}"] == pytest.approx(alone, abs=1e-12)
    degraded, clean, _ = deterioration_subsets(data)
    for key, frames in (("AP50_degraded", degraded), ("AP50_clean", clean)):
        assert report[key] == pytest.approx(evaluate_detections(data, dets, image_subset=frames)["AP50"], abs=1e-12)
    assert report["num_objects"] == {"all": 2 * FRAMES, "slow": FRAMES, "medium": 0, "fast": FRAMES}


def test_results_json_round_trip(tmp_path):
    data = dataset()
    dets = detections(data, keep=lambda t, i: t != 5, shift=0.25)  # frame 5 keeps an empty entry
    path = save_coco_results(tmp_path / "out" / "dets.json", data, dets)
    assert json.loads(path.read_text()) == json.loads(json.dumps(coco_results(data, dets)))
    loaded = load_coco_results(path, data)
    assert [d["frame_index"] for d in loaded] == [t for t in range(FRAMES) if t != 5]
    for original, back in zip([d for d in dets if len(d["labels"])], loaded):
        np.testing.assert_allclose(back["boxes"], original["boxes"].numpy(), atol=1e-5)
        np.testing.assert_allclose(back["scores"], original["scores"].numpy(), atol=1e-6)
        np.testing.assert_array_equal(back["labels"], original["labels"].numpy())
    assert evaluate_detections(data, loaded) == evaluate_detections(data, dets)


def test_bad_input_is_named():
    data = dataset()
    good = {"video_index": 0, "frame_index": 0, "boxes": [[0, 0, 5, 5]], "scores": [0.5], "labels": [1]}
    for change, message in (({"frame_index": 99}, "frame 99"), ({"labels": [0]}, "1-based"),
                            ({"scores": [0.5, 0.4]}, "1 boxes, 2 scores"), ({"labels": [4]}, "1..3")):
        with pytest.raises(ValueError, match=message):
            coco_results(data, [{**good, **change}])
    with pytest.raises(ValueError, match="lacks key"):
        coco_results(data, [{k: v for k, v in good.items() if k != "scores"}])
    data.videos[0].annotations[2].instances[1].category_id = 3
    with pytest.raises(ValueError, match="frame 2 track 2: category_id 3 outside 0..2"):
        coco_ground_truth(data)
    data.videos[0].annotations[2].instances[1].track_id = STILL
    with pytest.raises(ValueError, match="frame 2: a track id appears twice"):
        speed_groups(data)


def test_quiet_unless_verbose(capsys):
    data = dataset()
    evaluate_detections(data, detections(data))
    assert capsys.readouterr().out == ""
    evaluate_detections(data, detections(data), verbose=True)
    assert "Average Precision" in capsys.readouterr().out


def test_format_table():
    text = format_table({"baseline": {"AP": 0.5, "AP50": 0.75, "AP50_fast": math.nan, "fps": 3.0},
                         "stpn-transformer": {"AP": 0.625, "AP50": np.float32(0.8)}})
    lines = text.splitlines()
    assert lines[0].split() == ["model", "AP", "AP50", "AP50_fast", "fps"]
    assert lines[1].split() == ["baseline", "50.0", "75.0", "-", "3.00"]
    assert lines[2].split() == ["stpn-transformer", "62.5", "80.0", "-", "-"]
    assert len({len(line) for line in lines}) == 1  # aligned

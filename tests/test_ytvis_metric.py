"""YouTube-VIS AP (stpn.metrics.ytvis): COCO segm AP on one-frame videos, hand-made video cases."""
import contextlib
import io
import itertools
import math

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from stpn.data.formats.geometry import encode_mask
from stpn.metrics.ytvis import VIS_STAT_NAMES, video_iou_matrix, ytvis_stats


def box_mask(height, width, y1, x1, y2, x2):
    mask = np.zeros((height, width), bool)
    mask[y1:y2, x1:x2] = True
    return mask


def track(masks):
    """Per-frame RLEs (None where a mask is None)."""
    return [None if m is None else encode_mask(m) for m in masks]


def vis_gt(videos, tracks, num_categories=2):
    """videos: [(height, width, length)]; tracks: [(video_id, category_id, [mask or None per frame], iscrowd)]."""
    return {"categories": [{"id": c + 1, "name": f"c{c}"} for c in range(num_categories)],
            "videos": [{"id": i + 1, "height": h, "width": w, "length": t, "file_names": [f"v{i}/{k}.jpg" for k in range(t)]}
                       for i, (h, w, t) in enumerate(videos)],
            "annotations": [{"id": k + 1, "video_id": v, "category_id": c, "iscrowd": crowd, "segmentations": track(m)}
                            for k, (v, c, m, crowd) in enumerate(tracks)]}


def result(video_id, category_id, score, masks):
    return {"video_id": video_id, "category_id": category_id, "score": score, "segmentations": track(masks)}


def random_blob(rng, height, width):
    side_y, side_x = rng.integers(3, height // 1.2), rng.integers(3, width // 1.2)
    y, x = rng.integers(0, height - side_y), rng.integers(0, width - side_x)
    mask = box_mask(height, width, y, x, y + side_y, x + side_x)
    mask &= rng.random((height, width)) > 0.15  # ragged, so IoUs are not box IoUs
    return mask


def coco_segm_stats(images, gts, dts):
    coco_gt = COCO()
    coco_gt.dataset = {
        "images": [{"id": i + 1, "height": h, "width": w} for i, (h, w) in enumerate(images)],
        "categories": [{"id": 1, "name": "c0"}, {"id": 2, "name": "c1"}],
        "annotations": [{"id": k + 1, "image_id": img, "category_id": c, "iscrowd": crowd,
                         "segmentation": encode_mask(m), "area": float(m.sum()), "bbox": [0, 0, 1, 1]}
                        for k, (img, c, m, crowd) in enumerate(gts)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([{"image_id": img, "category_id": c, "score": s, "segmentation": encode_mask(m)}
                                   for img, c, s, m in dts])
        evaluator = COCOeval(coco_gt, coco_dt, "segm")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return dict(zip(VIS_STAT_NAMES, evaluator.stats))


def test_one_frame_videos_equal_coco_segm_ap_on_all_twelve_numbers():
    rng = np.random.default_rng(0)
    images = [(int(rng.integers(60, 240)), int(rng.integers(60, 240))) for _ in range(8)]
    gts, dts = [], []
    for img, (h, w) in enumerate(images, start=1):
        for _ in range(int(rng.integers(1, 5))):
            mask, category = random_blob(rng, h, w), int(rng.integers(1, 3))
            gts.append((img, category, mask, int(rng.random() < 0.15)))
            if rng.random() < 0.8:  # a noisy detection of it, sometimes of the wrong class
                noisy = mask ^ (rng.random((h, w)) < rng.uniform(0.0, 0.3)) & random_blob(rng, h, w)
                dts.append((img, category if rng.random() < 0.85 else 3 - category, float(rng.random()), noisy))
        for _ in range(int(rng.integers(0, 3))):  # false positives
            dts.append((img, int(rng.integers(1, 3)), float(rng.random()), random_blob(rng, h, w)))
    reference = coco_segm_stats(images, gts, dts)
    gt = vis_gt([(h, w, 1) for h, w in images], [(img, c, [m], crowd) for img, c, m, crowd in gts])
    ours = ytvis_stats(gt, [result(img, c, s, [m]) for img, c, s, m in dts], area_bounds=(32, 96))
    assert 0.05 < reference["AP"] < 0.95 and all(reference[k] > -1 for k in ("AP_S", "AP_M", "AP_L"))  # non-trivial
    for name in VIS_STAT_NAMES:
        expected = reference[name] if reference[name] > -1 else math.nan
        assert ours[name] == pytest.approx(expected, abs=1e-12, nan_ok=True), name


def test_video_iou_is_summed_over_frames_not_averaged():
    h = w = 10
    g = box_mask(h, w, 0, 0, 2, 2)  # 4 px in both frames
    bigger = box_mask(h, w, 0, 0, 2, 4)  # 8 px holding g: per-frame IoU 0.5
    gt = vis_gt([(h, w, 2)], [(1, 1, [g, g], 0)])
    # per-frame IoUs 1.0 and 0.5 average 0.75; the video IoU is (4 + 4) / (4 + 8) = 2/3
    stats = ytvis_stats(gt, [result(1, 1, 0.9, [g, bigger])])
    assert stats["AP50"] == pytest.approx(1.0)
    assert stats["AP75"] == pytest.approx(0.0)  # 2/3 < 0.75 (the frame mean would pass)
    assert stats["AP"] == pytest.approx(0.4)  # thresholds .50 .55 .60 .65 of ten


def test_a_frame_with_only_one_mask_adds_its_area_to_the_union():
    h = w = 10
    g = box_mask(h, w, 0, 0, 2, 2)
    gts = [{"rles": track([g, None]), "areas": np.array([4.0, 0.0]), "iscrowd": 0}]
    dts = [{"rles": track([g, g]), "areas": np.array([4.0, 4.0])},  # extra frame: 4 / (4 + 4)
           {"rles": track([None, g]), "areas": np.array([0.0, 4.0])}]  # never overlaps: 0
    assert video_iou_matrix(dts, gts) == pytest.approx(np.array([[0.5], [0.0]]))


def test_perfect_predictions_give_ap_one_and_swapped_tracks_do_not():
    h, w = 20, 20
    a = [box_mask(h, w, 0, 0, 6, 6), box_mask(h, w, 1, 0, 7, 6), box_mask(h, w, 2, 0, 8, 6)]
    b = [box_mask(h, w, 10, 10, 16, 16), box_mask(h, w, 10, 11, 16, 17), None]
    gt = vis_gt([(h, w, 3)], [(1, 1, a, 0), (1, 1, b, 0)])
    perfect = ytvis_stats(gt, [result(1, 1, 0.9, a), result(1, 1, 0.8, b)])
    assert perfect["AP"] == pytest.approx(1.0) and perfect["AR10"] == pytest.approx(1.0)
    # identities switched after frame 0: each predicted track covers a only 1 of 3 frames
    swapped = ytvis_stats(gt, [result(1, 1, 0.9, [a[0], b[1], None]), result(1, 1, 0.8, [b[0], a[1], a[2]])])
    assert swapped["AP50"] < 0.5
    assert ytvis_stats(gt, [])["AP"] == 0.0


def test_area_range_uses_the_mean_area_over_frames_where_the_track_exists():
    h = w = 256
    # areas 8100 and 36100 over the present frames: mean 22100 is medium (128² = 16384 .. 256²);
    # counting the absent frame as 0 would give 14733, small
    masks = [None, box_mask(h, w, 0, 0, 90, 90), box_mask(h, w, 0, 0, 190, 190)]
    gt = vis_gt([(h, w, 3)], [(1, 1, masks, 0)])
    stats = ytvis_stats(gt, [result(1, 1, 0.9, masks)])
    assert stats["AP_M"] == pytest.approx(1.0)
    assert math.isnan(stats["AP_S"]) and math.isnan(stats["AP_L"])
    large = [box_mask(h, w, 0, 0, 256, 256)] * 3  # 65536 = 256²: COCO's ranges are inclusive
    big = ytvis_stats(vis_gt([(h, w, 3)], [(1, 1, large, 0)]), [result(1, 1, 0.9, large)])
    assert big["AP_M"] == pytest.approx(1.0) and big["AP_L"] == pytest.approx(1.0)


def test_bad_input_is_a_one_line_error_naming_the_entry():
    h = w = 8
    g = box_mask(h, w, 0, 0, 2, 2)
    gt = vis_gt([(h, w, 2)], [(1, 1, [g, g], 0)])
    with pytest.raises(ValueError, match=r"results\[0\].*2 frames but segmentations has 1"):
        ytvis_stats(gt, [result(1, 1, 0.5, [g])])
    with pytest.raises(ValueError, match=r"results\[0\].segmentations\[1\].*mask size \[4, 4\]"):
        ytvis_stats(gt, [result(1, 1, 0.5, [g, np.zeros((4, 4), bool)])])
    with pytest.raises(ValueError, match="video id 7 is not in the ground truth"):
        ytvis_stats(gt, [result(7, 1, 0.5, [g, g])])


def test_uncompressed_rle_ground_truth_reads_as_the_official_files_store_it():
    from pycocotools import mask as mask_utils

    h = w = 8
    g = box_mask(h, w, 2, 1, 5, 6)
    flat = g.flatten(order="F")  # uncompressed RLE: run lengths, column-major, starting with zeros
    counts = ([0] if flat[0] else []) + [len(list(run)) for _, run in itertools.groupby(flat)]
    gt = vis_gt([(h, w, 1)], [(1, 1, [g], 0)])
    gt["annotations"][0]["segmentations"] = [{"size": [h, w], "counts": counts}]
    assert mask_utils.decode(mask_utils.frPyObjects(gt["annotations"][0]["segmentations"][0], h, w)).sum() == g.sum()
    assert ytvis_stats(gt, [result(1, 1, 0.9, [g])])["AP"] == pytest.approx(1.0)


def test_video_iou_matrix_equals_dense_sums_on_random_tracks():
    rng = np.random.default_rng(3)
    h, w, length = 30, 40, 5

    def random_track():
        return [random_blob(rng, h, w) if rng.random() < 0.7 else None for _ in range(length)]

    def entry(masks, crowd=0):
        areas = np.array([0.0 if m is None else float(m.sum()) for m in masks])
        return {"rles": track(masks), "areas": areas, "iscrowd": crowd}

    dts, gts = [random_track() for _ in range(4)], [random_track() for _ in range(3)]
    empty = np.zeros((h, w), bool)
    expected = np.zeros((4, 3))
    for i, d in enumerate(dts):
        for j, g in enumerate(gts):
            dd = [empty if m is None else m for m in d]
            gg = [empty if m is None else m for m in g]
            inter = sum((a & b).sum() for a, b in zip(dd, gg))
            union = sum((a | b).sum() for a, b in zip(dd, gg))
            expected[i, j] = inter / union if union else 0.0
    ours = video_iou_matrix([entry(d) for d in dts], [entry(g) for g in gts])
    assert ours == pytest.approx(expected, abs=1e-12)
    assert (expected > 0).sum() >= 4  # overlaps happen
    crowd = video_iou_matrix([entry(d) for d in dts], [entry(gts[0], crowd=1)])[:, 0]
    d_area = np.array([sum(m.sum() for m in d if m is not None) for d in dts])
    inter0 = np.array([sum((a & b).sum() for a, b in zip(d, gts[0]) if a is not None and b is not None)
                       for d in dts])  # crowd: intersection over the detection's summed area
    assert crowd == pytest.approx(inter0 / d_area, abs=1e-12)

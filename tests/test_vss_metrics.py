"""mIoU with an ignore index and ETC-style temporal consistency on hand-made flows."""
import math

import pytest
import torch

from stpn.vss.metrics import TemporalConsistency, confusion_matrix, iou_from_confusion, mean_iou, warp_labels


def test_confusion_skips_ignored_pixels_and_gives_the_hand_computed_miou():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 255]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 2]])
    confusion = confusion_matrix(pred, target, 3)
    assert int(confusion.sum()) == 6
    iou = iou_from_confusion(confusion)
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 1, fn 1 -> 1/2
    assert torch.allclose(iou, torch.tensor([1 / 3, 2 / 3, 1 / 2], dtype=torch.float64))
    assert mean_iou(confusion) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)


def test_absent_classes_do_not_count():
    target = torch.zeros(3, 3, dtype=torch.long)
    assert mean_iou(confusion_matrix(target.clone(), target, 5)) == 1.0
    assert math.isnan(float(iou_from_confusion(confusion_matrix(target, target, 5))[3]))


def _scene(shift_x: int, shift_y: int) -> torch.Tensor:
    labels = torch.zeros(16, 16, dtype=torch.long)
    labels[4 + shift_y:9 + shift_y, 3 + shift_x:8 + shift_x] = 1
    labels[10 + shift_y:13 + shift_y, 9 + shift_x:12 + shift_x] = 2
    return labels


def test_warp_follows_a_pure_translation():
    now, later = _scene(0, 0), _scene(2, 1)
    flow = torch.zeros(2, 16, 16)
    flow[0], flow[1] = 2.0, 1.0
    warped = warp_labels(later, flow)
    inside = warped != 255
    assert torch.equal(warped[inside], now[inside])
    assert not inside[:, 14:].any() and not inside[15:].any() and inside[:15, :14].all()


def test_translation_of_a_consistent_prediction_gives_tc_one():
    tc = TemporalConsistency(3)
    flow = torch.zeros(2, 16, 16)
    flow[0], flow[1] = 2.0, 1.0
    tc.update(_scene(0, 0), _scene(2, 1), flow)
    tc.update(_scene(2, 1), _scene(4, 2), flow)
    assert tc.compute() == pytest.approx(1.0)


def test_a_changed_prediction_or_a_wrong_flow_gives_less_than_one():
    flow = torch.zeros(2, 16, 16)
    flow[0], flow[1] = 2.0, 1.0
    changed = _scene(2, 1)
    changed[changed == 2] = 1  # the small object switches class
    tc = TemporalConsistency(3)
    tc.update(_scene(0, 0), changed, flow)
    assert tc.compute() < 0.9
    still = TemporalConsistency(3)
    still.update(_scene(0, 0), _scene(2, 1), torch.zeros(2, 16, 16))
    assert still.compute() < 1.0


def test_valid_mask_and_bad_flow_shape():
    tc = TemporalConsistency(3)
    labels = _scene(0, 0)
    tc.update(labels, labels, torch.zeros(2, 16, 16), valid=torch.zeros(16, 16, dtype=torch.bool))
    assert math.isnan(tc.compute())
    with pytest.raises(ValueError, match="flow must be"):
        warp_labels(labels, torch.zeros(2, 8, 8))

import pytest
import torch

from stpn.tracking.crops import (
    check_box,
    clip_box_xywh,
    crop_images,
    crop_window,
    jitter_box,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_crop_window_round_trip_and_centre():
    box = torch.tensor([30.0, 40.0, 20.0, 10.0])
    window = crop_window(box.tolist(), factor=4.0, out_size=64)
    assert window.side == pytest.approx((20 * 10) ** 0.5 * 4)
    in_crop = window.to_crop(xywh_to_xyxy(box))
    centre = (in_crop[:2] + in_crop[2:]) / 2
    assert torch.allclose(centre, torch.tensor([0.5, 0.5]))
    assert torch.allclose(window.to_image(in_crop), xywh_to_xyxy(box))
    assert torch.allclose(xyxy_to_xywh(xywh_to_xyxy(box)), box)


def test_crop_images_reads_the_right_pixels_and_zero_outside():
    image = torch.zeros(1, 1, 40, 40)
    image[0, 0, 10:20, 10:20] = 1.0  # a white square
    window = crop_window([10, 10, 10, 10], factor=2.0, out_size=20)  # side 20 -> 1 px per output px
    crop = crop_images(image, [window])[0, 0]
    assert crop.shape == (20, 20)
    assert crop[6:14, 6:14].min() == pytest.approx(1.0)  # edges blend (2x2 samples per pixel)
    assert crop[:4].abs().sum() == 0
    outside = crop_window([0, 0, 4, 4], factor=4.0, out_size=16)  # the image starts at crop pixel 6
    corner = crop_images(torch.ones(1, 1, 40, 40), [outside])[0, 0]
    assert corner[:5, :5].abs().max() < 1e-6 and corner[-4:, -4:].min() == pytest.approx(1.0)


def test_crop_images_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="B windows"):
        crop_images(torch.zeros(2, 3, 8, 8), [crop_window([1, 1, 2, 2], 2.0, 4)])


def test_jitter_is_seeded_and_zero_jitter_is_identity():
    box = torch.tensor([50.0, 60.0, 30.0, 20.0])
    assert torch.allclose(jitter_box(box, 0.0, 0.0), box)
    a = jitter_box(box, 4.5, 0.5, torch.Generator().manual_seed(3))
    b = jitter_box(box, 4.5, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.allclose(a, box)


def test_check_box_messages():
    check_box([1, 1, 5, 5], 10, 10)
    with pytest.raises(ValueError, match="zero or negative size"):
        check_box([1, 1, 0, 5], 10, 10)
    with pytest.raises(ValueError, match="outside"):
        check_box([20, 1, 5, 5], 10, 10)
    with pytest.raises(ValueError, match="four finite"):
        check_box([1, 2, 3], 10, 10)


def test_clip_box_keeps_inside_and_min_size():
    clipped = clip_box_xywh(torch.tensor([-5.0, 8.0, 20.0, 10.0]), height=12, width=10)
    x, y, w, h = clipped.tolist()
    assert x == 0 and y == 8 and w == 10 and h == 4
    tiny = clip_box_xywh(torch.tensor([50.0, 50.0, 3.0, 3.0]), height=12, width=10).tolist()
    assert tiny[2] >= 1 and tiny[3] >= 1 and tiny[0] + tiny[2] <= 10

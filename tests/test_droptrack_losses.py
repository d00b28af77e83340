import pytest
import torch

from stpn.droptrack.losses import droptrack_losses, focal_loss, gaussian_heatmap


def test_heatmap_peaks_at_the_centre_cell():
    heat = gaussian_heatmap(torch.tensor([[0.5, 0.0, 0.75, 0.5]]), 8)  # centre x 0.625, y 0.25
    assert heat.shape == (1, 8, 8)
    assert heat[0, 2, 5] == 1.0 and (heat == 1.0).sum() == 1
    assert heat[0, 2, 4] > heat[0, 2, 3] > heat[0, 5, 5] > 0  # falls off away from the peak


def test_heatmap_width_follows_the_box():
    narrow = gaussian_heatmap(torch.tensor([[0.45, 0.45, 0.55, 0.55]]), 16)
    wide = gaussian_heatmap(torch.tensor([[0.1, 0.1, 0.9, 0.9]]), 16)
    assert wide[0, 8, 11] > narrow[0, 8, 11]


def test_focal_loss_prefers_the_right_peak():
    heat = gaussian_heatmap(torch.tensor([[0.2, 0.2, 0.4, 0.4]]), 8)
    right = torch.full((1, 1, 8, 8), -4.0)
    right[0, 0, 2, 2] = 4.0
    wrong = torch.full((1, 1, 8, 8), -4.0)
    wrong[0, 0, 6, 6] = 4.0
    assert focal_loss(right, heat) < focal_loss(wrong, heat) / 10


def test_focal_loss_is_zero_weight_for_negatives():
    heat = gaussian_heatmap(torch.tensor([[0.2, 0.2, 0.4, 0.4], [0.2, 0.2, 0.4, 0.4]]), 8)
    logits = torch.randn(2, 1, 8, 8)
    alone = focal_loss(logits[:1], heat[:1])
    assert focal_loss(logits, heat, torch.tensor([1.0, 0.0])).item() == pytest.approx(alone.item(), rel=1e-6)


def test_weights_and_gradients():
    logits = torch.zeros(1, 1, 8, 8, requires_grad=True)
    boxes = torch.tensor([[0.1, 0.1, 0.3, 0.3]], requires_grad=True)
    target = torch.tensor([[0.2, 0.2, 0.4, 0.4]])
    base = droptrack_losses(logits, boxes, target)
    double = droptrack_losses(logits, boxes, target, focal_weight=2.0, giou_weight=4.0, l1_weight=10.0)
    assert set(base) == {"loss_focal", "loss_giou", "loss_l1"}
    for key in base:
        assert double[key].item() == pytest.approx(2 * base[key].item(), rel=1e-6)
    assert base["loss_l1"].item() == pytest.approx(5 * 0.1, rel=1e-5)
    sum(base.values()).backward()
    assert logits.grad.abs().sum() > 0 and boxes.grad.abs().sum() > 0

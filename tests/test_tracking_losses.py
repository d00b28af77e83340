import pytest
import torch

from stpn.tracking.heads import boxes_from_corner_logits
from stpn.tracking.losses import corner_map_loss, corner_target
from stpn.tracking.objective import TrackerObjective
from tests.test_tracking_train import fixed_batch, tracker


def test_corner_target_is_a_distribution_whose_mean_is_the_clipped_coordinate():
    size = 8
    coords = torch.tensor([0.0, 0.3, 0.4375, 0.8, 0.95, 1.2, -0.1])
    target = corner_target(coords, size)
    assert torch.allclose(target.sum(1), torch.ones(len(coords)))
    assert (target >= 0).all() and ((target > 0).sum(1) <= 2).all()
    cells = torch.arange(size) / size
    expected = coords.clamp(0, (size - 1) / size)
    assert torch.allclose((target * cells).sum(1), expected, atol=1e-6)


def test_corner_map_loss_is_smallest_for_maps_peaked_at_the_target_and_soft_argmax_reads_them_back():
    size, batch = 8, 3
    target = torch.tensor([[0.1, 0.2, 0.5, 0.6], [0.25, 0.25, 0.75, 0.5], [0.0, 0.375, 0.3, 0.8]])
    flat = (torch.zeros(batch, 1, size, size), torch.zeros(batch, 1, size, size))
    peaked = []
    for k in range(2):  # log of the target distribution (+ a floor) as logits
        wanted = corner_target(target[:, 2 * k + 1], size)[:, :, None] * corner_target(target[:, 2 * k], size)[:, None]
        peaked.append((wanted + 1e-6).log()[:, None])
    assert corner_map_loss(tuple(peaked), target)["loss_corner"] < 0.5 * corner_map_loss(flat, target)["loss_corner"]
    assert torch.allclose(boxes_from_corner_logits(*peaked), target.clamp(0, (size - 1) / size), atol=1e-3)


def test_corner_map_loss_ignores_zero_weight_samples_and_checks_shapes():
    logits = (torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4))
    target = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.2, 0.3, 0.6, 0.7]])
    alone = corner_map_loss((logits[0][:1], logits[1][:1]), target[:1])["loss_corner"]
    masked = corner_map_loss(logits, target, weight=torch.tensor([1.0, 0.0]))["loss_corner"]
    assert torch.allclose(alone, masked)
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        corner_map_loss(logits, target[:, :2])


def test_objective_adds_the_corner_term_only_when_weighted_and_it_trains_the_corner_head():
    batch = fixed_batch()
    assert "loss_corner" not in TrackerObjective(tracker(), "box")(batch)
    model = tracker()
    losses = TrackerObjective(model, "box", corner_weight=0.5)(batch)
    assert set(losses) == {"loss_giou", "loss_l1", "loss_corner"}
    losses["loss_corner"].backward()
    assert model.box_head.top_left[-1].weight.grad.abs().sum() > 0
    assert model.box_head.bottom_right[-1].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="loss weights"):
        TrackerObjective(tracker(), "box", corner_weight=-1.0)

"""PSPNet18 + STT: shapes, the 407 keys, windows gather the right positions, gradients, selection."""
import pytest
import torch

from stpn.vss.key_windows import gather_windows, key_count, window_half_sizes
from stpn.vss.model import build_segmenter
from stpn.vss.query_selection import boundary_queries, boundary_scores, query_count, random_queries
from stpn.vss.stt import SparseTemporalTransformer


def test_window_sides_and_key_count():
    halves = window_half_sizes()
    assert [2 * a + 1 for a in halves] == [3, 5, 7, 9, 9, 9, 9]
    assert key_count(halves) == 407
    assert SparseTemporalTransformer(8, dim=8, heads=2).num_keys == 407


def test_windows_gather_the_right_positions():
    height, width = 5, 6
    # channel 0 = row, channel 1 = column, so every gathered vector says where it came from
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    features = torch.stack([rows, cols]).float()[None] + 1  # +1: zeros mark padding
    positions = torch.tensor([[0, 2 * width + 3]])  # (0, 0) and (2, 3)
    keys, valid = gather_windows(features, positions, half=1)
    assert keys.shape == (1, 2, 9, 2) and valid.shape == (1, 2, 9)
    centre = keys[0, 1].reshape(3, 3, 2) - 1
    assert torch.equal(centre[..., 0], torch.tensor([[1., 1, 1], [2, 2, 2], [3, 3, 3]]))
    assert torch.equal(centre[..., 1], torch.tensor([[2., 3, 4], [2, 3, 4], [2, 3, 4]]))
    assert valid[0, 1].all()
    corner_valid = valid[0, 0].reshape(3, 3)
    assert torch.equal(corner_valid, torch.tensor([[False, False, False], [False, True, True], [False, True, True]]))
    assert (keys[0, 0][~valid[0, 0]] == 0).all()
    assert torch.equal(keys[0, 0].reshape(3, 3, 2)[1, 1], torch.tensor([1., 1.]))


def test_boundary_scores_mark_the_semantic_boundary():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[:, :, 4:] = 1
    scores = boundary_scores(labels, 2, ratio=5)
    assert (scores[0, :, :2] == 0).all() and (scores[0, :, 6:] == 0).all()  # more than 2 columns away
    assert (scores[0, :, 2:6] > 0).all()
    logits = torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float() * 5
    chosen = boundary_queries(logits, count=16)
    assert chosen.shape == (1, 16)
    assert set((chosen[0] % 8).tolist()) <= {2, 3, 4, 5}


def test_random_selection_has_the_same_count_and_distinct_positions():
    count = query_count(8, 8, 0.25)
    assert count == 16
    chosen = random_queries(3, 8, 8, count, torch.device("cpu"))
    assert chosen.shape == (3, 16)
    assert all(len(set(row.tolist())) == 16 for row in chosen)
    with pytest.raises(ValueError, match="fraction"):
        query_count(8, 8, 0.0)


@pytest.mark.parametrize("temporal", [False, True])
def test_segmenter_shapes_and_losses(temporal):
    torch.manual_seed(0)
    model = build_segmenter(4, temporal=temporal, dim=16, heads=2)
    clips = torch.randn(2, 3, 3, 48, 48)
    out = model.segment(clips[:, -1], model.key_features(clips))
    assert out["logits"].shape == (2, 4, 6, 6) and out["aux"].shape == (2, 4, 6, 6)
    assert out["features"].shape == (2, 512, 6, 6)
    assert ("queries" in out) == temporal
    if temporal:
        assert out["queries"].shape == (2, query_count(6, 6))
    losses = model(clips, torch.randint(0, 4, (2, 48, 48)))
    assert set(losses) == {"seg", "aux"} and all(torch.isfinite(v) for v in losses.values())


def test_gradient_flows_through_the_stt():
    torch.manual_seed(0)
    stt = SparseTemporalTransformer(8, dim=8, heads=2, num_key_frames=3)
    torch.nn.init.normal_(stt.out.weight)  # the zero init would stop gradients before the attention
    features = torch.randn(1, 8, 6, 6, requires_grad=True)
    keys = [torch.randn(1, 8, 6, 6, requires_grad=True) for _ in range(3)]
    positions = torch.tensor([[0, 14, 35]])
    out = stt(features, keys, positions)
    changed = (out - features).abs().sum(1).flatten()
    assert set(changed.nonzero().flatten().tolist()) == {0, 14, 35}  # only the queries change
    out.sum().backward()
    assert stt.query_proj.weight.grad.abs().sum() > 0 and stt.key_proj.weight.grad.abs().sum() > 0
    assert all(k.grad.abs().sum() > 0 for k in keys)


def test_zero_initialised_stt_leaves_features_unchanged():
    stt = SparseTemporalTransformer(8, dim=8, heads=2)
    features = torch.randn(1, 8, 5, 5)
    assert torch.equal(stt(features, [torch.randn(1, 8, 5, 5)], torch.tensor([[3, 7]])), features)

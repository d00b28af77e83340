"""RAFT flow from a local weights file: shapes, padding round trip, TC accepts it, errors."""
import numpy as np
import pytest
import torch

from stpn.vss.metrics import TemporalConsistency
from stpn.vss.raft_flow import RaftFlow, build_raft, pad_to_multiple, to_raft_input


@pytest.fixture(scope="module")
def raft_weights(tmp_path_factory):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_small_random.pth"
    torch.save(raft_small(weights=None, progress=False).state_dict(), path)
    return path


def test_padding_round_trips_sizes_not_divisible_by_8():
    images = torch.randn(2, 3, 66, 70)
    padded, size = pad_to_multiple(images)
    assert padded.shape == (2, 3, 72, 72) and size == (66, 70)
    assert torch.equal(padded[..., :66, :70], images) and torch.equal(padded[..., 71, :70], images[..., 65, :])
    assert pad_to_multiple(torch.zeros(1, 3, 64, 64))[0].shape == (1, 3, 64, 64)
    scaled = to_raft_input(np.array([[[0, 255, 127]]], np.uint8))
    assert scaled.shape == (1, 3, 1, 1) and scaled.min() == -1 and scaled.max() == 1


@pytest.mark.parametrize("height, width", [(130, 134), (66, 70)])  # padded only; upsampled x2 then padded
def test_flow_has_the_frame_shape_and_tc_accepts_it(raft_weights, height, width):
    flow_fn = RaftFlow(raft_weights, "raft_small", iterations=2)
    rng = np.random.default_rng(0)
    frame_t = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    frame_next = np.roll(frame_t, 2, axis=1)
    flow = flow_fn(frame_t, frame_next)
    assert flow.shape == (2, height, width) and flow.dtype == torch.float32 and torch.isfinite(flow).all()
    tc = TemporalConsistency(3)
    labels = torch.from_numpy(rng.integers(0, 3, (height, width)))
    tc.update(labels, labels, flow)
    assert 0 <= tc.compute() <= 1


def test_missing_or_wrong_weights_are_clear_errors(tmp_path, raft_weights):
    with pytest.raises(FileNotFoundError, match="nothing.pth"):
        build_raft("raft_small", tmp_path / "nothing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="junk.pth"):
        build_raft("raft_small", junk)
    with pytest.raises(ValueError, match="raft_small_random.pth: not raft_large weights"):
        build_raft("raft_large", raft_weights)
    with pytest.raises(ValueError, match="raft_huge"):
        build_raft("raft_huge", raft_weights)


def test_a_flow_function_replaces_the_benchmark_flow():
    from stpn.vss.evaluate import evaluate_videos
    from stpn.vss.model import build_segmenter
    from stpn.vss.synthetic import segmentation_videos

    videos = segmentation_videos(1, 3, 48, seed=0)
    model = build_segmenter(num_classes=4, temporal=False)
    pairs = []

    def zero_flow(frame_t, frame_next):
        pairs.append((frame_t.shape, frame_next.shape))
        return torch.zeros(2, *frame_t.shape[:2])

    exact = evaluate_videos(model, videos)
    other = evaluate_videos(model, videos, flow=zero_flow)
    assert pairs == [((48, 48, 3), (48, 48, 3))] * 2
    assert 0 <= other["tc"] <= 1 and np.isnan(other["tc_visible"]) and not np.isnan(exact["tc_visible"])
    assert other["miou"] == exact["miou"]

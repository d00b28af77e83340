"""Frame pairs: gap, order, independent augmentation, and the data sources."""
import numpy as np
import pytest
import torch

from stpn.engine.data import SampleKey, SeededDataset
from stpn.pretraining.pairs import FramePairs, PairSettings, pick_pair
from stpn.pretraining.sources import FrameSequence, read_sources


def test_pairs_are_distinct_ordered_and_within_the_gap():
    torch.manual_seed(0)
    pairs = [pick_pair(200, 50) for _ in range(500)]
    assert all(a < b <= a + 50 for a, b in pairs)
    assert max(b - a for a, b in pairs) == 50
    assert pick_pair(1, 50) == (0, 0)


def _video(length=8, size=40):
    frames = [np.full((size, size, 3), 10 * t, np.uint8) for t in range(length)]
    frames = [f + np.arange(size, dtype=np.uint8)[None, :, None] for f in frames]  # a left-right ramp
    return FrameSequence("ramp", frames)


def test_samples_are_normalised_pairs_with_their_own_crops_and_repeat_per_seed():
    ds = SeededDataset(FramePairs([_video()], PairSettings(img_size=16, max_gap=3, samples_per_epoch=10)))
    assert len(ds) == 10
    a, b = ds[SampleKey(0, 123)], ds[SampleKey(0, 123)]
    assert a.shape == (2, 3, 16, 16) and a.dtype == torch.float32
    assert torch.equal(a, b)
    differ = sum(not torch.allclose(ds[SampleKey(0, s)][0] - ds[SampleKey(0, s)][0].mean(),
                                    ds[SampleKey(0, s)][1] - ds[SampleKey(0, s)][1].mean(), atol=1e-3)
                 for s in range(10))
    assert differ >= 8  # crops / flips drawn per frame, not shared


def test_builtin_source_and_errors(tmp_path):
    videos = read_sources("builtin:1")
    assert len(videos) == 1 and len(videos[0]) == 32 and videos[0].load([0])[0].shape == (128, 128, 3)
    with pytest.raises(ValueError, match="builtin:N"):
        read_sources("builtin:x")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        read_sources(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no GOT-10k sequences and no video files"):
        read_sources(str(tmp_path))


def test_folder_of_video_files(tmp_path):
    from stpn.data.video import VideoWriter

    (tmp_path / "class_a").mkdir()
    with VideoWriter(tmp_path / "class_a" / "clip.mp4", fps=10, size=(32, 32)) as writer:
        for t in range(6):
            writer.write(np.full((32, 32, 3), 40 * t, np.uint8))
    (video,) = read_sources(str(tmp_path))
    assert len(video) == 6
    first, last = video.load([0, 5])
    assert first.mean() < last.mean()


def test_got10k_root(tmp_path):
    from stpn.data.formats.got10k import write_got10k
    from stpn.data.synthetic import iter_videos, CATEGORIES

    write_got10k(iter_videos(1, num_frames=4, size=48), list(CATEGORIES), tmp_path, "train")
    videos = read_sources(str(tmp_path))
    assert videos and len(videos[0]) == 4 and videos[0].load([3])[0].shape == (48, 48, 3)

"""The built-in degraded-video benchmark: determinism, annotations, deteriorations, speeds."""
import numpy as np
import pytest

from stpn.data.synthetic import CATEGORIES, generate_dataset, generate_video, iter_videos
from stpn.data.types import DETERIORATIONS
from stpn.metrics.motion_speed import motion_ious, speed_group


@pytest.fixture(scope="module")
def videos():
    return list(iter_videos(12, num_frames=16, size=96, seed=3))


def test_deterministic_and_independent_of_count(videos):
    again = generate_video(5, num_frames=16, size=96, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again.frames, videos[5].frames))
    other = generate_video(5, num_frames=16, size=96, seed=4)
    assert not np.array_equal(other.frames[0], videos[5].frames[0])


def test_annotations_are_consistent(videos):
    for video in videos:
        assert len(video.frames) == len(video.annotations) == 16
        for frame, ann in zip(video.frames, video.annotations):
            assert frame.shape == (96, 96, 3) and frame.dtype == np.uint8
            ids = [i.track_id for i in ann.instances]
            assert len(ids) == len(set(ids))
            for inst in ann.instances:
                x1, y1, x2, y2 = inst.box
                assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
                ys, xs = np.nonzero(inst.mask)
                assert len(xs) and xs.min() >= x1 and xs.max() < x2 and ys.min() >= y1 and ys.max() < y2
                assert 0.1 <= inst.visible_fraction <= 1.0
                assert set(inst.deteriorations) <= set(DETERIORATIONS)
            assert set(ann.deteriorations) <= set(DETERIORATIONS)


def test_classes_and_speed_groups_all_present():
    data = generate_dataset(30, num_frames=24, size=96, seed=0)
    classes = {i.category_id for v in data.videos for a in v.annotations for i in a.instances}
    assert classes == set(range(len(CATEGORIES))) and len(CATEGORIES) >= 5
    groups = set()
    for video in data.videos:
        tracks = [{i.track_id: i.box for i in a.instances} for a in video.annotations]
        groups |= {speed_group(m) for frame in motion_ious(tracks) for m in frame.values()}
    assert groups == {"slow", "medium", "fast"}


def test_deteriorations_come_in_bursts(videos):
    kinds = set()
    for video in videos:
        hit = [bool(a.deteriorations or any(i.deteriorations for i in a.instances)) for a in video.annotations]
        kinds |= {d for a in video.annotations for d in a.deteriorations}
        kinds |= {d for a in video.annotations for i in a.instances for d in i.deteriorations}
        runs = [len(r) for r in "".join("x" if h else "." for h in hit).split(".") if r]
        assert runs and max(runs) >= 2  # consecutive frames, not isolated ones
    assert kinds == set(DETERIORATIONS)


def test_severity_zero_is_clean_and_severity_changes_pixels():
    clean = generate_video(1, num_frames=12, size=96, seed=7, severity=0.0)
    assert not any(a.deteriorations or any(i.deteriorations for i in a.instances) for a in clean.annotations)
    hard = generate_video(1, num_frames=12, size=96, seed=7, severity=1.0)
    assert any(not np.array_equal(a, b) for a, b in zip(clean.frames, hard.frames))


def test_bad_arguments():
    with pytest.raises(ValueError):
        generate_video(0, num_frames=0)
    with pytest.raises(ValueError):
        list(iter_videos(-1))

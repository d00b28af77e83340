"""The built-in degraded-video benchmark: determinism, annotation consistency, deterioration
bursts, severity, speed groups; small videos (96 px, 12–24 frames) so the file runs in seconds."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from stpn.data import synthetic
from stpn.data.synthetic_degrade import BURST_LENGTHS, FRAME_GAPS, FRAME_LEVEL, OBJECT_LEVEL, motion_blur
from stpn.data.synthetic_scene import BACKGROUND_CLIPS, FRAMES_PER_CLIP, background_images
from stpn.data.types import DETERIORATIONS, Video
from stpn.metrics.motion_speed import SPEED_GROUPS, motion_ious, speed_group

SMALL = dict(num_frames=12, size=96)


@pytest.fixture(scope="module")
def videos() -> list[Video]:
    return list(synthetic.iter_videos(12, num_frames=24, size=96, seed=11))


def _same(a: Video, b: Video) -> bool:
    if a.name != b.name or len(a) != len(b):
        return False
    for fa, fb, aa, ab in zip(a.frames, b.frames, a.annotations, b.annotations):
        if not np.array_equal(fa, fb) or aa.deteriorations != ab.deteriorations:
            return False
        for x, y in itertools.zip_longest(aa.instances, ab.instances):
            if x is None or y is None or (x.track_id, x.category_id, x.deteriorations) != \
                    (y.track_id, y.category_id, y.deteriorations):
                return False
            if not (np.array_equal(x.box, y.box) and np.array_equal(x.mask, y.mask)):
                return False
    return True


def test_deterministic_and_independent_of_the_number_of_videos():
    three = list(synthetic.iter_videos(3, seed=4, **SMALL))
    five = list(synthetic.iter_videos(5, seed=4, **SMALL))
    assert len(three) == 3 and len(five) == 5
    assert all(_same(a, b) for a, b in zip(three, five))
    assert _same(synthetic.generate_video(2, seed=4, **SMALL), three[2])
    other_seed = list(synthetic.iter_videos(3, seed=5, **SMALL))
    assert not any(np.array_equal(a.frames[0], b.frames[0]) for a in three for b in other_seed)
    assert len({v.name for v in three + other_seed}) == 6


def test_video_layout(videos):
    assert len(synthetic.CATEGORIES) >= 3 and len(set(synthetic.CATEGORIES)) == len(synthetic.CATEGORIES)
    for video in videos:
        assert (video.height, video.width, len(video), len(video.frames)) == (96, 96, 24, 24)
        assert all(f.shape == (96, 96, 3) and f.dtype == np.uint8 for f in video.frames)
    seen = {inst.category_id for v in videos for a in v.annotations for inst in a.instances}
    assert seen == set(range(len(synthetic.CATEGORIES)))
    tracks_per_video = [len({i.track_id for a in v.annotations for i in a.instances}) for v in videos]
    assert min(tracks_per_video) >= 2 and max(tracks_per_video) > 2


def test_annotations_are_consistent(videos):
    for video in videos:
        category_of = {}
        for annotation in video.annotations:
            assert set(annotation.deteriorations) <= set(FRAME_LEVEL)
            ids = [inst.track_id for inst in annotation.instances]
            assert len(ids) == len(set(ids)) and ids == sorted(ids)
            owned = np.zeros((96, 96), int)
            for inst in annotation.instances:
                assert category_of.setdefault(inst.track_id, inst.category_id) == inst.category_id
                assert inst.box.dtype == np.float32 and inst.box.shape == (4,)
                x1, y1, x2, y2 = inst.box
                assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 96
                assert inst.mask.shape == (96, 96) and inst.mask.dtype == bool and inst.mask.any()
                ys, xs = np.nonzero(inst.mask)
                assert xs.min() >= x1 and xs.max() < x2 and ys.min() >= y1 and ys.max() < y2  # mask inside box
                assert 0.05 <= inst.visible_fraction <= 1.0 or (inst.deteriorations and inst.visible_fraction > 0)
                if inst.visible_fraction == 1.0:  # nothing in front: the box is the mask's tight box
                    np.testing.assert_array_equal(inst.box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                assert set(inst.deteriorations) <= set(DETERIORATIONS)
                assert set(annotation.deteriorations) <= set(inst.deteriorations)  # frame-wide ones hit it too
                if "occlusion" in inst.deteriorations:
                    assert inst.visible_fraction < 1.0
                owned += inst.mask
            assert owned.max() <= 1  # visible masks never overlap (occlusion order)


def test_occlusion_between_objects_happens(videos):
    partly_hidden = [inst for v in videos for a in v.annotations for inst in a.instances
                     if inst.visible_fraction < 1.0 and "occlusion" not in inst.deteriorations]
    assert partly_hidden  # objects pass in front of each other, not only the occluders


def _runs(flags: list[bool]) -> list[tuple[int, int]]:
    """(start, stop) of the stretches of True."""
    runs, start = [], None
    for t, flag in enumerate(flags + [False]):
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            runs.append((start, t))
            start = None
    return runs


def test_deteriorations_come_in_bursts_of_consecutive_frames(videos):
    kinds_seen = set()
    occlusion_runs = []
    for video in videos:
        frame_level = _runs([bool(a.deteriorations) for a in video.annotations])
        for (start, stop), following in zip(frame_level, frame_level[1:] + [(len(video) + FRAME_GAPS[0], 0)]):
            assert BURST_LENGTHS[0] <= stop - start <= BURST_LENGTHS[1]
            assert len({video.annotations[t].deteriorations for t in range(start, stop)}) == 1  # one kind a burst
            assert following[0] - stop >= FRAME_GAPS[0]  # clean frames before the next burst
        track_ids = {i.track_id for a in video.annotations for i in a.instances}
        for track_id, kind in itertools.product(track_ids, OBJECT_LEVEL):
            flags = [any(i.track_id == track_id and kind in i.deteriorations for i in a.instances)
                     for a in video.annotations]
            runs = _runs(flags)
            if kind == "motion_blur":
                assert all(BURST_LENGTHS[0] <= stop - start <= BURST_LENGTHS[1] for start, stop in runs)
            else:
                occlusion_runs += runs
        kinds_seen |= {d for a in video.annotations for i in a.instances for d in i.deteriorations}
    assert kinds_seen == set(DETERIORATIONS)
    assert max(stop - start for start, stop in occlusion_runs) >= BURST_LENGTHS[0]


def test_degraded_frames_are_a_minority(videos):
    objects = [inst for v in videos for a in v.annotations for inst in a.instances]
    degraded = sum(bool(inst.deteriorations) for inst in objects) / len(objects)
    assert 0.15 < degraded < 0.6


def test_severity_zero_is_the_same_video_without_deteriorations():
    clean = list(synthetic.iter_videos(3, seed=2, severity=0.0, **SMALL))
    default = list(synthetic.iter_videos(3, seed=2, **SMALL))
    assert not any(a.deteriorations or any(i.deteriorations for i in a.instances)
                   for v in clean for a in v.annotations)
    untouched = 0
    for c, d in zip(clean, default):
        for t, annotation in enumerate(d.annotations):
            hit = bool(annotation.deteriorations) or any(i.deteriorations for i in annotation.instances)
            assert np.array_equal(c.frames[t], d.frames[t]) != hit
            untouched += not hit
            boxes = {i.track_id: i.box for i in c.annotations[t].instances}
            for inst in annotation.instances:  # amodal boxes do not depend on deteriorations
                np.testing.assert_array_equal(inst.box, boxes[inst.track_id])
    assert untouched > 0


def test_severity_scales_the_damage():
    damage = {}
    clean = list(synthetic.iter_videos(4, seed=8, severity=0.0, **SMALL))
    for severity in (0.5, 1.0, 1.5):
        total = 0.0
        for c, d in zip(clean, synthetic.iter_videos(4, seed=8, severity=severity, **SMALL)):
            total += sum(np.abs(a.astype(np.int16) - b).mean() for a, b in zip(c.frames, d.frames))
        damage[severity] = total
    assert 0 < damage[0.5] < damage[1.0] < damage[1.5]


def test_all_speed_groups_are_represented(videos):
    groups = []
    for video in videos:
        tracks = [{inst.track_id: inst.box for inst in a.instances} for a in video.annotations]
        groups += [speed_group(m) for frame in motion_ious(tracks) for m in frame.values()]
    shares = {g: groups.count(g) / len(groups) for g in SPEED_GROUPS}
    assert all(share > 0.1 for share in shares.values()), shares


def test_generate_dataset(capsys):
    dataset = synthetic.generate_dataset(2, num_frames=3, size=64, seed=1, progress=True)
    assert dataset.categories == list(synthetic.CATEGORIES) and len(dataset.videos) == 2
    assert "2/2" in capsys.readouterr().err
    assert synthetic.SEVERITY_DEFAULT == 1.0
    single = synthetic.generate_dataset(1, 1, 48)
    assert len(single.videos[0]) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_videos=-1), "num_videos"),
    (dict(num_videos=2, num_frames=0), "num_frames"),
    (dict(num_videos=2, size=16), "size"),
    (dict(num_videos=2, severity=-0.5), "severity"),
    (dict(num_videos=2, severity=float("nan")), "severity"),
    (dict(num_videos=2, seed=-3), "seed"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic.iter_videos(**kwargs)  # raised at the call, before any video is drawn


def test_backgrounds_are_real_images():
    images = background_images()
    assert len(images) == len(BACKGROUND_CLIPS) * FRAMES_PER_CLIP
    for image in images:
        pixels = np.asarray(image)
        assert min(image.size) == 320 and pixels.std() > 15


def test_motion_blur_smears_along_the_direction():
    rgb, alpha = np.zeros((21, 21, 3), np.float32), np.zeros((21, 21), np.float32)
    alpha[10, 10], rgb[10, 10] = 1.0, 200.0
    smeared_rgb, smeared = motion_blur(rgb, alpha, np.array([1.0, 0.0]), 8.0)
    assert smeared.sum() == pytest.approx(1.0)
    assert np.flatnonzero(smeared.any(axis=0)).tolist() == list(range(6, 15))  # 9 taps along x
    assert np.flatnonzero(smeared.any(axis=1)).tolist() == [10]  # nothing across
    diagonal = motion_blur(rgb, alpha, np.array([0.6, 0.8]), 10.0)[1]
    ys, xs = np.nonzero(diagonal)
    assert np.allclose((ys - 10) * 0.6, (xs - 10) * 0.8, atol=0.6)
    np.testing.assert_allclose(smeared_rgb[..., 0], smeared * 200.0)


def test_single_class_gives_every_object_the_first_objects_class():
    mixed = list(synthetic.iter_videos(6, seed=4, **SMALL))
    single = list(synthetic.iter_videos(6, seed=4, single_class=True, **SMALL))
    several = 0
    for m, s in zip(mixed, single):
        classes = {i.category_id for a in s.annotations for i in a.instances}
        assert len(classes) == 1
        first = {i.track_id: i.category_id for a in m.annotations for i in a.instances}
        several += len(set(first.values())) > 1
        if 1 in first:  # track 1 is the first object drawn
            assert classes == {first[1]}
        tracks = lambda video: {i.track_id for a in video.annotations for i in a.instances}  # noqa: E731
        assert len(tracks(s)) >= len(tracks(m)) - 1  # the same objects (one may hide below 5 % in another shape)
        assert [a.deteriorations for a in m.annotations] == [a.deteriorations for a in s.annotations]
    assert several > 0  # the default does mix classes


def test_only_the_texture_tells_the_class():
    from stpn.data.synthetic_objects import CLASS_TEXTURES, SHAPES, sample_appearance

    rng = np.random.default_rng(0)
    looks = [sample_appearance(rng, c) for c in range(len(CLASS_TEXTURES)) for _ in range(60)]
    for c, (_, texture) in enumerate(CLASS_TEXTURES):
        mine = [look for look in looks if look.category_id == c]
        assert {look.texture for look in mine} == {texture}
        assert {look.shape for look in mine} == set(SHAPES)  # every outline in every class
    assert len({texture for _, texture in CLASS_TEXTURES}) == len(CLASS_TEXTURES)

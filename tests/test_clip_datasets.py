"""ClipDataset, clip transforms (one draw per clip, boxes and masks follow) and video sharding."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stpn.data.clips import ClipDataset, VideoShardSampler, collate_clips, shard_by_video
from stpn.data.formats import read_cocovid, write_cocovid
from stpn.data.formats.geometry import mask_box
from stpn.data.transforms import ColorJitter, Compose, RandomHorizontalFlip, ResizeShortSide, build_clip_transform
from stpn.data.types import VideoDataset
from stpn.engine.data import SampleKey, SeededDataset
from stpn.prompts.sampling import per_video, sliding, train_bilateral
from tests.test_formats import CATEGORIES, make_still, make_videos

RED, BLUE = torch.tensor([250, 30, 30]) / 255, torch.tensor([30, 30, 250]) / 255


def _dataset(**kwargs) -> ClipDataset:
    return ClipDataset(VideoDataset(CATEGORIES, make_videos()), sliding(K=2, S=1), **kwargs)


def test_item_holds_key_support_and_targets():
    videos = make_videos()
    clips = ClipDataset(VideoDataset(CATEGORIES, videos), sliding(K=2, S=1))
    assert len(clips) == sum(len(v) for v in videos)
    item = clips[3]  # video 0, frame 3
    assert (item["video_index"], item["frame_index"]) == (0, 3)
    assert item["support_indices"].tolist() == sliding(K=2, S=1)(3, 5) == [2, 4]
    assert item["key"].shape == (3, 48, 64) and item["key"].dtype == torch.float32
    assert item["support"].shape == (2, 3, 48, 64)
    assert 0 <= item["key"].min() and item["key"].max() <= 1
    frame = lambda t: torch.from_numpy(videos[0].frames[t]).permute(2, 0, 1).float() / 255
    assert torch.equal(item["key"], frame(3))
    assert torch.equal(item["support"][0], frame(2)) and torch.equal(item["support"][1], frame(4))
    target, objects = item["target"], videos[0].annotations[3].instances
    assert torch.equal(target["boxes"], torch.tensor(np.stack([i.box for i in objects])))
    assert target["labels"].tolist() == [i.category_id + 1 for i in objects] and target["labels"].dtype == torch.int64
    assert target["track_ids"].tolist() == [3, 7]
    assert target["masks"].shape == (2, 48, 64) and target["masks"].dtype == torch.bool
    assert torch.equal(target["masks"][1], torch.from_numpy(objects[1].mask))
    assert target["deteriorations"] == [("motion_blur",), ()]
    assert clips[1]["target"]["frame_deteriorations"] == ("noise", "jpeg")
    assert clips[1]["target"]["visible_fractions"].tolist() == pytest.approx([1.0, 0.4])


def test_file_backed_dataset_loads_frames_lazily(tmp_path):
    write_cocovid(make_videos(), CATEGORIES, tmp_path)
    dataset = read_cocovid(tmp_path)
    item = ClipDataset(dataset, per_video(K=3))[6]
    assert item["support_indices"].tolist() == [0, 2, 3]  # 4-frame video, spread over it
    assert item["support"].shape == (3, 3, 48, 64)
    colour = item["key"][:, item["target"]["masks"][0]].mean(1)
    assert torch.allclose(colour, RED, atol=0.06)  # the frame matches its mask


def test_still_images_become_clips_of_copies():
    images = VideoDataset(CATEGORIES, [make_still("a"), make_still("b")])
    for sampler in (sliding(K=4, S=8), train_bilateral(9), per_video(K=3)):
        item = ClipDataset(images, sampler)[1]
        assert set(item["support_indices"].tolist()) == {0}
        assert all(torch.equal(s, item["key"]) for s in item["support"])


def test_key_frame_selection():
    videos = make_videos()
    videos[0].annotations[4].instances = []
    dataset = VideoDataset(CATEGORIES, videos)
    assert len(ClipDataset(dataset, sliding(2, 1), key_frames="annotated")) == 8
    clips = ClipDataset(dataset, sliding(2, 1), key_frames=[(1, 3), (0, 0)])
    assert [(c["video_index"], c["frame_index"]) for c in clips] == [(1, 3), (0, 0)]
    assert clips.video_indices == [1, 0]
    with pytest.raises(ValueError, match="outside the dataset"):
        ClipDataset(dataset, sliding(2, 1), key_frames=[(1, 4)])
    with pytest.raises(ValueError, match="key_frames"):
        ClipDataset(dataset, sliding(2, 1), key_frames="some")


def test_masks_only_when_the_dataset_has_them():
    videos = make_videos()
    for v in videos:
        for a in v.annotations:
            for i in a.instances:
                i.mask = None
    assert "masks" not in ClipDataset(VideoDataset(CATEGORIES, videos), sliding(2, 1))[0]["target"]
    with pytest.raises(ValueError, match="no mask"):
        ClipDataset(VideoDataset(CATEGORIES, videos), sliding(2, 1), with_masks=True)[0]


def test_random_support_is_reproducible_under_seeded_dataset():
    clips = SeededDataset(ClipDataset(VideoDataset(CATEGORIES, make_videos()), train_bilateral(4)))
    draws = lambda seed: [clips[SampleKey(2, seed)]["support_indices"].tolist() for _ in range(2)]
    assert draws(1)[0] == draws(1)[1]
    assert len({tuple(draws(s)[0]) for s in range(20)}) > 1


def test_collate_clips():
    clips = _dataset()
    batch = collate_clips([clips[0], clips[7]])
    assert len(batch["key"]) == len(batch["support"]) == len(batch["target"]) == 2
    assert batch["support_indices"].shape == (2, 2)
    assert batch["video_index"].tolist() == [0, 1] and batch["frame_index"].tolist() == [0, 2]
    with pytest.raises(ValueError, match="empty"):
        collate_clips([])


# --------------------------------------------------------------------------- transforms


def _clip(index: int = 3):
    item = _dataset()[index]
    return torch.cat([item["key"][None], item["support"]]), item["target"]


TRANSFORMS = {
    "flip": RandomHorizontalFlip(0.5),
    "resize": ResizeShortSide([24, 40, 64], max_size=80),
    "jitter": ColorJitter(0.4, 0.4, 0.4, 0.1),
    "train": build_clip_transform(True, train_sizes=(30, 60), max_size=100, color_jitter=0.3),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_one_draw_per_clip(name):
    """Transforming the clip equals transforming each frame alone with the same RNG state: so
    every frame got the same draw."""
    transform, (frames, target) = TRANSFORMS[name], _clip()
    outputs = set()
    for seed in range(8):
        torch.manual_seed(seed)
        out, _ = transform(frames, target)
        for k in range(len(frames)):
            torch.manual_seed(seed)
            alone, _ = transform(frames[k : k + 1], target)
            assert torch.allclose(out[k], alone[0], atol=1e-6), (seed, k)
        outputs.add(tuple(out.shape) + (round(float(out.sum()), 2),))
    assert len(outputs) > 1  # the transform is random at all


@pytest.mark.parametrize("name", TRANSFORMS)
def test_still_image_clip_stays_copies(name):
    item = ClipDataset(VideoDataset(CATEGORIES, [make_still()]), sliding(K=3, S=1))[0]
    frames = torch.cat([item["key"][None], item["support"]])
    for seed in range(4):
        torch.manual_seed(seed)
        out, _ = TRANSFORMS[name](frames, item["target"])
        assert all(torch.equal(out[0], out[k]) for k in range(1, len(out)))


def _check_objects_follow(frames, target):
    """Each object's mask covers its colour in the key frame and its box hugs the mask."""
    for mask, box, colour in zip(target["masks"], target["boxes"], (RED, BLUE)):
        assert mask.any()
        assert torch.allclose(frames[0][:, mask].mean(1), colour, atol=0.08)
        assert torch.allclose(torch.from_numpy(mask_box(mask.numpy())), box, atol=1.6)


def test_flip_moves_boxes_and_masks():
    frames, target = _clip()
    _check_objects_follow(frames, target)
    out, flipped = RandomHorizontalFlip(p=1.0)(frames, target)
    assert torch.equal(out, frames.flip(-1))
    assert torch.allclose(flipped["boxes"][:, [0, 2]], 64 - target["boxes"][:, [2, 0]])
    assert torch.allclose(flipped["boxes"][:, [1, 3]], target["boxes"][:, [1, 3]])
    _check_objects_follow(out, flipped)
    unchanged, same = RandomHorizontalFlip(p=0.0)(frames, target)
    assert unchanged is frames and same is target


def test_resize_scales_frames_boxes_and_masks():
    frames, target = _clip()
    out, resized = ResizeShortSide(96, max_size=1000)(frames, target)
    assert out.shape == (3, 3, 96, 128)
    assert torch.allclose(resized["boxes"], target["boxes"] * 2)
    assert resized["masks"].shape == (2, 96, 128)
    _check_objects_follow(out, resized)
    capped, _ = ResizeShortSide(96, max_size=100)(frames, target)
    assert capped.shape[-2:] == (75, 100)  # the long side limit wins


def test_transform_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(T, 3, H, W\)"):
        RandomHorizontalFlip(1.0)(torch.zeros(3, 8, 8), {"boxes": torch.zeros(0, 4)})
    with pytest.raises(ValueError, match="brightness"):
        ColorJitter(brightness=2.0)
    with pytest.raises(ValueError, match="positive"):
        ResizeShortSide([])


def test_transformed_clip_dataset_keeps_key_and_support_aligned():
    clips = ClipDataset(VideoDataset(CATEGORIES, [make_still()]), sliding(K=2, S=1),
                        transform=Compose([RandomHorizontalFlip(1.0), ResizeShortSide(24, 100)]))
    item = clips[0]
    assert item["key"].shape == (3, 24, 32) and item["support"].shape == (2, 3, 24, 32)
    assert torch.equal(item["support"][0], item["key"])
    _check_objects_follow(torch.cat([item["key"][None], item["support"]]), item["target"])


# --------------------------------------------------------------------------- sharding


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 60), st.integers(1, 9))
def test_shard_by_video_covers_every_video_once(num_videos, world_size):
    shards = [shard_by_video(num_videos, r, world_size) for r in range(world_size)]
    assert sorted(v for s in shards for v in s) == list(range(num_videos))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=0, max_size=25), st.integers(1, 6), st.randoms(use_true_random=False))
def test_video_shard_sampler_keeps_videos_whole(lengths, world_size, rnd):
    video_indices = [v for v, n in enumerate(lengths) for _ in range(n)]
    rnd.shuffle(video_indices)  # items need not be grouped by video
    per_rank = [list(VideoShardSampler(video_indices, r, world_size)) for r in range(world_size)]
    assert sorted(i for items in per_rank for i in items) == list(range(len(video_indices)))
    owners = {}
    for rank, items in enumerate(per_rank):
        assert items == sorted(items)  # dataset order (frame order within a video)
        for i in items:
            assert owners.setdefault(video_indices[i], rank) == rank  # a video never spans ranks
    assert len(VideoShardSampler(video_indices, 0, world_size)) == len(per_rank[0])


def test_video_shard_sampler_with_clip_dataset():
    clips = _dataset()
    halves = [list(VideoShardSampler(clips.video_indices, r, 2)) for r in range(2)]
    assert sorted(halves[0] + halves[1]) == list(range(len(clips)))
    assert {clips[i]["video_index"] for i in halves[0]}.isdisjoint({clips[i]["video_index"] for i in halves[1]})
    with pytest.raises(ValueError):
        shard_by_video(3, rank=2, world_size=2)

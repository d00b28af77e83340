"""PyTorch datasets of clips: a key frame, its support frames and the key frame's targets.

Support frames are chosen by a sampler from :mod:`stpn.prompts.sampling` (``train_bilateral``
for training, ``sliding`` / ``causal`` / ``per_video`` for evaluation). A still image (a one-frame
video, e.g. ImageNet DET) becomes a clip whose support frames are copies of itself, the
convention of the released code (docs/design.md §3.1). Clip augmentations: :mod:`stpn.data.transforms`.

Labels are ``category_id + 1``: torchvision's detection heads reserve 0 for the background (see
:mod:`stpn.detection.detector`), so label ``k`` means ``dataset.categories[k - 1]``.
"""
from __future__ import annotations

import random
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from stpn.data.transforms import ClipTransform
from stpn.data.types import FrameAnnotation, Video, VideoDataset, load_frame
from stpn.prompts.sampling import Sampler as SupportSampler

KeyFrames = Union[str, Sequence[tuple[int, int]]]


def frame_to_tensor(frame: np.ndarray) -> Tensor:
    """``(H, W, 3)`` uint8 → ``(3, H, W)`` float in [0, 1]."""
    return torch.from_numpy(np.require(frame, requirements=["C", "W"])).permute(2, 0, 1).float().div_(255)


def frame_target(annotation: FrameAnnotation, height: int, width: int, with_masks: bool) -> dict:
    """A frame's objects as tensors: ``boxes`` (M, 4) float32 xyxy, ``labels`` (M,) int64
    (1-based), ``track_ids`` (M,) int64, ``visible_fractions`` (M,) float32, ``masks`` (M, H, W)
    bool (when ``with_masks``), ``deteriorations`` (per object, tuples of names) and
    ``frame_deteriorations``."""
    instances = annotation.instances
    target: dict[str, Any] = {
        "boxes": torch.tensor(np.array([i.box for i in instances], np.float32).reshape(-1, 4)),
        "labels": torch.tensor([i.category_id + 1 for i in instances], dtype=torch.int64),
        "track_ids": torch.tensor([i.track_id for i in instances], dtype=torch.int64),
        "visible_fractions": torch.tensor([i.visible_fraction for i in instances], dtype=torch.float32),
        "deteriorations": [tuple(i.deteriorations) for i in instances],
        "frame_deteriorations": tuple(annotation.deteriorations),
    }
    if with_masks:
        if any(i.mask is None for i in instances):
            raise ValueError("with_masks=True but an object of the frame has no mask")
        masks = np.array([i.mask for i in instances], dtype=bool).reshape(-1, height, width)
        target["masks"] = torch.from_numpy(masks)
    return target


def select_key_frames(dataset: VideoDataset, key_frames: KeyFrames) -> list[tuple[int, int]]:
    """``(video index, frame index)`` of every key frame: ``"all"`` frames, ``"annotated"``
    frames (at least one object) or an explicit list, checked against ``dataset``."""
    videos = dataset.videos
    if key_frames == "all":
        return [(v, t) for v, video in enumerate(videos) for t in range(len(video))]
    if key_frames == "annotated":
        return [(v, t) for v, video in enumerate(videos) for t, a in enumerate(video.annotations) if a.instances]
    if isinstance(key_frames, str):
        raise ValueError(f"key_frames must be 'all', 'annotated' or a list of (video, frame), got {key_frames!r}")
    items = [(int(v), int(t)) for v, t in key_frames]
    for v, t in items:
        if not 0 <= v < len(videos) or not 0 <= t < len(videos[v]):
            raise ValueError(f"key frame ({v}, {t}) is outside the dataset")
    return items


class ClipDataset(Dataset):
    """Item ``i`` is a dict: ``key`` (3, H, W) and ``support`` (K, 3, H, W) float in [0, 1],
    ``support_indices`` (K,) int64, ``target`` (see :func:`frame_target`), ``video_index``,
    ``frame_index``.

    Args:
        dataset: the videos (frames as arrays or file paths, loaded per item).
        sampler: ``sampler(t, length, rng) -> support indices``. Random samplers draw from a
            ``random.Random`` seeded from the global ``random`` module, so
            :class:`stpn.engine.data.SeededDataset` makes them reproducible.
        transform: a clip transform applied to key and support frames together.
        key_frames: ``"all"`` frames, ``"annotated"`` frames (with at least one object; the usual
            training filter) or an explicit list of ``(video index, frame index)`` (e.g. from
            :func:`stpn.data.formats.vid.read_key_frames`).
        with_masks: put ``masks`` in the targets; ``None`` = if any object of the dataset has one.
    """

    def __init__(
        self, dataset: VideoDataset, sampler: SupportSampler, transform: Optional[ClipTransform] = None,
        key_frames: KeyFrames = "all", with_masks: Optional[bool] = None,
    ) -> None:
        self.dataset, self.sampler, self.transform = dataset, sampler, transform
        self.items = select_key_frames(dataset, key_frames)
        if with_masks is None:
            with_masks = any(i.mask is not None for v in dataset.videos for a in v.annotations for i in a.instances)
        self.with_masks = with_masks

    @property
    def video_indices(self) -> list[int]:
        """The video of every item (for :class:`VideoShardSampler`)."""
        return [v for v, _ in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        v, t = self.items[index]
        video = self.dataset.videos[v]
        rng = random.Random(random.getrandbits(64))
        support = [int(s) for s in self.sampler(t, len(video), rng=rng)]
        frames = load_clip(video, [t] + support)
        target = frame_target(video.annotations[t], video.height, video.width, self.with_masks)
        if self.transform is not None:
            frames, target = self.transform(frames, target)
        return {"key": frames[0], "support": frames[1:], "support_indices": torch.tensor(support, dtype=torch.int64),
                "target": target, "video_index": v, "frame_index": t}


def load_clip(video: Video, indices: Sequence[int]) -> Tensor:
    """Frames ``indices`` of ``video`` as ``(len(indices), 3, H, W)``; each distinct frame is
    loaded once (repeats are copies)."""
    cache: dict[int, Tensor] = {}
    for i in dict.fromkeys(indices):
        frame = load_frame(video.frames[i])
        if frame.shape != (video.height, video.width, 3):
            raise ValueError(
                f"video {video.name!r} frame {i} is {frame.shape}, expected ({video.height}, {video.width}, 3)"
            )
        cache[i] = frame_to_tensor(frame)
    return torch.stack([cache[i] for i in indices])


def collate_clips(batch: Sequence[dict]) -> dict:
    """Lists of ``key`` / ``support`` / ``target`` (frames may differ in size between clips;
    :func:`stpn.detection.clip_batch.make_clip_batch` pads them), and stacked ``support_indices``
    (B, K), ``video_index`` (B,), ``frame_index`` (B,)."""
    if not batch:
        raise ValueError("cannot collate an empty batch")
    ks = {len(item["support_indices"]) for item in batch}
    return {
        "key": [item["key"] for item in batch],
        "support": [item["support"] for item in batch],
        "support_indices": torch.stack([item["support_indices"] for item in batch]) if len(ks) == 1
        else [item["support_indices"] for item in batch],
        "target": [item["target"] for item in batch],
        "video_index": torch.tensor([item["video_index"] for item in batch], dtype=torch.int64),
        "frame_index": torch.tensor([item["frame_index"] for item in batch], dtype=torch.int64),
    }


def shard_by_video(num_videos: int, rank: int, world_size: int) -> list[int]:
    """The videos (ascending indices) that ``rank`` evaluates: whole videos, every video on
    exactly one rank, counts differing by at most one between ranks."""
    from stpn.engine.sharding import shard_indices

    if num_videos < 0:
        raise ValueError(f"num_videos must be >= 0, got {num_videos}")
    return shard_indices([1] * num_videos, rank, world_size)


class VideoShardSampler(Sampler[int]):
    """Evaluation sampler over a clip dataset: this rank's items, whole videos only, in dataset
    order (frames of a video stay in order, as streaming inference needs). Videos are balanced
    by item count (greedy, longest first); unlike ``DistributedSampler`` nothing is padded or
    repeated, so every item is evaluated exactly once across ranks.

    ``video_indices`` is the video of every item (``ClipDataset.video_indices``); rank and world
    size default to the running process group.
    """

    def __init__(
        self, video_indices: Sequence[int], rank: Optional[int] = None, world_size: Optional[int] = None
    ) -> None:
        from stpn.engine.distributed import get_rank, get_world_size
        from stpn.engine.sharding import shard_indices

        self.rank = get_rank() if rank is None else rank
        self.world_size = get_world_size() if world_size is None else world_size
        videos = sorted(set(video_indices))
        counts = [0] * len(videos)
        position = {v: k for k, v in enumerate(videos)}
        for v in video_indices:
            counts[position[v]] += 1
        mine = {videos[k] for k in shard_indices(counts, self.rank, self.world_size)}
        self.indices = [i for i, v in enumerate(video_indices) if v in mine]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

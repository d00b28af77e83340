"""Training clips from segmentation videos: the current frame, the frames before it, its labels.

Sample ``i`` is frame ``t`` of some video with ``t >= history`` (so every sample has a full set of
key frames, and the per-frame baseline trains on exactly the same current frames as STT); it
returns the clip ``(T, 3, H, W)`` (frames ``t - T + 1 .. t``, ImageNet-normalised floats) and the
labels ``(H, W)`` int64 of frame ``t``. Augmentation: a horizontal flip of the whole clip with
probability 0.5 (drawn from torch's global RNG, which the engine's SeededDataset seeds per
sample). The paper's 0.5–2.0 scale jitter is left out: at the benchmark's tiny resolutions it
would mostly shrink objects to a few feature positions.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from stpn.data.normalisation import normalise
from stpn.vss.synthetic import SegmentationVideo


def frames_to_tensor(frames: np.ndarray) -> Tensor:
    """uint8 ``(T, H, W, 3)`` → normalised float ``(T, 3, H, W)``."""
    return normalise(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0)


class SegmentationClips(Dataset):
    def __init__(self, videos: Sequence[SegmentationVideo], clip_length: int, history: int = 7,
                 flip: bool = True) -> None:
        if clip_length < 1 or clip_length > history + 1:
            raise ValueError(f"clip_length must be in 1 .. history + 1 = {history + 1}, got {clip_length}")
        self.videos = list(videos)
        self.clip_length = clip_length
        self.flip = flip
        self.samples = [(v, t) for v, video in enumerate(self.videos) for t in range(history, len(video.frames))]
        if not self.samples:
            raise ValueError(f"no video has more than {history} frames: nothing to train on")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        v, t = self.samples[index]
        video = self.videos[v]
        clip = frames_to_tensor(video.frames[t - self.clip_length + 1:t + 1])
        labels = torch.from_numpy(video.labels[t].astype(np.int64))
        if self.flip and float(torch.rand(())) < 0.5:
            clip, labels = clip.flip(-1), labels.flip(-1)
        return clip, labels

"""Single-object sequences for tracker training: frames, one box per frame, visibility.

GOT-10k sequences (:func:`stpn.data.formats.got10k.read_got10k`) hold one object; a video of the
built-in benchmark held in memory may hold several, so :func:`sequences_from_dataset` makes one
:class:`TrackSequence` per ``(video, track id)``, spanning the whole video.

A frame is *visible* when the object has a box of positive size and ``visible_fraction > 0``
(GOT-10k: not ``absence`` and ``cover > 0``), the frames MixFormer's sampler draws templates and
positive search regions from.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from stpn.data.types import FrameSource, VideoDataset


@dataclass
class TrackSequence:
    """``boxes (T, 4)`` float64 ``x, y, w, h`` in pixels (zeros where the object is absent),
    ``visible (T,)`` bool; ``frames[t]`` an RGB array or an image path."""

    name: str
    frames: Sequence[FrameSource]
    boxes: Tensor
    visible: Tensor

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def visible_indices(self) -> list[int]:
        return torch.nonzero(self.visible).flatten().tolist()

    def carried_box(self, t: int) -> Tensor:
        """The box the object last had at or before frame ``t`` (the first visible box before
        its first appearance): where a tracker would still be looking on an absent frame."""
        visible = self.visible_indices
        if not visible:
            raise ValueError(f"sequence {self.name!r} has no visible frame")
        earlier = [i for i in visible if i <= t]
        return self.boxes[earlier[-1] if earlier else visible[0]]


def sequences_from_dataset(dataset: VideoDataset, min_visible: int = 1) -> list[TrackSequence]:
    """One sequence per track of every video, in video order then track-id order; tracks with
    fewer than ``min_visible`` visible frames are left out."""
    sequences = []
    for video in dataset.videos:
        track_ids = sorted({inst.track_id for ann in video.annotations for inst in ann.instances})
        for track_id in track_ids:
            boxes = np.zeros((len(video), 4), np.float64)
            visible = np.zeros(len(video), bool)
            for t, ann in enumerate(video.annotations):
                inst = next((i for i in ann.instances if i.track_id == track_id), None)
                if inst is None:
                    continue
                x1, y1, x2, y2 = (float(v) for v in inst.box)
                boxes[t] = (x1, y1, x2 - x1, y2 - y1)
                visible[t] = x2 > x1 and y2 > y1 and inst.visible_fraction > 0
            if visible.sum() < min_visible:
                continue
            name = video.name if len(track_ids) == 1 else f"{video.name}_{track_id}"
            sequences.append(TrackSequence(name, video.frames, torch.from_numpy(boxes), torch.from_numpy(visible)))
    return sequences

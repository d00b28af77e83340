"""Training clips from recorded videos on disk (Cityscapes, CamVid: :mod:`stpn.data.formats`).

A :class:`~stpn.data.formats.cityscapes.LabelledSequence` holds frame paths and a label on some
frames. Sample ``i`` of :class:`RecordedClips` is the ``i``-th labelled frame ``t`` (over all
sequences): the clip ``(T, 3, crop, crop)`` of frames ``t - T + 1 .. t`` (ImageNet-normalised)
and the labels ``(crop, crop)`` int64 of frame ``t`` (255 = ignore). Where a sequence has fewer
than ``T - 1`` frames before ``t`` (CamVid without its sequence frames), the earliest frame is
repeated, so STT then sees copies of the current frame as its key frames.

Augmentation, one draw for the whole clip (torch's global RNG, which the engine seeds per
sample): scale by ``s ~ U(scale)`` (frames bilinear, labels nearest), one random ``crop × crop``
window of the scaled frames (where they are smaller, padded on the right / bottom: frames with
0 = the mean colour after normalisation, labels with 255), horizontal flip with probability 0.5.

:class:`WithUnlabelledFrames` is the dataset of the second training phase (``unlabelled_from``
in the data section, :mod:`stpn.vss.train`): same length, but each sample is, with probability
0.5, a clip ending on a frame *without* a label (drawn uniformly from all unlabelled frames), and
every sample carries a flag ``labelled`` (bool). What the model does with those frames is in
:mod:`stpn.vss.model` (confident pseudo-labels from its own prediction).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from stpn.data.formats.camvid import camvid_train_ids
from stpn.data.formats.cityscapes import LabelledSequence, cityscapes_train_ids
from stpn.data.normalisation import normalise
from stpn.vss.metrics import IGNORE_INDEX


def read_frame(path) -> np.ndarray:
    """RGB uint8 ``(H, W, 3)``."""
    from PIL import Image

    with Image.open(path) as image:
        return np.array(image.convert("RGB"))  # a writable copy


def read_labels(sequence: LabelledSequence, index: int) -> np.ndarray:
    """Train ids ``(H, W)`` uint8 (255 = ignore) of the labelled frame ``index``."""
    from PIL import Image

    path = sequence.labels[index]
    with Image.open(path) as image:
        raw = np.asarray(image)
    if raw.ndim != 2:
        raise ValueError(f"{path}: a label image must have one channel, got shape {raw.shape}")
    if sequence.label_format == "camvid":
        return camvid_train_ids(raw, path)
    return cityscapes_train_ids(raw)


def clip_indices(t: int, length: int) -> list[int]:
    """Frames ``t - length + 1 .. t``, the ones before 0 replaced by frame 0."""
    return [max(i, 0) for i in range(t - length + 1, t + 1)]


def augment(frames: np.ndarray, labels: Tensor, crop: int, scale: tuple[float, float],
            flip: bool) -> tuple[Tensor, Tensor]:
    """uint8 frames ``(T, H, W, 3)`` and labels ``(H, W)`` → normalised ``(T, 3, crop, crop)`` and
    ``(crop, crop)`` (module docstring). The crop window is drawn in the scaled image, but only
    the source region under it is resized (full 2048 × 1024 clips at scale 2 would not fit in
    memory); the region's placement is exact to a fraction of a pixel."""
    height, width = labels.shape
    factor = float(torch.empty(()).uniform_(scale[0], scale[1])) if scale[0] != scale[1] else float(scale[0])
    scaled_h, scaled_w = max(1, round(height * factor)), max(1, round(width * factor))
    top = int(torch.randint(max(scaled_h, crop) - crop + 1, ()))
    left = int(torch.randint(max(scaled_w, crop) - crop + 1, ()))
    y0, x0 = min(height - 1, math.floor(top / factor)), min(width - 1, math.floor(left / factor))
    y1, x1 = min(height, math.ceil((top + crop) / factor) + 1), min(width, math.ceil((left + crop) / factor) + 1)
    region = torch.from_numpy(np.ascontiguousarray(frames[:, y0:y1, x0:x1])).permute(0, 3, 1, 2).float() / 255.0
    region_labels = labels[y0:y1, x0:x1]
    size = (max(1, round((y1 - y0) * factor)), max(1, round((x1 - x0) * factor)))
    if size != tuple(region_labels.shape):
        region = F.interpolate(region, size=size, mode="bilinear", align_corners=False)
        region_labels = F.interpolate(region_labels[None, None].float(), size=size, mode="nearest")[0, 0].long()
    row, col = max(0, top - round(y0 * factor)), max(0, left - round(x0 * factor))
    clip = normalise(region[..., row:row + crop, col:col + crop])
    out_labels = region_labels[row:row + crop, col:col + crop]
    pad_h, pad_w = crop - out_labels.shape[0], crop - out_labels.shape[1]
    if pad_h or pad_w:
        clip = F.pad(clip, (0, pad_w, 0, pad_h), value=0.0)
        out_labels = F.pad(out_labels, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
    if flip and float(torch.rand(())) < 0.5:
        clip, out_labels = clip.flip(-1), out_labels.flip(-1)
    return clip.contiguous(), out_labels.contiguous()


class RecordedClips(Dataset):
    def __init__(self, sequences: Sequence[LabelledSequence], clip_length: int, crop: int,
                 scale: tuple[float, float] = (0.5, 2.0), flip: bool = True) -> None:
        if clip_length < 1:
            raise ValueError(f"clip_length must be at least 1, got {clip_length}")
        self.sequences = list(sequences)
        self.clip_length, self.crop, self.scale, self.flip = clip_length, crop, tuple(scale), flip
        self.samples = [(s, t) for s, seq in enumerate(self.sequences) for t in sorted(seq.labels)]
        self.unlabelled = [(s, t) for s, seq in enumerate(self.sequences)
                           for t in range(len(seq.frames)) if t not in seq.labels]
        if not self.samples:
            raise ValueError("no labelled frame in any sequence: nothing to train on")

    def __len__(self) -> int:
        return len(self.samples)

    def clip(self, s: int, t: int) -> tuple[np.ndarray, Tensor]:
        """Un-augmented uint8 frames ``(T, H, W, 3)`` ending on frame ``t`` of sequence ``s`` and
        its labels ``(H, W)`` int64 (all 255 for an unlabelled frame)."""
        sequence = self.sequences[s]
        frames = np.stack([read_frame(sequence.frames[i]) for i in clip_indices(t, self.clip_length)])
        if t in sequence.labels:
            labels = torch.from_numpy(read_labels(sequence, t).astype(np.int64))
        else:
            labels = torch.full(frames.shape[1:3], IGNORE_INDEX, dtype=torch.int64)
        return frames, labels

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return augment(*self.clip(*self.samples[index]), self.crop, self.scale, self.flip)


class WithUnlabelledFrames(Dataset):
    """``(clip, labels, labelled)``: sample ``i`` of ``clips`` or, with probability 0.5, a clip
    ending on a random unlabelled frame (labels all 255, ``labelled`` False)."""

    def __init__(self, clips: RecordedClips) -> None:
        if not clips.unlabelled:
            raise ValueError("the sequences have no unlabelled frames for the second training phase")
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        if float(torch.rand(())) < 0.5:
            return (*self.clips[index], torch.tensor(True))
        s, t = self.clips.unlabelled[int(torch.randint(len(self.clips.unlabelled), ()))]
        clip, labels = augment(*self.clips.clip(s, t), self.clips.crop, self.clips.scale, self.clips.flip)
        return clip, labels, torch.tensor(False)

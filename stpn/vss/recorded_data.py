"""Training clips from recorded videos on disk (Cityscapes, CamVid: :mod:`stpn.data.formats`).

A :class:`~stpn.data.formats.cityscapes.LabelledSequence` holds frame paths and a label on some
frames. Sample ``i`` of :class:`RecordedClips` is the ``i``-th labelled frame ``t`` (over all
sequences): the clip ``(T, 3, crop, crop)`` of frames ``t - T + 1 .. t`` (ImageNet-normalised)
and the labels ``(crop, crop)`` int64 of frame ``t`` (255 = ignore). Where a sequence has fewer
than ``T - 1`` frames before ``t`` (CamVid without its sequence frames), the earliest frame is
repeated, so STT then sees copies of the current frame as its key frames.

Augmentation, one draw for the whole clip (torch's global RNG, which the engine seeds per
sample): scale by ``s ~ U(scale)`` (frames bilinear, labels nearest), pad to at least
``crop × crop`` (frames with 0 = the mean colour after normalisation, labels with 255), one
random ``crop × crop`` window, horizontal flip with probability 0.5.

:class:`WithUnlabelledFrames` is the dataset of the second training phase (``unlabelled_from``
in the data section, :mod:`stpn.vss.train`): same length, but each sample is, with probability
0.5, a clip ending on a frame *without* a label (drawn uniformly from all unlabelled frames), and
every sample carries a flag ``labelled`` (bool). What the model does with those frames is in
:mod:`stpn.vss.model` (confident pseudo-labels from its own prediction).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from stpn.data.formats.camvid import camvid_train_ids
from stpn.data.formats.cityscapes import LabelledSequence, cityscapes_train_ids
from stpn.vss.data import frames_to_tensor
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


def augment(clip: Tensor, labels: Tensor, crop: int, scale: tuple[float, float], flip: bool) -> tuple[Tensor, Tensor]:
    """Clip ``(T, 3, H, W)`` and labels ``(H, W)`` → ``(T, 3, crop, crop)`` and ``(crop, crop)``
    (module docstring)."""
    height, width = labels.shape
    factor = float(torch.empty(()).uniform_(scale[0], scale[1])) if scale[0] != scale[1] else scale[0]
    size = (max(1, round(height * factor)), max(1, round(width * factor)))
    if size != (height, width):
        clip = F.interpolate(clip, size=size, mode="bilinear", align_corners=False)
        labels = F.interpolate(labels[None, None].float(), size=size, mode="nearest")[0, 0].long()
    pad_h, pad_w = max(crop - size[0], 0), max(crop - size[1], 0)
    if pad_h or pad_w:
        clip = F.pad(clip, (0, pad_w, 0, pad_h), value=0.0)
        labels = F.pad(labels, (0, pad_w, 0, pad_h), value=IGNORE_INDEX)
    top = int(torch.randint(labels.shape[0] - crop + 1, ()))
    left = int(torch.randint(labels.shape[1] - crop + 1, ()))
    clip, labels = clip[..., top:top + crop, left:left + crop], labels[top:top + crop, left:left + crop]
    if flip and float(torch.rand(())) < 0.5:
        clip, labels = clip.flip(-1), labels.flip(-1)
    return clip.contiguous(), labels.contiguous()


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

    def clip(self, s: int, t: int) -> tuple[Tensor, Tensor]:
        """Un-augmented clip ``(T, 3, H, W)`` ending on frame ``t`` of sequence ``s`` and its
        labels ``(H, W)`` (all 255 for an unlabelled frame)."""
        sequence = self.sequences[s]
        frames = np.stack([read_frame(sequence.frames[i]) for i in clip_indices(t, self.clip_length)])
        if t in sequence.labels:
            labels = torch.from_numpy(read_labels(sequence, t).astype(np.int64))
        else:
            labels = torch.full(frames.shape[1:3], IGNORE_INDEX, dtype=torch.int64)
        return frames_to_tensor(frames), labels

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

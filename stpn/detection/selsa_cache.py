"""Support RoI features of a video's frames for SELSA inference, each frame computed at most once.

A frame's SELSA support features (its top proposals' fc6 / fc7 features, ``(2, n, R)``) do not
depend on the key frame they support, so they are cached per frame index. The support frames of
key ``t`` come from the same samplers as STPN's (:mod:`stpn.prompts.sampling`: per-video,
sliding, causal), so "STPN + SELSA" uses one set of support frames for both. After each batch of
key frames, entries below the smallest index the next key frame can ask for are dropped (the
smallest support index never decreases with ``t`` under these samplers).

The frames must be a sequence (random access): per-video mode reaches across the whole video
and sliding mode ahead of the key frame. ``detect_video`` reads a stream into a list first
for SELSA detectors (this per-frame path trades memory for simplicity).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from stpn.prompts.sampling import build_sampler
from stpn.prompts.settings import DEFAULT_INFERENCE, check_mode


class SupportRoICache:
    """``for_keys([t, ...]) → [[(2, n_f, R) per support frame] per key]``.

    Args:
        model: a :class:`~stpn.detection.selsa_detector.SelsaFasterRCNN` in eval mode.
        frames: the video's normalised, padded frames ``(3, H_pad, W_pad)`` (a sequence).
        image_size: the frames' true ``(H, W)`` (all frames of a video share it).
        mode / num_support / stride: the support sampler (``K`` and ``S``).
        batch_size: support frames run through the backbone together.
    """

    def __init__(
        self,
        model,
        frames: Sequence[Tensor],
        image_size: tuple[int, int],
        mode: str = DEFAULT_INFERENCE.mode,
        num_support: int = DEFAULT_INFERENCE.num_support,
        stride: int = DEFAULT_INFERENCE.stride,
        batch_size: int = DEFAULT_INFERENCE.batch_size,
    ) -> None:
        mode = check_mode(mode)
        self.model, self.frames, self.image_size = model, frames, tuple(image_size)
        self.sampler = build_sampler(mode, num_support, stride)
        self.batch_size = max(1, batch_size)
        self.cache: dict[int, Tensor] = {}
        self.computed: list[int] = []  # frame indices whose features were computed, in order

    @torch.no_grad()
    def for_keys(self, keys: Sequence[int]) -> list[list[Tensor]]:
        length = len(self.frames)
        wanted = [self.sampler(t, length) for t in keys]
        missing = sorted({i for indices in wanted for i in indices} - set(self.cache))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            frames = torch.stack([self.frames[i] for i in chunk])
            self.cache.update(zip(chunk, self.model.support_frames(frames, [self.image_size] * len(chunk))))
            self.computed.extend(chunk)
        out = [[self.cache[i] for i in indices] for indices in wanted]
        following = max(keys) + 1
        if following < length:
            needed = min(self.sampler(following, length))
            for i in [i for i in self.cache if i < needed]:
                del self.cache[i]
        return out

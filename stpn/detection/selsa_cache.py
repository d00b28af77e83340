"""Support RoI features of a video's frames for SELSA inference, each frame computed at most once.

A frame's SELSA support features (its top proposals' fc6 / fc7 features, ``(2, n, R)``) do not
depend on the key frame they support, so they are cached per frame index. The support frames of
key ``t`` come from the same samplers as STPN's (:mod:`stpn.prompts.sampling`: per-video,
sliding, causal), so "STPN + SELSA" uses one set of support frames for both, and the same cache
and eviction rule (:class:`~stpn.prompts.support_cache.SupportCache`).

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
from stpn.prompts.support_cache import SupportCache


class SupportRoICache:
    """``for_keys([t, ...]) → [[(2, n_f, R) per support frame] per key]``.

    Args:
        model: a :class:`~stpn.detection.selsa_detector.SelsaFasterRCNN` in eval mode.
        frames: the video's normalised, padded frames ``(3, H_pad, W_pad)`` (a sequence).
        image_size: the frames' true ``(H, W)`` (all frames of a video share it).
        mode / num_support / stride: the support sampler (``K`` and ``S``).
        batch_size: support frames run through the backbone together.

    The features live in a :class:`~stpn.prompts.support_cache.SupportCache` (``cache``);
    ``computed`` lists the frame indices whose features were computed, in order.
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
        self.cache = SupportCache(self._support_features, batch_size=max(1, batch_size))

    @property
    def computed(self) -> list[int]:
        return self.cache.computed

    def _support_features(self, indices: list[int]) -> list[Tensor]:
        frames = torch.stack([self.frames[i] for i in indices])
        return self.model.support_frames(frames, [self.image_size] * len(indices))

    @torch.no_grad()
    def for_keys(self, keys: Sequence[int]) -> list[list[Tensor]]:
        length = len(self.frames)
        out = self.cache.gather([self.sampler(t, length) for t in keys])
        following = max(keys) + 1
        if following < length:
            self.cache.forget_before_key(self.sampler, following, length)
        return out

"""Support-frame samplers: pure functions of (key frame index, video length) → support indices.

Every factory returns a ``Sampler``: ``sampler(t, length, rng=None) -> list[int]`` of length
``K`` (``2`` for :func:`train_bilateral`). Deterministic samplers ignore ``rng``.

Boundary rule ("clamp and repeat"): an index that falls outside ``[0, length - 1]`` is clamped to
the nearest end; if clamping lands on the key frame itself, the neighbour one step towards the
inside of the video is used instead (``t - 1`` or ``t + 1``). So near the ends of a video the
same support frame may appear several times, every index is in range, and the key frame is
never its own support unless the video has a single frame. The two exceptions, by design:

* :func:`causal` at ``t = 0`` has no past frame at all and returns copies of the key frame (the
  same convention as training on still images, docs/design.md §3.1);
* :func:`per_video` does not depend on ``t`` (prompts are predicted once per video and reused for
  every frame, the authors' released test mode), so it may contain the key frame.

Paper notation (§3): ``T = {t ± S·k, k = 1..K/2}``. For odd ``K`` the past side gets the extra
frame (``ceil(K/2)`` past, ``floor(K/2)`` future); the paper assumes ``K`` even.
Default ``K`` / ``S``: :data:`stpn.prompts.settings.DEFAULT_INFERENCE`.
"""
from __future__ import annotations

import math
import random
from typing import Callable, Optional

from stpn.prompts.settings import DEFAULT_INFERENCE

K_DEFAULT, S_DEFAULT = DEFAULT_INFERENCE.num_support, DEFAULT_INFERENCE.stride
Sampler = Callable[..., list]


def _check(t: int, length: int) -> None:
    if length < 1:
        raise ValueError(f"video length must be >= 1, got {length}")
    if not 0 <= t < length:
        raise ValueError(f"frame index {t} is outside a video of {length} frames")


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def clamp_support(index: int, t: int, length: int) -> int:
    """Clamp ``index`` into the video; step off the key frame ``t`` if clamping hit it."""
    index = min(max(index, 0), length - 1)
    if index == t and length > 1:  # only possible at either end of the video
        index = 1 if t == 0 else t - 1
    return index


def sliding(K: int = K_DEFAULT, S: int = S_DEFAULT) -> Sampler:
    """Symmetric window ``t - S·k`` (k = 1..ceil(K/2)) and ``t + S·k`` (k = 1..floor(K/2))."""
    _check_positive(K=K, S=S)
    past = [-S * k for k in range(math.ceil(K / 2), 0, -1)]
    future = [S * k for k in range(1, K // 2 + 1)]
    offsets = past + future

    def sample(t: int, length: int, rng: Optional[random.Random] = None) -> list[int]:
        _check(t, length)
        if length == 1:
            return [0] * K
        return [clamp_support(t + o, t, length) for o in offsets]

    return sample


def causal(K: int = K_DEFAULT, S: int = S_DEFAULT) -> Sampler:
    """Past frames only, ``t - S·k`` for k = K..1 (oldest first), for live streams.

    Past indices below 0 clamp to frame 0; at ``t = 0`` the key frame is its own support.
    """
    _check_positive(K=K, S=S)

    def sample(t: int, length: int, rng: Optional[random.Random] = None) -> list[int]:
        _check(t, length)
        if t == 0:
            return [0] * K
        return [max(t - S * k, 0) for k in range(K, 0, -1)]

    return sample


def per_video(K: int = K_DEFAULT) -> Sampler:
    """``K`` frames spread evenly over the whole video, independent of ``t``.

    Indices are ``round(linspace(0, length - 1, K))``: the first and last frame are included and
    short videos repeat frames.
    """
    _check_positive(K=K)

    def sample(t: int, length: int, rng: Optional[random.Random] = None) -> list[int]:
        _check(t, length)
        if K == 1:
            return [(length - 1) // 2]
        step = (length - 1) / (K - 1)
        return [int(math.floor(i * step + 0.5)) for i in range(K)]

    return sample


def train_bilateral(max_offset: int = 9, per_side: int = 1) -> Sampler:
    """Training sampler of the released code: one frame drawn from each side of ``t``
    (``per_side`` frames from each side when larger: ``2 · per_side`` support frames, past ones
    first).

    Past frames are uniform in ``[t - max_offset, t - 1]`` and future frames uniform in
    ``[t + 1, t + max_offset]``, both cut to the video; with ``per_side > 1`` a side's frames are
    distinct while it has enough of them, drawn again once it has not. A side with no frame borrows
    from the other side; a one-frame video (a still image) gives copies of ``t``.
    """
    _check_positive(max_offset=max_offset, per_side=per_side)

    def sample(t: int, length: int, rng: Optional[random.Random] = None) -> list[int]:
        _check(t, length)
        rng = rng if rng is not None else random.Random()
        if length == 1:
            return [t] * (2 * per_side)
        past = list(range(max(t - max_offset, 0), t))
        future = list(range(t + 1, min(t + max_offset, length - 1) + 1))
        past = past or future
        future = future or past
        if per_side == 1:  # the released sampler, draw for draw
            return [rng.choice(past), rng.choice(future)]
        return sorted(_draw(past, per_side, rng)) + sorted(_draw(future, per_side, rng))

    return sample


def _draw(frames: list[int], count: int, rng: random.Random) -> list[int]:
    """``count`` of ``frames``: distinct while there are enough, then with repeats."""
    if count <= len(frames):
        return rng.sample(frames, count)
    return frames + [rng.choice(frames) for _ in range(count - len(frames))]


def build_sampler(mode: str, K: int = K_DEFAULT, S: int = S_DEFAULT, max_offset: int = 9) -> Sampler:
    """Plain factory: ``mode`` is ``"sliding"``, ``"causal"``, ``"per-video"`` or ``"train"``."""
    mode = mode.replace("_", "-")
    if mode == "sliding":
        return sliding(K, S)
    if mode == "causal":
        return causal(K, S)
    if mode == "per-video":
        return per_video(K)
    if mode == "train":
        return train_bilateral(max_offset)
    raise ValueError(f"unknown sampling mode {mode!r}; choose sliding, causal, per-video or train")

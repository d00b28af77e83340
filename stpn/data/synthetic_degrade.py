"""The deteriorations of the built-in benchmark, each a function of a frame (or an object's
region of it) and a strength in [0, 1+] (the burst's severity).

Object-level: ``motion_blur`` (along the object's velocity), ``occlusion`` (an opaque occluder
passes over the object), ``defocus`` (Gaussian blur of the object). Frame-level: ``noise``,
``jpeg`` (heavy compression), ``low_light`` (dark, noisy). At strength 1 each wipes out the
texture that tells the classes apart (stripes vs checks a few pixels wide) while the object's
blob, and so its location, mostly survives.
"""
from __future__ import annotations

import io

import numpy as np
from scipy import ndimage

OBJECT_LEVEL = ("motion_blur", "occlusion", "defocus")
FRAME_LEVEL = ("noise", "jpeg", "low_light")


def motion_blur(region: np.ndarray, velocity: np.ndarray, strength: float) -> np.ndarray:
    """Average ``region`` (H, W, 3 float) along the direction of ``velocity`` (dx, dy)."""
    length = max(int(round(4 + 10 * strength)), 2)
    direction = velocity / (np.linalg.norm(velocity) + 1e-6)
    if np.linalg.norm(velocity) < 1e-3:
        direction = np.array([1.0, 0.0])
    out = np.zeros_like(region)
    for step in np.linspace(-length / 2, length / 2, length):
        out += ndimage.shift(region, (step * direction[1], step * direction[0], 0), order=1, mode="nearest")
    return out / length


def defocus(region: np.ndarray, strength: float) -> np.ndarray:
    sigma = 1.0 + 3.0 * strength
    return ndimage.gaussian_filter(region, (sigma, sigma, 0))


def noise(frame: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    return frame + rng.normal(0, 20 + 35 * strength, frame.shape)


def jpeg(frame: np.ndarray, strength: float) -> np.ndarray:
    from PIL import Image

    quality = int(np.clip(round(16 - 10 * strength), 1, 95))
    buf = io.BytesIO()
    Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(np.float32)


def low_light(frame: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    gain = max(0.4 - 0.22 * strength, 0.05)
    return frame * gain + rng.normal(0, 4 + 6 * strength, frame.shape)

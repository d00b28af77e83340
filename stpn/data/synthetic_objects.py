"""Object classes of the built-in benchmark: textured shapes rendered as anti-aliased sprites.

Three classes, one surface texture each (:data:`CLASS_TEXTURES`); the outline (disc, square or
triangle) and both colours are drawn per object, so neither outline nor colour tells the class,
only the pattern does. The texture is the fine detail (a period of about two thirds of the
object's radius, 4–13 px on the demo's 128-px frames) that blur, noise, compression and darkness
wipe out, while the blob (and so the object's location) survives: exactly the case where a
per-frame model still finds the object but loses its class. A class is a local, stationary
property of the surface, so any part of an object shows it (a coarse token that covers a piece
of the object carries the class as well as one centred on it).

Geometry is in object units (radius 1 ↔ ``radius`` pixels) with signed distance functions, so
the edges are anti-aliased at any scale and rotation.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASS_TEXTURES = (  # (class name, texture)
    ("striped", "stripes"),
    ("checkered", "checks"),
    ("dotted", "dots"),
)
CATEGORIES = [name for name, _ in CLASS_TEXTURES]
SHAPES = ("disc", "square", "triangle")
PERIOD_RANGE = (0.55, 0.75)  # texture period in object units (radius 1)

SQUARE_HALF_SIDE = 0.86  # about the disc's area
TRIANGLE_INRADIUS = 0.68  # circumradius 1.36
_EXTENT = {"disc": 1.0, "square": SQUARE_HALF_SIDE * np.sqrt(2), "triangle": 2 * TRIANGLE_INRADIUS}


@dataclass
class Appearance:
    """How one object (track) looks: class, outline, two colours ``(2, 3)`` in 0–255, texture
    period and phase (object units), lighting direction ``(2,)`` and aspect ratio (width / height)."""

    category_id: int
    shape: str
    colors: np.ndarray
    period: float
    phase: np.ndarray
    light: np.ndarray
    aspect: float

    @property
    def texture(self) -> str:
        return CLASS_TEXTURES[self.category_id][1]


def _luma(color: np.ndarray) -> float:
    return float(color @ np.array([0.299, 0.587, 0.114]))


def sample_appearance(rng: np.random.Generator, category_id: int) -> Appearance:
    """Random look for an object of class ``category_id``: any outline, two colours at least 90
    luma levels apart (so the texture is plainly visible on clean frames)."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    first = rng.uniform(0, 255, 3)
    for _ in range(50):
        second = rng.uniform(0, 255, 3)
        if abs(_luma(first) - _luma(second)) >= 90:
            break
    else:  # 50 misses in a row is rare; fall back to the complement
        second = 255.0 - first
    return Appearance(
        category_id=category_id,
        shape=shape,
        colors=np.stack([first, second]).astype(np.float32),
        period=float(rng.uniform(*PERIOD_RANGE)),
        phase=rng.uniform(0, 1, 2),
        light=rng.normal(0, 0.12, 2),
        aspect=float(np.exp(rng.uniform(-0.15, 0.15))),
    )


def half_extent(shape: str, radius: float, aspect: float) -> float:
    """Radius in pixels of a circle (around the centre) that holds the shape at any rotation."""
    return float(_EXTENT[shape] * radius * max(np.sqrt(aspect), 1 / np.sqrt(aspect)))


def _signed_distance(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Signed distance (object units, < 0 inside) to the shape's outline; apex up for triangles."""
    if shape == "disc":
        return np.sqrt(u * u + v * v) - 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) - SQUARE_HALF_SIDE
    # triangle: intersection of three half-planes, outward normals at 90°, -30°, -150° (y down)
    edges = [u * np.cos(a) + v * np.sin(a) for a in (np.pi / 2, -np.pi / 6, -5 * np.pi / 6)]
    return np.maximum(np.maximum(edges[0], edges[1]), edges[2]) - TRIANGLE_INRADIUS


def _pattern(texture: str, u: np.ndarray, v: np.ndarray, look: Appearance, pixels: float) -> np.ndarray:
    """Share of the first colour in [0, 1]; ``pixels`` per object unit sets the edge softness."""
    x, y = u / look.period + look.phase[0], v / look.period + look.phase[1]
    sharp = max(pixels * look.period / (2 * np.pi), 0.5)  # edges about a pixel wide
    if texture == "stripes":
        wave = np.sin(2 * np.pi * x)
    elif texture == "checks":
        wave = np.sin(2 * np.pi * x) * np.sin(2 * np.pi * y)
    else:  # dots on a square lattice
        du, dv = x - np.floor(x) - 0.5, y - np.floor(y) - 0.5
        distance = np.sqrt(du * du + dv * dv) * look.period * pixels
        return np.clip(0.32 * look.period * pixels - distance + 0.5, 0.0, 1.0)
    return np.clip(0.5 + sharp * wave, 0.0, 1.0)


def render_sprite(look: Appearance, center: np.ndarray, radius: float, angle: float,
                  height: int, width: int, margin: float = 0.0) -> tuple[tuple[int, int], np.ndarray, np.ndarray]:
    """Draw one object centred at ``center`` (x, y) with ``radius`` pixels, turned by ``angle``.

    Returns ``(top, left)`` of its window in the frame, premultiplied RGB ``(h, w, 3)`` float32
    and coverage (alpha) ``(h, w)`` float32. The window holds the object plus ``margin`` pixels
    of room (for a blur streak), clipped to the ``height × width`` frame; it may be empty.
    """
    reach = half_extent(look.shape, radius, look.aspect) + 2.0 + margin
    top, left = max(int(np.floor(center[1] - reach)), 0), max(int(np.floor(center[0] - reach)), 0)
    bottom, right = min(int(np.ceil(center[1] + reach)), height), min(int(np.ceil(center[0] + reach)), width)
    if bottom <= top or right <= left:
        return (top, left), np.zeros((0, 0, 3), np.float32), np.zeros((0, 0), np.float32)
    dy = (np.arange(top, bottom, dtype=np.float32) + 0.5 - center[1])[:, None]
    dx = (np.arange(left, right, dtype=np.float32) + 0.5 - center[0])[None, :]
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    stretch = np.float32(np.sqrt(look.aspect))
    u = (cos * dx + sin * dy) / (radius * stretch)
    v = (-sin * dx + cos * dy) * stretch / radius
    alpha = np.clip(0.5 - _signed_distance(look.shape, u, v) * radius, 0.0, 1.0).astype(np.float32)
    mix = _pattern(look.texture, u, v, look, radius)[..., None]
    color = mix * look.colors[0] + (1.0 - mix) * look.colors[1]
    shade = 1.0 + look.light[0] * u + look.light[1] * v  # soft directional lighting
    rgb = np.clip(color * shade[..., None], 0.0, 255.0) * alpha[..., None]
    return (top, left), rgb.astype(np.float32), alpha

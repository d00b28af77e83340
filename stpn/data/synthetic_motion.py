"""Object tracks of the built-in benchmark: where each object is, how big and how turned, per frame.

Each track draws a speed class (slow / medium / fast) and moves at that speed, measured in object
diameters per frame, so FGFA's motion-IoU groups (docs/design.md §5; slow > 0.9, medium 0.7–0.9,
fast < 0.7 over ±10 frames) all get objects whatever their size. Paths are straight lines that
slowly curve and bounce off the frame's borders (objects stay whole inside the frame); the scale
drifts in and out between 0.7× and 1.4× and the object spins slowly, both faster for faster
classes. Positions are in frame pixels: the camera's pan/zoom moves the background only, which
keeps each object's measured speed the one drawn for it.

With probability ``PARTIAL_TRACK_PROB`` a track is present on a stretch of at least half the
video only (it appears late or leaves early), as in real videos.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stpn.data.synthetic_objects import Appearance, half_extent

# speed in object diameters per frame, and the share of tracks of each class
SPEED_RANGES = {"slow": (0.0, 0.004), "medium": (0.011, 0.028), "fast": (0.05, 0.14)}
SPEED_SHARES = {"slow": 0.36, "medium": 0.36, "fast": 0.28}
SCALE_RATES = {"slow": 0.002, "medium": 0.006, "fast": 0.012}  # max |Δ log scale| per frame
SPIN_RATES = {"slow": 0.004, "medium": 0.015, "fast": 0.04}  # max |Δ angle| per frame (radians)
RADIUS_RANGE = (0.055, 0.13)  # object radius as a share of the frame side
SCALE_LIMITS = (np.log(0.7), np.log(1.4))
PARTIAL_TRACK_PROB = 0.2


@dataclass
class Track:
    """One object through the video; arrays have one row per frame ``T``.

    ``centers`` (T, 2) x, y; ``velocities`` (T, 2) px/frame; ``radii`` (T,) px; ``angles`` (T,)
    radians; ``present`` (T,) bool; ``depth``: drawing order (higher = nearer the camera)."""

    track_id: int
    look: Appearance
    speed_class: str
    depth: int
    centers: np.ndarray
    velocities: np.ndarray
    radii: np.ndarray
    angles: np.ndarray
    present: np.ndarray


def _present_frames(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    present = np.ones(num_frames, bool)
    if num_frames >= 4 and rng.random() < PARTIAL_TRACK_PROB:
        length = int(rng.integers((num_frames + 1) // 2, num_frames))
        start = int(rng.integers(0, num_frames - length + 1))
        present[:] = False
        present[start:start + length] = True
    return present


def sample_track(rng: np.random.Generator, track_id: int, look: Appearance, depth: int,
                 num_frames: int, size: int) -> Track:
    """Simulate one object's path in a ``size × size`` frame."""
    speed_class = str(rng.choice(list(SPEED_SHARES), p=list(SPEED_SHARES.values())))
    base = size * rng.uniform(*RADIUS_RANGE)
    base = min(base, 0.45 * size / half_extent(look.shape, 1.4, look.aspect))  # fits at the largest scale
    heading = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(*SPEED_RANGES[speed_class]) * 2 * base
    turn = rng.uniform(-0.04, 0.04)
    growth = rng.uniform(-1, 1) * SCALE_RATES[speed_class]
    spin = rng.uniform(-1, 1) * SPIN_RATES[speed_class]
    log_scale, angle = rng.uniform(-0.15, 0.15), rng.uniform(0, 2 * np.pi)
    reach = half_extent(look.shape, base * np.exp(log_scale), look.aspect)
    position = rng.uniform(reach, size - reach, 2)

    centers, velocities, radii, angles = (np.zeros((num_frames, 2)), np.zeros((num_frames, 2)),
                                          np.zeros(num_frames), np.zeros(num_frames))
    velocity = speed * np.array([np.cos(heading), np.sin(heading)])
    for t in range(num_frames):
        radius = base * np.exp(log_scale)
        reach = half_extent(look.shape, radius, look.aspect)
        position = np.clip(position, reach, size - reach)
        centers[t], velocities[t], radii[t], angles[t] = position, velocity, radius, angle
        position = position + velocity
        for axis in range(2):  # bounce off the borders
            if position[axis] < reach or position[axis] > size - reach:
                velocity[axis] = -velocity[axis]
                position[axis] = np.clip(2 * np.clip(position[axis], reach, size - reach) - position[axis],
                                         reach, size - reach)
        velocity = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]]) @ velocity
        log_scale += growth
        if not SCALE_LIMITS[0] <= log_scale <= SCALE_LIMITS[1]:
            growth = -growth
            log_scale = float(np.clip(log_scale, *SCALE_LIMITS))
        angle += spin
    return Track(track_id, look, speed_class, depth, centers.astype(np.float32), velocities.astype(np.float32),
                 radii.astype(np.float32), angles.astype(np.float32), _present_frames(rng, num_frames))

"""Draw one frame of a synthetic video: background, objects back to front, occluders, then the
frame-level deterioration; keep what the annotations need (who owns each pixel, who was hit).

Objects are composited with anti-aliased alpha in depth order; an object's *amodal* mask is its
sharp outline (alpha ≥ 0.5), its *visible* mask the part no nearer object or occluder covers.
A motion-blurred object is drawn smeared, but its masks stay the sharp outline at its true
position (where an annotator would put it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stpn.data import synthetic_degrade as degrade
from stpn.data.synthetic_motion import Track
from stpn.data.synthetic_objects import render_sprite
from stpn.data.synthetic_scene import Camera, background_images, crop_view

OCCLUDER = -2  # owner value of pixels covered by an occluder (-1: background)
OCCLUSION_LABEL_SHARE = 0.1  # an object at least this much covered by an occluder is recorded as occluded


@dataclass
class DrawnObject:
    """Object ``index`` (into the video's tracks) in one frame: the ``(top, left)`` corner of its
    window, its amodal mask there ``(h, w)`` bool and the deteriorations that hit it."""

    index: int
    top: int
    left: int
    amodal: np.ndarray
    hits: list[str] = field(default_factory=list)


@dataclass
class DrawnFrame:
    """``image`` (S, S, 3) uint8, ``owner`` (S, S) int8 (track index, -1 background,
    :data:`OCCLUDER`), the drawn objects and the frame-level deteriorations."""

    image: np.ndarray
    owner: np.ndarray
    objects: list[DrawnObject]
    frame_hits: tuple[str, ...]


def occluder_texture(burst: degrade.Burst, size: int) -> np.ndarray:
    """The real-image surface of a burst's occluder: a crop of one of the background images
    (chosen by the burst's random parameters), float32 ``(size, size, 3)``."""
    images = background_images()
    image = images[int(burst.params[2] * len(images))]
    extent = min(image.size) * (0.3 + 0.4 * burst.params[3])
    center = np.array([burst.params[4] * image.width, burst.params[5] * image.height])
    return crop_view(image, center, extent, size).astype(np.float32)


def _blur_direction(track: Track, t: int, burst: degrade.Burst) -> np.ndarray:
    velocity = track.velocities[t].astype(np.float64)
    speed = float(np.hypot(*velocity))
    if speed < 0.05:  # (almost) still: a jolt in a random direction
        angle = 2 * np.pi * burst.params[0]
        return np.array([np.cos(angle), np.sin(angle)])
    return velocity / speed


def draw_frame(t: int, size: int, camera: Camera, tracks: list[Track], bursts: list[degrade.Burst],
               textures: dict[tuple, np.ndarray], rng: np.random.Generator) -> DrawnFrame:
    """Frame ``t``. ``textures`` caches occluder surfaces across frames (filled here); ``rng``
    draws the noise of noisy deteriorations."""
    frame = camera.view(t, size)
    owner = np.full((size, size), -1, np.int8)
    active = [b for b in bursts if b.covers(t)]
    drawn = []
    for k in sorted((k for k, tr in enumerate(tracks) if tr.present[t]), key=lambda k: tracks[k].depth):
        track = tracks[k]
        radius = float(track.radii[t])
        blur = next((b for b in active if b.track == k and b.kind == "motion_blur"), None)
        length = degrade.motion_blur_length(blur.strength, radius) if blur else 0.0
        (top, left), rgb, alpha = render_sprite(track.look, track.centers[t], radius, float(track.angles[t]),
                                                size, size, margin=length / 2 + 1)
        amodal = alpha >= 0.5
        if blur is not None:
            rgb, alpha = degrade.motion_blur(rgb, alpha, _blur_direction(track, t, blur), length)
        h, w = alpha.shape
        window = frame[top:top + h, left:left + w]
        window *= 1.0 - alpha[..., None]
        window += rgb
        owner[top:top + h, left:left + w][amodal] = k
        drawn.append(DrawnObject(k, top, left, amodal, ["motion_blur"] if blur else []))
    for burst in (b for b in active if b.kind == "occlusion"):
        target = tracks[burst.track]
        key = (burst.track, burst.start)
        if key not in textures:
            textures[key] = occluder_texture(burst, size)
        rgb, alpha = degrade.occluder(textures[key], target.centers[t], target.centers[burst.start],
                                      float(target.radii[t]), burst, t)
        frame = frame * (1.0 - alpha[..., None]) + rgb
        covered = alpha >= 0.5
        owner[covered] = OCCLUDER
        for obj in drawn:
            h, w = obj.amodal.shape
            hidden = covered[obj.top:obj.top + h, obj.left:obj.left + w][obj.amodal].sum()
            share = hidden / max(obj.amodal.sum(), 1)
            if (obj.index == burst.track and hidden > 0) or share >= OCCLUSION_LABEL_SHARE:
                obj.hits.append("occlusion")
    frame_hits = []
    for burst in (b for b in active if b.track is None):
        frame = degrade.apply_frame_level(burst.kind, frame, burst.strength, rng)
        frame_hits.append(burst.kind)
    image = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    for obj in drawn:
        obj.hits = list(dict.fromkeys(frame_hits + obj.hits))
    return DrawnFrame(image, owner, drawn, tuple(frame_hits))

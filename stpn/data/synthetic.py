"""The built-in degraded-video benchmark: deterministic videos of moving textured objects over
real-image backgrounds, with bursts of the deteriorations STPN targets.

Each video (from ``numpy.random.default_rng([seed, index])``, so video ``i`` does not depend on
how many videos are asked for) has:

* a camera panning and zooming over a frame of a real clip (:mod:`.synthetic_scene`);
* 1–3 objects of the five classes (:data:`CATEGORIES`), each a track with its own speed
  (drawn so that FGFA's slow / medium / fast motion-IoU groups are all present), a bouncing
  straight path and a slowly changing scale; objects occlude each other in index order. With
  probability 0.7 all objects of a video share one class, the pattern of ImageNet VID, where
  most videos show one kind of object;
* 2–3 bursts of 3–6 consecutive frames, each of one deterioration
  (:mod:`.synthetic_degrade`): motion blur along the object's velocity, a passing occluder or
  defocus on one object; noise, JPEG compression or low light on the whole frame. Instances
  list the object-level ones that hit them, frames the frame-level ones.

``severity`` scales every burst (0 = clean video, 1 = the default): at 1 the texture that tells
the classes apart is gone on the hit frames while neighbouring frames show it clearly.

Boxes are the object's full (amodal) extent clipped to the frame; masks are the visible pixels;
``visible_fraction`` is their ratio. An object less than 10 % visible is left out of that frame.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
from tqdm import tqdm

from stpn.data import synthetic_degrade as degrade
from stpn.data.synthetic_scene import CATEGORIES, background_frames, camera_view, object_colors, render_object
from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset

SEVERITY_DEFAULT = 1.0
SPEEDS = {"slow": (0.0, 0.004), "medium": (0.012, 0.025), "fast": (0.04, 0.08)}  # px/frame per px of box
DETERIORATION_KINDS = degrade.OBJECT_LEVEL + degrade.FRAME_LEVEL

__all__ = ["CATEGORIES", "SEVERITY_DEFAULT", "iter_videos", "generate_dataset", "generate_video"]


def _tracks(rng: np.random.Generator, num_frames: int, size: int) -> list[dict]:
    count = int(rng.integers(1, 4))
    same = rng.random() < 0.7
    first = int(rng.integers(len(CATEGORIES)))
    tracks = []
    for k in range(count):
        radius = size * rng.uniform(0.08, 0.16)
        low, high = SPEEDS[rng.choice(list(SPEEDS))]
        speed = rng.uniform(low, high) * 2 * radius
        angle = rng.uniform(0, 2 * np.pi)
        pos = rng.uniform(radius, size - radius, 2)
        vel = speed * np.array([np.cos(angle), np.sin(angle)])
        centers, velocities = [], []
        for _ in range(num_frames):
            centers.append(pos.copy())
            velocities.append(vel.copy())
            pos = pos + vel
            for axis in range(2):  # bounce off the borders
                if not radius * 0.8 <= pos[axis] <= size - radius * 0.8:
                    vel[axis] = -vel[axis]
                    pos[axis] = np.clip(pos[axis], radius * 0.8, size - radius * 0.8)
        phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(40, 90)
        scales = 1 + 0.12 * np.sin(phase + 2 * np.pi * np.arange(num_frames) / period)
        tracks.append(dict(
            track_id=k + 1, category=first if same else int(rng.integers(len(CATEGORIES))),
            radius=radius, centers=np.array(centers), velocities=np.array(velocities), scales=scales,
            colors=object_colors(rng), period=rng.uniform(0.25, 0.4),
        ))
    return tracks


def _bursts(rng: np.random.Generator, num_frames: int, num_tracks: int, severity: float) -> list[dict]:
    if severity <= 0:
        return []
    bursts = []
    for _ in range(int(rng.integers(2, 4))):
        length = int(rng.integers(3, 7))
        start = int(rng.integers(0, max(num_frames - length, 1)))
        kind = str(rng.choice(DETERIORATION_KINDS))
        bursts.append(dict(kind=kind, frames=range(start, min(start + length, num_frames)),
                           track=int(rng.integers(num_tracks)), strength=severity * rng.uniform(0.8, 1.2)))
    return bursts


def _paste(frame, visible, sprite, mask, center, index):
    """Draw a sprite centred at ``center``; returns the full mask in frame coordinates."""
    size = frame.shape[0]
    side = sprite.shape[0]
    top, left = int(round(center[1] - side / 2)), int(round(center[0] - side / 2))
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + side, size), min(left + side, frame.shape[1])
    full = np.zeros(frame.shape[:2], bool)
    if y1 <= y0 or x1 <= x0:
        return full
    m = mask[y0 - top : y1 - top, x0 - left : x1 - left]
    region = frame[y0:y1, x0:x1]
    region[m] = sprite[y0 - top : y1 - top, x0 - left : x1 - left][m]
    full[y0:y1, x0:x1] = m
    visible[full] = index
    return full


def _box(mask: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def generate_video(index: int, num_frames: int = 32, size: int = 256, seed: int = 0,
                   severity: float = SEVERITY_DEFAULT) -> Video:
    """Video ``index`` of the benchmark with ``seed``; frames are RGB uint8 arrays."""
    if num_frames < 1 or size < 32:
        raise ValueError(f"need num_frames >= 1 and size >= 32, got {num_frames} and {size}")
    rng = np.random.default_rng([seed, index])
    backgrounds = background_frames()
    image = backgrounds[int(rng.integers(len(backgrounds)))]
    h, w = image.shape[:2]
    extent = np.linspace(*(min(h, w) * rng.uniform(0.55, 0.95, 2)), num_frames)
    pan = np.linspace(rng.uniform([0, 0], [w, h]), rng.uniform([0, 0], [w, h]), num_frames)
    tracks = _tracks(rng, num_frames, size)
    bursts = _bursts(rng, num_frames, len(tracks), severity)
    frames, annotations = [], []
    for t in range(num_frames):
        frame = camera_view(image, pan[t], extent[t], size).astype(np.float32)
        visible = np.zeros((size, size), np.int32)  # which object (1-based index) owns each pixel
        full_masks, hits = [], {tr["track_id"]: [] for tr in tracks}
        active = [b for b in bursts if t in b["frames"]]
        for k, tr in enumerate(tracks):
            radius = tr["radius"] * tr["scales"][t]
            sprite, mask = render_object(tr["category"], radius, tr["colors"], tr["period"])
            full = _paste(frame, visible, sprite, mask, tr["centers"][t], k + 1)
            full_masks.append(full)
            for b in (b for b in active if b["track"] == k and b["kind"] in ("motion_blur", "defocus")):
                box = _box(full)
                if box is None:
                    continue
                pad = int(6 + 8 * b["strength"])
                x0, y0 = max(int(box[0]) - pad, 0), max(int(box[1]) - pad, 0)
                x1, y1 = min(int(box[2]) + pad, size), min(int(box[3]) + pad, size)
                region = frame[y0:y1, x0:x1]
                frame[y0:y1, x0:x1] = (degrade.motion_blur(region, tr["velocities"][t], b["strength"])
                                       if b["kind"] == "motion_blur" else degrade.defocus(region, b["strength"]))
                hits[tr["track_id"]].append(b["kind"])
        for b in (b for b in active if b["kind"] == "occlusion"):
            tr = tracks[b["track"]]
            radius = tr["radius"] * tr["scales"][t]
            progress = (t - b["frames"].start + 0.5) / len(b["frames"])
            cx = tr["centers"][t][0] + (progress - 0.5) * 2.5 * radius
            half = radius * (0.35 + 0.25 * min(b["strength"], 1.5))  # at most ~60 % of the object
            x0, x1 = int(max(cx - half, 0)), int(min(cx + half, size))
            y0 = int(max(tr["centers"][t][1] - 1.3 * radius, 0))
            y1 = int(min(tr["centers"][t][1] + 1.3 * radius, size))
            if x1 > x0 and y1 > y0:
                frame[y0:y1, x0:x1] = 90.0 + 60.0 * (b["track"] % 2)
                visible[y0:y1, x0:x1] = 0
                hits[tr["track_id"]].append("occlusion")
        frame_hits = []
        for b in active:
            if b["kind"] == "noise":
                frame = degrade.noise(frame, b["strength"], rng)
            elif b["kind"] == "jpeg":
                frame = degrade.jpeg(frame, b["strength"])
            elif b["kind"] == "low_light":
                frame = degrade.low_light(frame, b["strength"], rng)
            else:
                continue
            frame_hits.append(b["kind"])
        instances = []
        for k, (tr, full) in enumerate(zip(tracks, full_masks)):
            box, total = _box(full), full.sum()
            own = visible == k + 1
            if box is None or total == 0 or own.sum() < 0.1 * total:
                continue
            instances.append(Instance(track_id=tr["track_id"], category_id=tr["category"], box=box, mask=own,
                                      deteriorations=tuple(dict.fromkeys(hits[tr["track_id"]])),
                                      visible_fraction=float(own.sum() / total)))
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        annotations.append(FrameAnnotation(instances, tuple(dict.fromkeys(frame_hits))))
    return Video(f"synth_s{seed}_{index:05d}", frames, annotations, size, size)


def iter_videos(num_videos: int, num_frames: int = 32, size: int = 256, seed: int = 0,
                severity: float = SEVERITY_DEFAULT) -> Iterator[Video]:
    """Videos ``0 .. num_videos - 1``, one at a time."""
    if num_videos < 0:
        raise ValueError(f"num_videos must be >= 0, got {num_videos}")
    for i in range(num_videos):
        yield generate_video(i, num_frames, size, seed, severity)


def generate_dataset(num_videos: int, num_frames: int = 32, size: int = 256, seed: int = 0,
                     severity: float = SEVERITY_DEFAULT, progress: bool = False) -> VideoDataset:
    """The whole set in memory (``progress`` shows a bar)."""
    videos = iter_videos(num_videos, num_frames, size, seed, severity)
    return VideoDataset(list(CATEGORIES), list(tqdm(videos, total=num_videos, desc="synth", disable=not progress)))

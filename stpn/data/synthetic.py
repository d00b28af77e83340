"""The built-in degraded-video benchmark: moving textured objects over real-image backgrounds, with
bursts of the deteriorations STPN is meant to withstand.

Every video has 2–4 objects of the three classes in :data:`CATEGORIES` (told apart only by their
surface texture; outline and colours random: :mod:`.synthetic_objects`) that move at slow, medium or
fast speeds, change scale, spin a little and hide one another (:mod:`.synthetic_motion`), over a
frame of a real clip seen through a panning, zooming camera (:mod:`.synthetic_scene`). Bursts of
2–5 frames of motion blur, occlusion, defocus, noise, JPEG compression or low light strike now
and then (:mod:`.synthetic_degrade`): on those frames a per-frame model can still find the
object but not tell its class, while the neighbouring clean frames show it plainly.

Annotations (:mod:`stpn.data.types`): boxes are the tight box of the object's whole outline
(amodal, so they do not shrink when something passes in front), masks are the visible pixels,
``visible_fraction`` their ratio; an object less than 5 % visible is left out of that frame,
unless a deterioration is what hides it (an occluder passing in front): then it stays while any
pixel of it shows, so that every frame a deterioration changed records it.
``FrameAnnotation.deteriorations`` lists the frame-level kinds, ``Instance.deteriorations``
everything that hit the object (the frame-level kinds of its frame included).

Video ``i`` of a seed comes from ``numpy.random.default_rng([seed, i, stream])`` alone, so it is
the same however many videos are asked for, and different seeds give unrelated videos. The scene
and the burst layout use separate streams: a video at severity 0 is the same video without its
deteriorations (its other frames are pixel-identical).

``single_class=True`` gives every object of a video the class of its first object, all other
draws unchanged (the same videos, relabelled and redrawn in that class's texture).
Most ImageNet VID videos show objects of one category, and this is the setting in which a
video-level cue (STPN's prompts are a few tokens for the whole frame) can name the objects on a
degraded frame; the built-in demo uses it (``stpn demo``). The default keeps independent classes.
"""
from __future__ import annotations

import math
from typing import Iterator

import numpy as np
from tqdm import tqdm

from stpn.data.synthetic_degrade import schedule_bursts
from stpn.data.synthetic_motion import Track, sample_track
from stpn.data.synthetic_objects import CATEGORIES, sample_appearance
from stpn.data.synthetic_render import DrawnFrame, draw_frame
from stpn.data.synthetic_scene import sample_camera
from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset

__all__ = ["CATEGORIES", "GENERATOR_VERSION", "SEVERITY_DEFAULT", "generate_video", "iter_videos", "generate_dataset"]

SEVERITY_DEFAULT = 1.0
GENERATOR_VERSION = 3  # bumped whenever the same (seed, index) draws a different video; part of cache keys
OBJECTS_PER_VIDEO = (2, 4)  # inclusive
MIN_VISIBLE_SHARE = 0.05
MIN_SIZE = 48
_SCENE, _BURSTS, _NOISE = 0, 1, 2  # random streams of a video


def _check_arguments(num_frames: int, size: int, seed: int, severity: float) -> None:
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    if int(size) != size or size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE} pixels, got {size!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not math.isfinite(severity) or severity < 0:
        raise ValueError(f"severity must be a finite number >= 0 (0 = clean), got {severity!r}")


def _instances(drawn: DrawnFrame, tracks: list[Track], size: int) -> list[Instance]:
    """The annotations of one drawn frame, in track order."""
    instances = []
    for obj in sorted(drawn.objects, key=lambda o: o.index):
        area = int(obj.amodal.sum())
        if area == 0:
            continue
        h, w = obj.amodal.shape
        full = np.zeros((size, size), bool)
        full[obj.top:obj.top + h, obj.left:obj.left + w] = obj.amodal
        visible = full & (drawn.owner == obj.index)
        share = float(visible.sum()) / area
        if share < MIN_VISIBLE_SHARE and not (obj.hits and visible.any()):  # hidden by a deterioration: kept
            continue
        rows, cols = np.flatnonzero(obj.amodal.any(axis=1)), np.flatnonzero(obj.amodal.any(axis=0))
        box = np.array([obj.left + cols[0], obj.top + rows[0], obj.left + cols[-1] + 1, obj.top + rows[-1] + 1],
                       np.float32)
        track = tracks[obj.index]
        instances.append(Instance(track.track_id, track.look.category_id, box, visible, tuple(obj.hits), share))
    return instances


def generate_video(index: int, num_frames: int = 32, size: int = 256, seed: int = 0,
                   severity: float = SEVERITY_DEFAULT, single_class: bool = False) -> Video:
    """Video ``index`` of the benchmark drawn with ``seed``: ``num_frames`` RGB uint8 frames of
    ``size × size`` with their annotations. ``severity`` scales every deterioration (0 = none);
    ``single_class``: every object takes the first object's class (module docstring)."""
    _check_arguments(num_frames, size, seed, severity)
    if int(index) != index or index < 0:
        raise ValueError(f"index must be a non-negative integer, got {index!r}")
    scene = np.random.default_rng([seed, index, _SCENE])
    camera = sample_camera(scene, num_frames)
    count = int(scene.integers(OBJECTS_PER_VIDEO[0], OBJECTS_PER_VIDEO[1] + 1))
    depths = scene.permutation(count)
    tracks, first_class = [], None
    for k in range(count):
        drawn_class = int(scene.integers(len(CATEGORIES)))
        first_class = drawn_class if first_class is None else first_class
        look = sample_appearance(scene, first_class if single_class else drawn_class)
        tracks.append(sample_track(scene, k + 1, look, int(depths[k]), num_frames, size))
    bursts = schedule_bursts(np.random.default_rng([seed, index, _BURSTS]), num_frames,
                             [tr.present for tr in tracks], severity)
    noise = np.random.default_rng([seed, index, _NOISE])
    textures: dict = {}
    frames, annotations = [], []
    for t in range(num_frames):
        drawn = draw_frame(t, size, camera, tracks, bursts, textures, noise)
        frames.append(drawn.image)
        annotations.append(FrameAnnotation(_instances(drawn, tracks, size), drawn.frame_hits))
    return Video(f"synthetic_s{seed}_{index:04d}", frames, annotations, size, size)


def iter_videos(num_videos: int, num_frames: int = 32, size: int = 256, seed: int = 0,
                severity: float = SEVERITY_DEFAULT, single_class: bool = False) -> Iterator[Video]:
    """Videos ``0 .. num_videos - 1`` of the benchmark, drawn one at a time (arguments checked
    before the first one)."""
    if int(num_videos) != num_videos or num_videos < 0:
        raise ValueError(f"num_videos must be a non-negative integer, got {num_videos!r}")
    _check_arguments(num_frames, size, seed, severity)

    def videos() -> Iterator[Video]:
        for index in range(int(num_videos)):
            yield generate_video(index, num_frames, size, seed, severity, single_class)

    return videos()


def generate_dataset(num_videos: int, num_frames: int = 32, size: int = 256, seed: int = 0,
                     severity: float = SEVERITY_DEFAULT, progress: bool = False,
                     single_class: bool = False) -> VideoDataset:
    """The first ``num_videos`` videos in memory (a tqdm bar on stderr when ``progress``)."""
    videos = iter_videos(num_videos, num_frames, size, seed, severity, single_class)
    bar = tqdm(videos, total=num_videos, desc="synthetic videos", unit="video", disable=not progress)
    return VideoDataset(list(CATEGORIES), list(bar))

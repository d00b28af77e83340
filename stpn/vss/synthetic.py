"""The built-in benchmark (:mod:`stpn.data.synthetic`) as video semantic segmentation.

Class map per frame: 0 = background, ``category_id + 1`` on each annotated object's visible
pixels (``Instance.mask``). Pixels of an occluder (a deterioration) are background, as are the
pixels of an object under 5 % visible (the generator drops those annotations).

Exact optical flow from the generator's own geometry, which :func:`video_geometry` replays from
the same random stream as :func:`stpn.data.synthetic.generate_video` (checked against the
annotations in the tests; tied to ``GENERATOR_VERSION`` 3). Forward flow ``(2, S, S)`` (dx, dy)
from frame t to t + 1, in the convention of :mod:`stpn.vss.metrics` (pixel centres at
``j + 0.5``):

* object pixels (owned by track j): the object's rigid motion, ``p' = c' + (r'/r)·R(a' − a)(p − c)``
  with centre c, radius r and angle a of frames t and t + 1 (the aspect stretch cancels);
* every other pixel: the camera, a crop window (centre, side, clipped into the source image as
  the renderer clips it) resized to S × S and optionally mirrored; the point's source-image
  position is mapped into frame t + 1's window.

Not exact where an occluder covers the frame (it moves with its target, we give it the
background's flow). ``visible`` marks the pixels of frame t whose point is still seen in frame
t + 1: the owner (track id, or background) at the flow's end equals the pixel's own; elsewhere
(the background sliding under an object, an object passing behind another) no label can be
carried over, so temporal consistency can leave those pixels out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stpn.data import synthetic
from stpn.data.synthetic_motion import Track, sample_track
from stpn.data.synthetic_objects import sample_appearance
from stpn.data.synthetic_scene import Camera, sample_camera
from stpn.data.types import Video

REPLAYED_GENERATOR_VERSION = 3


@dataclass
class SegmentationVideo:
    """``frames`` (T, S, S, 3) uint8, ``labels`` (T, S, S) uint8, ``flows`` (T - 1, 2, S, S)
    float32 forward flow, ``visible`` (T - 1, S, S) bool (module docstring), ``degraded`` (T,)
    bool: a deterioration hit the frame or an object in it."""

    name: str
    frames: np.ndarray
    labels: np.ndarray
    flows: np.ndarray
    visible: np.ndarray
    degraded: np.ndarray


def video_geometry(index: int, num_frames: int, size: int, seed: int,
                   single_class: bool = False) -> tuple[Camera, list[Track]]:
    """The camera and the object tracks of video ``index`` (the draws ``generate_video`` makes)."""
    if synthetic.GENERATOR_VERSION != REPLAYED_GENERATOR_VERSION:
        raise RuntimeError(f"stpn.vss.synthetic replays generator version {REPLAYED_GENERATOR_VERSION}, "
                           f"the generator is at {synthetic.GENERATOR_VERSION}: update video_geometry")
    scene = np.random.default_rng([seed, index, 0])
    camera = sample_camera(scene, num_frames)
    count = int(scene.integers(synthetic.OBJECTS_PER_VIDEO[0], synthetic.OBJECTS_PER_VIDEO[1] + 1))
    depths = scene.permutation(count)
    tracks, first_class = [], None
    for k in range(count):
        drawn_class = int(scene.integers(len(synthetic.CATEGORIES)))
        first_class = drawn_class if first_class is None else first_class
        look = sample_appearance(scene, first_class if single_class else drawn_class)
        tracks.append(sample_track(scene, k + 1, look, int(depths[k]), num_frames, size))
    return camera, tracks


def label_map(video: Video, t: int) -> np.ndarray:
    """``(S, S)`` uint8 class map of frame ``t`` (0 = background)."""
    labels = np.zeros((video.height, video.width), np.uint8)
    for instance in video.annotations[t].instances:
        labels[instance.mask] = instance.category_id + 1
    return labels


def owner_map(video: Video, t: int) -> np.ndarray:
    """``(S, S)`` int track id owning each pixel (0 = none)."""
    owner = np.zeros((video.height, video.width), np.int64)
    for instance in video.annotations[t].instances:
        owner[instance.mask] = instance.track_id
    return owner


def _window(camera: Camera, t: int) -> tuple[float, float, float]:
    """Left, top and side (source pixels) of frame ``t``'s crop, clipped as ``crop_view`` does."""
    image = camera.image
    half = min(camera.extents[t], image.width, image.height) / 2
    cx = float(np.clip(camera.centers[t][0], half, image.width - half))
    cy = float(np.clip(camera.centers[t][1], half, image.height - half))
    return cx - half, cy - half, 2 * half


def camera_flow(camera: Camera, t: int, size: int) -> np.ndarray:
    """Background flow ``(2, S, S)`` from frame ``t`` to ``t + 1``."""
    centres = np.arange(size, dtype=np.float64) + 0.5
    x, y = np.meshgrid(centres, centres)
    crop_x = size - x if camera.flip else x
    left, top, side = _window(camera, t)
    left2, top2, side2 = _window(camera, t + 1)
    source_x, source_y = left + crop_x * side / size, top + y * side / size
    next_crop_x, next_y = (source_x - left2) * size / side2, (source_y - top2) * size / side2
    next_x = size - next_crop_x if camera.flip else next_crop_x
    return np.stack([next_x - x, next_y - y]).astype(np.float32)


def object_flow(track: Track, t: int, size: int) -> np.ndarray:
    """Flow ``(2, S, S)`` of every pixel as if it belonged to ``track``'s object."""
    centres = np.arange(size, dtype=np.float64) + 0.5
    x, y = np.meshgrid(centres, centres)
    dx, dy = x - track.centers[t][0], y - track.centers[t][1]
    turn = float(track.angles[t + 1] - track.angles[t])
    scale = float(track.radii[t + 1] / track.radii[t])
    cos, sin = np.cos(turn), np.sin(turn)
    next_x = track.centers[t + 1][0] + scale * (cos * dx - sin * dy)
    next_y = track.centers[t + 1][1] + scale * (sin * dx + cos * dy)
    return np.stack([next_x - x, next_y - y]).astype(np.float32)


def exact_flow(video: Video, camera: Camera, tracks: list[Track], t: int) -> np.ndarray:
    """Forward flow ``(2, S, S)`` from frame ``t`` to ``t + 1`` (module docstring)."""
    flow = camera_flow(camera, t, video.width)
    owner = owner_map(video, t)
    for track_id in np.unique(owner[owner > 0]):
        pixels = owner == track_id
        flow[:, pixels] = object_flow(tracks[track_id - 1], t, video.width)[:, pixels]
    return flow


def still_visible(video: Video, flow: np.ndarray, t: int) -> np.ndarray:
    """``(S, S)`` bool: the pixel's owner in frame ``t`` is the owner where the flow lands in ``t + 1``."""
    import torch

    from stpn.vss.metrics import warp_labels

    landed = warp_labels(torch.from_numpy(owner_map(video, t + 1)), torch.from_numpy(flow), fill=-1).numpy()
    return landed == owner_map(video, t)


def segmentation_video(index: int, num_frames: int, size: int, seed: int, severity: float = 1.0,
                       single_class: bool = False) -> SegmentationVideo:
    """Video ``index`` of the benchmark with class maps and exact flow."""
    video = synthetic.generate_video(index, num_frames, size, seed, severity, single_class)
    camera, tracks = video_geometry(index, num_frames, size, seed, single_class)
    labels = np.stack([label_map(video, t) for t in range(num_frames)])
    flows = np.stack([exact_flow(video, camera, tracks, t) for t in range(num_frames - 1)]) if num_frames > 1 \
        else np.zeros((0, 2, size, size), np.float32)
    visible = np.stack([still_visible(video, flows[t], t) for t in range(num_frames - 1)]) if num_frames > 1 \
        else np.zeros((0, size, size), bool)
    degraded = np.array([bool(a.deteriorations) or any(i.deteriorations for i in a.instances)
                         for a in video.annotations])
    return SegmentationVideo(video.name, np.stack(video.frames), labels, flows, visible, degraded)


def segmentation_videos(num_videos: int, num_frames: int, size: int, seed: int, severity: float = 1.0,
                        single_class: bool = False, first_index: int = 0) -> list[SegmentationVideo]:
    """Videos ``first_index .. first_index + num_videos - 1``."""
    return [segmentation_video(first_index + i, num_frames, size, seed, severity, single_class)
            for i in range(num_videos)]

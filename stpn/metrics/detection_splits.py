"""Which ground truth and which frames each split of the detection report looks at.

* Motion speed (FGFA, docs/design.md §5): every object instance gets a speed group from its track's
  motion IoU over frames ``t ± 10`` (:mod:`stpn.data.motion_speed`). The split for group ``g``
  keeps all frames and ignores the ground truth of the other groups.
* Deterioration: a frame is *degraded* if a frame-wide deterioration or one on any of its objects
  hit it, *clean* otherwise; the subset of a deterioration kind is the frames that kind hit.

Nothing here touches pycocotools: these are ``ignore_fn``s and frame subsets for
:func:`stpn.metrics.coco_detection.evaluate_detections`.
"""
from __future__ import annotations

from stpn.data.types import Instance, VideoDataset
from stpn.metrics.coco_format import IgnoreFn
from stpn.data.motion_speed import SPEED_GROUPS, motion_ious, speed_group

Frame = tuple[int, int]  # (video index, frame index)


def speed_groups(dataset: VideoDataset, radius: int = 10) -> dict[tuple[int, int, int], str]:
    """Speed group (``"slow"`` / ``"medium"`` / ``"fast"``) of every ``(video, frame, track_id)``."""
    groups: dict[tuple[int, int, int], str] = {}
    for v, video in enumerate(dataset.videos):
        tracks = []
        for t, frame in enumerate(video.annotations):
            boxes = {inst.track_id: inst.box for inst in frame.instances}
            if len(boxes) != len(frame.instances):
                raise ValueError(f"video {video.name!r} frame {t}: a track id appears twice, so motion IoU "
                                 "(which follows tracks) is undefined")
            tracks.append(boxes)
        for t, frame_ious in enumerate(motion_ious(tracks, radius)):
            groups.update({(v, t, track_id): speed_group(m) for track_id, m in frame_ious.items()})
    return groups


def ignore_other_speeds(groups: dict[tuple[int, int, int], str], keep: str) -> IgnoreFn:
    """``ignore_fn`` that ignores every object whose speed group is not ``keep``."""
    if keep not in SPEED_GROUPS:
        raise ValueError(f"speed group must be one of {SPEED_GROUPS}, got {keep!r}")

    def ignore(v: int, t: int, inst: Instance) -> bool:
        return groups[(v, t, inst.track_id)] != keep

    return ignore


def frame_deteriorations(dataset: VideoDataset) -> dict[Frame, frozenset[str]]:
    """Every deterioration that hit each frame, frame-wide or on any of its objects."""
    return {
        (v, t): frozenset(frame.deteriorations).union(*(inst.deteriorations for inst in frame.instances))
        for v, video in enumerate(dataset.videos) for t, frame in enumerate(video.annotations)
    }


def deterioration_subsets(dataset: VideoDataset) -> tuple[list[Frame], list[Frame], dict[str, list[Frame]]]:
    """``(degraded frames, clean frames, {kind: frames that kind hit})``, kinds sorted by name."""
    hits = frame_deteriorations(dataset)
    degraded = [frame for frame, kinds in hits.items() if kinds]
    clean = [frame for frame, kinds in hits.items() if not kinds]
    by_kind = {kind: [frame for frame, kinds in hits.items() if kind in kinds]
               for kind in sorted(set().union(*hits.values()))}
    return degraded, clean, by_kind

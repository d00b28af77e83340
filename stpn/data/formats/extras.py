"""Side-car files for what a format cannot carry, so the synthetic benchmark round-trips.

``stpn_extras.json`` (one per video, written only when there is something to keep) holds
per frame the frame-wide deteriorations and, per track id, the object's deteriorations, its exact
``visible_fraction`` and its mask (compressed COCO RLE)::

    {"frames": [{"deteriorations": ["noise"],
                 "objects": {"3": {"deteriorations": ["motion_blur"], "visible_fraction": 0.4,
                                   "mask": {"size": [H, W], "counts": "..."}}}}, ...]}

Default values (no deteriorations, fully visible, no mask) are left out. ImageNet VID and GOT-10k
use it; the JSON formats (CocoVID, YouTube-VIS) carry the same values as extra keys instead.

``categories.txt`` (one class name per line, at the dataset root) records the class list of a
written dataset whose files only name classes (VID ``<name>``, GOT-10k ``object_class``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

from stpn.data.formats.errors import ProblemLog
from stpn.data.formats.geometry import decode_mask, encode_mask
from stpn.data.formats.json_fields import load_json
from stpn.data.formats.text_files import read_lines
from stpn.data.types import DETERIORATIONS, FrameAnnotation

SIDECAR_NAME = "stpn_extras.json"
CATEGORIES_NAME = "categories.txt"


def parse_deteriorations(value: Any, log: ProblemLog, file: Any, field: str) -> tuple[str, ...]:
    """A JSON list of deterioration names → tuple; unknown names are reported and dropped."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        log.report(file, field, f"expected a list of deterioration names, got {value!r}")
        return ()
    unknown = [v for v in value if v not in DETERIORATIONS]
    if unknown:
        log.report(file, field, f"unknown deteriorations {unknown}; known: {list(DETERIORATIONS)}")
    return tuple(v for v in value if v in DETERIORATIONS)


def parse_visible_fraction(value: Any, log: ProblemLog, file: Any, field: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0:
        return float(value)
    log.report(file, field, f"visible_fraction must be a number in [0, 1], got {value!r}")
    return 1.0


def _object_extras(inst) -> dict:
    extras: dict[str, Any] = {}
    if inst.deteriorations:
        extras["deteriorations"] = list(inst.deteriorations)
    if inst.visible_fraction != 1.0:
        extras["visible_fraction"] = float(inst.visible_fraction)
    if inst.mask is not None:
        extras["mask"] = encode_mask(inst.mask)
    return extras


def write_sidecar(path: Path, annotations: Sequence[FrameAnnotation]) -> Optional[Path]:
    """Write the side-car ``path`` if any frame or object has a non-default extra."""
    frames, anything = [], False
    for annotation in annotations:
        entry: dict[str, Any] = {}
        if annotation.deteriorations:
            entry["deteriorations"] = list(annotation.deteriorations)
        objects = {str(i.track_id): e for i in annotation.instances if (e := _object_extras(i))}
        if objects:
            entry["objects"] = objects
        anything = anything or bool(entry)
        frames.append(entry)
    if not anything:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"frames": frames}))
    return path


def apply_sidecar(
    path: Path, annotations: list[FrameAnnotation], height: int, width: int, log: ProblemLog,
    incomplete: Optional[Sequence[bool]] = None,
) -> None:
    """Merge the side-car ``path`` (if it exists) into ``annotations`` in place.

    ``incomplete[t]`` marks frames whose annotation lost objects on reading (already reported, or
    of classes not read); entries for objects missing from those frames are ignored silently."""
    path = Path(path)
    if not path.is_file():
        return
    data = load_json(path, log)
    frames = data.get("frames") if isinstance(data, dict) else None
    if not isinstance(frames, list):
        if data is not None:
            log.report(path, "frames", "expected a list with one entry per frame")
        return
    if len(frames) != len(annotations):
        log.report(path, "frames", f"{len(frames)} entries for a video of {len(annotations)} frames")
        return
    for t, (entry, annotation) in enumerate(zip(frames, annotations)):
        if not isinstance(entry, dict):
            log.report(path, f"frames[{t}]", "expected an object")
            continue
        value = entry.get("deteriorations")
        annotation.deteriorations = parse_deteriorations(value, log, path, f"frames[{t}].deteriorations")
        by_track = {str(i.track_id): i for i in annotation.instances}
        objects = entry.get("objects") or {}
        if not isinstance(objects, dict):
            log.report(path, f"frames[{t}].objects", "expected an object keyed by track id")
            continue
        for key, extras in objects.items():
            where = f"frames[{t}].objects.{key}"
            inst = by_track.get(key)
            if inst is None and incomplete is not None and incomplete[t]:
                continue
            if inst is None or not isinstance(extras, dict):
                log.report(path, where, "no object with this track id in the frame's annotation")
                continue
            value = extras.get("deteriorations")
            inst.deteriorations = parse_deteriorations(value, log, path, f"{where}.deteriorations")
            if "visible_fraction" in extras:
                value = extras["visible_fraction"]
                inst.visible_fraction = parse_visible_fraction(value, log, path, f"{where}.visible_fraction")
            if "mask" in extras:
                try:
                    inst.mask = decode_mask(extras["mask"], height, width)
                except ValueError as exc:
                    log.report(path, f"{where}.mask", str(exc))


def write_categories(root: Path, categories: Sequence[str]) -> Path:
    for name in categories:
        if not name or "\n" in name or name != name.strip():
            raise ValueError(f"category name {name!r} must be non-empty, one line, without surrounding spaces")
    path = Path(root) / CATEGORIES_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{name}\n" for name in categories))
    return path


def read_categories(root: Path, log: ProblemLog) -> Optional[list[str]]:
    """The class list in ``root/categories.txt``, or ``None`` when there is none."""
    path = Path(root) / CATEGORIES_NAME
    if not path.is_file():
        return None
    names = read_lines(path, log)
    if names is None:
        return None
    if len(set(names)) != len(names):
        log.report(path, "names", "a class name is listed twice")
    if not names:
        log.report(path, "names", "no class names")
    return names

"""One ImageNet VID / DET frame annotation as PASCAL-style XML, and the 30 VID classes.

A VID frame file looks like::

    <annotation>
      <folder>ILSVRC2015_VID_train_0000/ILSVRC2015_train_00000000</folder>
      <filename>000000</filename>
      <size><width>1280</width><height>720</height></size>
      <object>
        <trackid>0</trackid>
        <name>n01674464</name>
        <bndbox><xmax>1050</xmax><xmin>271</xmin><ymax>672</ymax><ymin>63</ymin></bndbox>
        <occluded>0</occluded>
        <generated>0</generated>
      </object>
    </annotation>

DET still-image files have the same layout without ``trackid`` / ``occluded`` / ``generated``
(objects then get track ids 0, 1, ... in file order). Coordinates are whole pixels: the writer
rounds to the nearest integer (widening a box that would collapse to one pixel), the reader keeps
them as ``x1, y1, x2, y2`` without the ``-1`` some loaders apply. ``<occluded>`` is written as
``visible_fraction < 1``; read back without a side-car, an occluded object gets
``visible_fraction = 0.5`` (the flag does not say how much is hidden).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from stpn.data.formats.errors import ProblemLog
from stpn.data.formats.extras import read_categories
from stpn.data.formats.geometry import check_box
from stpn.data.types import FrameAnnotation, Instance

# (WordNet synset, class name) of the 30 VID classes, in the usual label order.
VID_CLASSES = (
    ("n02691156", "airplane"), ("n02419796", "antelope"), ("n02131653", "bear"),
    ("n02834778", "bicycle"), ("n01503061", "bird"), ("n02924116", "bus"),
    ("n02958343", "car"), ("n02402425", "cattle"), ("n02084071", "dog"),
    ("n02121808", "domestic_cat"), ("n02503517", "elephant"), ("n02118333", "fox"),
    ("n02510455", "giant_panda"), ("n02342885", "hamster"), ("n02374451", "horse"),
    ("n02129165", "lion"), ("n01674464", "lizard"), ("n02484322", "monkey"),
    ("n03790512", "motorcycle"), ("n02324045", "rabbit"), ("n02509815", "red_panda"),
    ("n02411705", "sheep"), ("n01726692", "snake"), ("n02355227", "squirrel"),
    ("n02129604", "tiger"), ("n04468005", "train"), ("n01662784", "turtle"),
    ("n04530566", "watercraft"), ("n02062744", "whale"), ("n02391049", "zebra"),
)
OCCLUDED_VISIBLE_FRACTION = 0.5


def category_lookup(categories: Sequence[str]) -> dict[str, int]:
    """Lower-cased ``<name>`` → category index; VID synsets and class names both resolve."""
    aliases = {s: n for s, n in VID_CLASSES} | {n: s for s, n in VID_CLASSES}
    lookup: dict[str, int] = {}
    for index, name in enumerate(categories):
        lookup[name.lower()] = index
        if name.lower() in aliases:
            lookup.setdefault(aliases[name.lower()], index)
    return lookup


def integer_box(box: np.ndarray, width: int, height: int) -> list[int]:
    """Round an xyxy box to whole pixels inside the image, keeping at least one pixel per side."""
    x1, y1, x2, y2 = (int(np.floor(float(v) + 0.5)) for v in box)
    x1, x2 = min(max(x1, 0), width - 1), min(max(x2, 1), width)
    y1, y2 = min(max(y1, 0), height - 1), min(max(y2, 1), height)
    return [x1, y1, max(x2, x1 + 1), max(y2, y1 + 1)]


def frame_xml(annotation: FrameAnnotation, categories: Sequence[str], folder: str, filename: str,
              width: int, height: int) -> bytes:
    """Serialise one frame's objects (``categories`` gives the ``<name>`` text)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder
    ET.SubElement(root, "filename").text = filename
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "stpn"
    size = ET.SubElement(root, "size")
    ET.SubElement(size, "width").text = str(width)
    ET.SubElement(size, "height").text = str(height)
    for inst in annotation.instances:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "trackid").text = str(inst.track_id)
        ET.SubElement(obj, "name").text = categories[inst.category_id]
        bndbox = ET.SubElement(obj, "bndbox")
        x1, y1, x2, y2 = integer_box(inst.box, width, height)
        for tag, value in (("xmax", x2), ("xmin", x1), ("ymax", y2), ("ymin", y1)):
            ET.SubElement(bndbox, tag).text = str(value)
        ET.SubElement(obj, "occluded").text = "1" if inst.visible_fraction < 1.0 else "0"
        ET.SubElement(obj, "generated").text = "0"
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8")


@dataclass
class ParsedFrame:
    width: int
    height: int
    annotation: FrameAnnotation
    dropped: bool = False  # some objects were left out (bad, or of classes not read)


def _number(element: Optional[ET.Element], tag: str) -> Optional[float]:
    """The finite number in ``element/<tag>``, or ``None``."""
    node = element.find(tag) if element is not None else None
    try:
        value = float(node.text) if node is not None and node.text else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) else None


def _int(element: Optional[ET.Element], tag: str) -> Optional[int]:
    value = _number(element, tag)
    return int(value) if value is not None and value == int(value) else None


def parse_frame_xml(
    path: Path, lookup: dict[str, int], log: ProblemLog, skip_unknown: bool = False
) -> Optional[ParsedFrame]:
    """Read one frame file; problems go to ``log`` (bad objects are skipped, an unreadable file
    gives ``None``). ``skip_unknown`` drops objects of classes outside ``lookup`` silently (DET
    files carry 200 classes, of which VID uses 30) instead of reporting them."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        log.report(path, "file", "annotation file not found")
        return None
    except ET.ParseError as exc:
        log.report(path, "xml", f"not well-formed XML: {exc}")
        return None
    size = root.find("size")
    width, height = _int(size, "width"), _int(size, "height")
    if not width or not height or width < 1 or height < 1:
        log.report(path, "size", "missing or invalid <size><width>/<height>")
        return None
    instances: list[Instance] = []
    objects = root.findall("object")
    for k, obj in enumerate(objects):
        where = f"object[{k}]"
        name_node = obj.find("name")
        name = (name_node.text or "").strip().lower() if name_node is not None else ""
        track_id = _int(obj, "trackid") if obj.find("trackid") is not None else k
        if name not in lookup:
            if not skip_unknown:
                log.report(path, f"{where}.name", f"unknown class {name!r}")
            continue
        if track_id is None:
            log.report(path, f"{where}.trackid", "not an integer")
            continue
        if any(i.track_id == track_id for i in instances):
            log.report(path, f"{where}.trackid", f"track id {track_id} appears twice in the frame")
            continue
        coords = [_number(obj.find("bndbox"), tag) for tag in ("xmin", "ymin", "xmax", "ymax")]
        if any(c is None for c in coords):
            log.report(path, f"{where}.bndbox", "needs numeric xmin, ymin, xmax and ymax")
            continue
        box = check_box(np.array(coords, dtype=np.float32), width, height, log, path, f"{where}.bndbox")
        if box is None:
            continue
        visible = OCCLUDED_VISIBLE_FRACTION if _int(obj, "occluded") == 1 else 1.0
        instances.append(Instance(track_id, lookup[name], box, visible_fraction=visible))
    return ParsedFrame(width, height, FrameAnnotation(instances), dropped=len(instances) < len(objects))


def resolve_categories(root: Path, categories: Optional[Sequence[str]], log: ProblemLog) -> list[str]:
    """The class list: ``categories`` if given, else ``root/categories.txt`` (written by
    :func:`~stpn.data.formats.vid.write_imagenet_vid`), else the 30 VID class names."""
    if categories is not None:
        return list(categories)
    return read_categories(root, log) or [name for _, name in VID_CLASSES]

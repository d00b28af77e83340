"""Several splits of one dataset root read as one :class:`~stpn.data.types.VideoDataset`, with
the key frames (the frames that become training clips) of every split.

The ``data:`` section of a run config names the splits (``train_splits: [train, DET/train]``) and,
optionally, their key frames::

    key_frames:                                   # per split; a plain string applies to every split
      train: ImageSets/VID/VID_train_15frames.txt
      DET/train: ImageSets/DET/DET_train_30classes.txt

A value is ``all`` (every frame), ``annotated`` (frames with at least one object) or a list file.
Choices made here, and why:

* No ``key_frames`` (or a split left out of the mapping) means ``all``: what ``stpn train`` did
  before the option existed, so older configs train as they did.
* A list path is relative to the dataset ``root``. If it is not there, the same file name is
  looked up in ``ImageSets/``, ``ImageSets/VID/`` and ``ImageSets/DET/``, because FGFA/MEGA and
  SELSA put these (unofficial) lists in different folders; a list found nowhere is an error
  naming the path, never a silent fall-back to all frames.
* A VID list (``VID_train_15frames.txt``: 15 frames per video, the paper's recipe, docs/design.md §3.5)
  selects frames of the videos read from the split as usual, so a line naming a video or frame
  that is not in the dataset is an error naming that line (:func:`read_key_frames`).
* A DET list (``DET_train_30classes.txt``) selects which still images are read at all: ILSVRC
  DET train holds ~450k images of 200 classes and the list keeps the ~53k with VID classes, so
  reading everything first would be slow. Every listed image is a key frame (a clip of copies of
  itself, see :mod:`stpn.data.clips`).
* Key frames address the concatenated dataset: those of a later split are offset by the number
  of videos of the splits before it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

from stpn.data.clips import KeyFrames, select_key_frames
from stpn.data.formats import DET_PREFIX, detect_format, read_dataset, read_imagenet_det, read_key_frames
from stpn.data.formats.image_sets import find_image_set
from stpn.data.types import VideoDataset

KEY_FRAME_MODES = ("all", "annotated")


def key_frames_per_split(option: Any, splits: Sequence[str]) -> dict[str, str]:
    """The ``key_frames`` option as ``{split: "all" | "annotated" | list path}``."""
    if option is None:
        option = "all"
    if isinstance(option, str):
        option = {split: option for split in splits}
    if not isinstance(option, dict):
        raise ValueError(f"key_frames must be 'all', 'annotated', a list file or a mapping split -> one of "
                         f"these, got {option!r}")
    unknown = sorted(set(option) - set(splits))
    if unknown:
        raise ValueError(f"key_frames names splits {unknown} that are not among the splits {list(splits)}")
    chosen = {split: option.get(split, "all") for split in splits}
    for split, value in chosen.items():
        if not isinstance(value, str):
            raise ValueError(f"key_frames of split {split!r} must be 'all', 'annotated' or a list file, got {value!r}")
    return chosen


def resolve_key_frame_list(root: Union[str, Path], value: str) -> Path:
    """The list file ``value`` (relative to ``root``, else found by name in the ImageSets folders)."""
    root = Path(root)
    path = root / value
    found = path if path.is_file() else find_image_set(root, [Path(value).name])
    if found is None:
        raise FileNotFoundError(
            f"key-frame list {path} not found (nor {Path(value).name} in {root / 'ImageSets'}, ImageSets/VID or "
            f"ImageSets/DET); put the list there, or set `key_frames: annotated` in the data section to train "
            f"on every annotated frame instead")
    return found


def read_split(
    root: Union[str, Path], fmt: str, split: str, key_frames: str = "all"
) -> tuple[VideoDataset, KeyFrames]:
    """One split and its key frames (a mode or ``(video, frame)`` pairs of this split)."""
    if key_frames in KEY_FRAME_MODES:
        return read_dataset(root, fmt, split), key_frames
    list_file = resolve_key_frame_list(root, key_frames)
    if fmt == "vid" and split.startswith(DET_PREFIX):
        return read_imagenet_det(root, split[len(DET_PREFIX):], image_set=list_file), "all"
    part = read_dataset(root, fmt, split)
    return part, read_key_frames(list_file, part, split)


def read_splits(
    root: Union[str, Path], fmt: Optional[str], splits: Union[str, Sequence[str]], key_frames: Any = None
) -> tuple[VideoDataset, list[tuple[int, int]]]:
    """The splits concatenated (they must share their categories) and the key frames as
    ``(video index in the concatenated dataset, frame index)``; ``key_frames`` is the config
    option (see the module docstring)."""
    splits = [splits] if isinstance(splits, str) else list(splits)
    fmt = fmt or detect_format(root)
    per_split = key_frames_per_split(key_frames, splits)
    parts = [read_split(root, fmt, split, per_split[split]) for split in splits]
    categories = parts[0][0].categories
    for split, (part, _) in zip(splits[1:], parts[1:]):
        if part.categories != categories:
            raise ValueError(f"split {split!r} has categories {part.categories}, {splits[0]!r} has {categories}")
    items, offset = [], 0
    for part, chosen in parts:
        items += [(offset + v, t) for v, t in select_key_frames(part, chosen)]
        offset += len(part.videos)
    return VideoDataset(categories, [video for part, _ in parts for video in part.videos]), items

"""ImageNet ``ImageSets/*.txt`` lists (one item per line, space-separated columns).

* video lists (``VID_val_videos.txt``): ``val/<video> <first global frame number> 0 <frames>``
* key-frame lists (``VID_train_15frames.txt``): ``train/<video> 1 <frame index> <frames>``
* frame / image lists (``VID_val_frames.txt``, ``DET_train_30classes.txt``):
  ``<split>/<path> <running number>``

Lists are looked up in ``ImageSets/``, ``ImageSets/VID/`` and ``ImageSets/DET/`` (FGFA/MEGA keep
them in the first, SELSA in the second, ILSVRC's own DET lists live in the third).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Optional, Union

from stpn.data.formats.errors import ProblemLog
from stpn.data.formats.text_files import read_text


def find_image_set(root: Path, names: Iterable[str]) -> Optional[Path]:
    """The first of ``names`` found in ``root/ImageSets`` or its ``VID`` / ``DET`` subfolders."""
    for name in names:
        for folder in (root / "ImageSets", root / "ImageSets" / "VID", root / "ImageSets" / "DET"):
            if (folder / name).is_file():
                return folder / name
    return None


def resolve_image_set(root: Path, image_set: Union[str, Path]) -> Path:
    """An explicit list: a path, or a file name inside the ImageSets folders."""
    path = Path(image_set)
    if path.is_file():
        return path
    return find_image_set(root, [str(image_set)]) or path


def image_set_lines(path: Path, split: str, log: ProblemLog) -> Iterator[tuple[str, list[str], str]]:
    """Yield ``(path inside the split, remaining columns, field name)`` per non-empty line.

    The first column must start with ``<split>/``; lines that do not are reported and skipped.
    """
    try:
        text = read_text(path, log)
    except (FileNotFoundError, IsADirectoryError):
        log.report(path, "file", "image set list not found")
        return
    if text is None:  # not UTF-8 (reported)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        field = f"line {number}"
        prefix = f"{split}/"
        if not tokens[0].startswith(prefix):
            log.report(path, field, f"{tokens[0]!r} is not inside split {split!r}")
            continue
        yield tokens[0][len(prefix):], tokens[1:], field


def write_image_set(root: Path, name: str, lines: list[str]) -> Path:
    path = root / "ImageSets" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path

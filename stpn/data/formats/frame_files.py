"""Finding the frame files of a video folder and reading image sizes without decoding pixels."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from stpn.data.formats.errors import ProblemLog

JPEG_SUFFIXES = (".jpg", ".jpeg")


def list_frames(directory: Path, suffixes: tuple[str, ...] = JPEG_SUFFIXES) -> list[Path]:
    """Image files directly in ``directory`` (suffix case-insensitive), sorted by name."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def image_size(path: Path, log: ProblemLog, field: str = "image", decode: bool = False) -> Optional[tuple[int, int]]:
    """``(width, height)`` from the image header (``decode``: after decoding every pixel, which
    finds corrupt and truncated files); an unreadable file is reported."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            if decode:
                img.load()
            return img.size
    except FileNotFoundError:
        log.report(path, field, "frame file not found")
    except (UnidentifiedImageError, OSError) as exc:
        log.report(path, field, f"not a readable image: {exc}")
    return None


def check_numbering(frames: list[Path], first: int, directory: Path, log: ProblemLog) -> bool:
    """Frame files must be numbered ``first, first + 1, ...`` without gaps (``000000.JPEG`` or
    ``00000001.jpg``); a gap means a missing frame file and is reported."""
    for offset, path in enumerate(frames):
        if not path.stem.isdigit() or int(path.stem) != first + offset:
            log.report(directory, "frames", f"frame files must be numbered from {first} without gaps; "
                       f"found {path.name} where frame number {first + offset} was expected (missing frame file?)")
            return False
    return True

"""Dataset formats on disk, read into and written from :mod:`stpn.data.types`.

``vid`` (ImageNet VID, plus DET still images), ``cocovid`` (mmtracking's CocoVID JSON), ``ytvis``
(YouTube-VIS 2019) and ``got10k`` (GOT-10k). Writers take ``(videos, categories, root)`` and
stream: a video is written as soon as the iterable yields it. Readers return a
:class:`~stpn.data.types.VideoDataset` whose frames are file paths, and raise a
:class:`~stpn.data.formats.errors.DatasetFormatError` naming the file and field at fault (or,
given a collecting :class:`~stpn.data.formats.errors.ProblemLog`, report every problem).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from stpn.data.formats.cocovid import cocovid_splits, read_cocovid, write_cocovid
from stpn.data.formats.det import det_splits, read_imagenet_det, write_imagenet_det
from stpn.data.formats.errors import DatasetFormatError, ProblemLog
from stpn.data.formats.got10k import got10k_splits, read_got10k, write_got10k
from stpn.data.formats.vid import read_imagenet_vid, read_key_frames, vid_splits, write_imagenet_vid
from stpn.data.formats.writing import WriteSummary
from stpn.data.formats.ytvis import read_ytvis, write_ytvis, ytvis_splits
from stpn.data.formats.ytvis_results import read_ytvis_results, write_ytvis_results, ytvis_result
from stpn.data.types import Video, VideoDataset

FORMATS = ("vid", "cocovid", "ytvis", "got10k")
DET_PREFIX = "DET/"  # split names "DET/<split>" select the DET still images of an ImageNet root


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")


def detect_format(root: Union[str, Path]) -> str:
    """Guess the format from the folder layout (CocoVID first: mmtracking keeps its JSON beside
    the ImageNet ``Data`` folder)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(root, "root", "not a directory")
    if cocovid_splits(root):
        return "cocovid"
    if ytvis_splits(root):
        return "ytvis"
    if vid_splits(root) or det_splits(root):
        return "vid"
    if got10k_splits(root):
        return "got10k"
    raise DatasetFormatError(root, "layout", "no known dataset layout: expected Data/VID/<split> (ImageNet VID), "
                             "annotations/<split>.json (CocoVID), <split>.json + <split>/JPEGImages (YouTube-VIS) "
                             "or <split>/list.txt (GOT-10k)")


def dataset_splits(root: Union[str, Path], fmt: str) -> list[str]:
    """The splits present under ``root`` in format ``fmt``."""
    _check_format(fmt)
    if fmt == "vid":
        return vid_splits(root) + [DET_PREFIX + s for s in det_splits(root)]
    if fmt == "cocovid":
        return cocovid_splits(root)
    if fmt == "ytvis":
        return ytvis_splits(root)
    return got10k_splits(root)


def read_dataset(
    root: Union[str, Path], fmt: Optional[str] = None, split: str = "train", log: Optional[ProblemLog] = None
) -> VideoDataset:
    """Read one split of a dataset in any format (detected when ``fmt`` is ``None``)."""
    fmt = fmt or detect_format(root)
    _check_format(fmt)
    if fmt == "vid" and split.startswith(DET_PREFIX):
        return read_imagenet_det(root, split[len(DET_PREFIX):], log=log)
    if fmt == "vid":
        return read_imagenet_vid(root, split, log=log)
    if fmt == "cocovid":
        return read_cocovid(root, split, log=log)
    if fmt == "ytvis":
        return read_ytvis(root, split, log=log)
    return read_got10k(root, split, log=log)


def write_dataset(
    videos: Iterable[Video], categories: Sequence[str], root: Union[str, Path], fmt: str, split: str = "train"
) -> WriteSummary:
    """Write ``videos`` in format ``fmt`` (streaming)."""
    _check_format(fmt)
    if fmt == "vid":
        return write_imagenet_vid(videos, categories, root, split)
    if fmt == "cocovid":
        return write_cocovid(videos, categories, root, split)
    if fmt == "ytvis":
        return write_ytvis(videos, categories, root, split)
    return write_got10k(videos, categories, root, split)


__all__ = [
    "DatasetFormatError", "FORMATS", "ProblemLog", "WriteSummary", "dataset_splits", "detect_format",
    "read_cocovid", "read_dataset", "read_got10k", "read_imagenet_det", "read_imagenet_vid", "read_key_frames",
    "read_ytvis", "read_ytvis_results", "write_cocovid", "write_dataset", "write_got10k", "write_imagenet_det",
    "write_imagenet_vid", "write_ytvis", "write_ytvis_results", "ytvis_result",
]

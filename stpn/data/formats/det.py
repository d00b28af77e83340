"""ImageNet DET still images (used beside VID for training, docs/design.md §3.5), read as one-frame
videos::

    root/Data/DET/<split>/<image>.JPEG
    root/Annotations/DET/<split>/<image>.xml            (see vid_xml.py; no trackid needed)
    root/ImageSets/DET_<split>.txt  or  DET_<split>_30classes.txt   (``<split>/<image> <n>``)

DET files label 200 classes; objects of classes outside ``categories`` (by default the 30 VID
classes) are dropped silently, as every VID detector does. Extras go to
``Annotations/DET/<split>/<image>.stpn_extras.json``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

from stpn.data.formats.errors import ProblemLog, strict_if_none
from stpn.data.formats.extras import SIDECAR_NAME, apply_sidecar, write_categories, write_sidecar
from stpn.data.formats.image_sets import find_image_set, image_set_lines, resolve_image_set, write_image_set
from stpn.data.formats.vid_xml import category_lookup, frame_xml, parse_frame_xml, resolve_categories
from stpn.data.formats.writing import WriteSummary, checked_videos, save_frame
from stpn.data.types import Video, VideoDataset


def _sidecar(ann_root: Path, name: str) -> Path:
    return ann_root / f"{name}.{SIDECAR_NAME}"


def write_imagenet_det(
    images: Iterable[Video], categories: Sequence[str], root: Union[str, Path], split: str = "train"
) -> WriteSummary:
    """Write one-frame videos as DET images; a longer video is a ``ValueError``."""
    root, categories = Path(root), list(categories)
    summary = WriteSummary("vid", root)
    ann_root = root / "Annotations" / "DET" / split
    lines = []
    for image in checked_videos(images, categories, summary):
        if len(image) != 1:
            raise ValueError(f"DET holds still images; {image.name!r} has {len(image)} frames")
        save_frame(image.frames[0], root / "Data" / "DET" / split / f"{image.name}.JPEG")
        xml_path = ann_root / f"{image.name}.xml"
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        xml_path.write_bytes(frame_xml(image.annotations[0], categories, split, image.name, image.width, image.height))
        write_sidecar(_sidecar(ann_root, image.name), image.annotations)
        lines.append(f"{split}/{image.name} {len(lines) + 1}")
    summary.files += [write_image_set(root, f"DET_{split}.txt", lines), write_categories(root, categories)]
    return summary


def det_splits(root: Union[str, Path]) -> list[str]:
    folder = Path(root) / "Data" / "DET"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def read_imagenet_det(
    root: Union[str, Path], split: str = "train", image_set: Union[str, Path, None] = None,
    categories: Optional[Sequence[str]] = None, log: Optional[ProblemLog] = None,
) -> VideoDataset:
    """Read DET images as one-frame videos. Images come from ``image_set``, else
    ``DET_<split>.txt`` / ``DET_<split>_30classes.txt`` if present, else every annotation file
    of the split."""
    log, root = strict_if_none(log), Path(root)
    categories = resolve_categories(root, categories, log)
    lookup = category_lookup(categories)
    ann_root = root / "Annotations" / "DET" / split
    list_file = (resolve_image_set(root, image_set) if image_set
                 else find_image_set(root, [f"DET_{split}.txt", f"DET_{split}_30classes.txt"]))
    if list_file:
        entries = [(path, (list_file, field)) for path, _, field in image_set_lines(list_file, split, log)]
    else:
        names = sorted(p.relative_to(ann_root).with_suffix("").as_posix() for p in ann_root.rglob("*.xml"))
        entries = [(name, None) for name in names]
    images = []
    for name, listed_at in entries:
        frame = root / "Data" / "DET" / split / f"{name}.JPEG"
        if not frame.is_file():
            file, field = listed_at or (frame, "frame file")  # a listed image: at its line of the list
            log.report(file, field, f"image {name!r} has no frame file {frame}")
            continue
        parsed = parse_frame_xml(ann_root / f"{name}.xml", lookup, log, skip_unknown=True)
        if parsed is None:
            continue
        annotations = [parsed.annotation]
        apply_sidecar(_sidecar(ann_root, name), annotations, parsed.height, parsed.width, log, [parsed.dropped])
        images.append(Video(name, [frame], annotations, height=parsed.height, width=parsed.width))
    if not images:
        log.report(ann_root, "images", "no images found")
    return VideoDataset(categories, images)

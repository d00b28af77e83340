"""GOT-10k results and ground truth on disk, in the got10k toolkit's layout.

Results of tracker ``name`` on sequence ``seq`` (the toolkit's ``ExperimentGOT10k`` puts them
under ``<result_dir>/GOT-10k``; pass that folder as ``results_dir`` to read its files)::

    results_dir/name/seq/seq_001.txt   one "x,y,w,h" line per frame, 3 decimals (repetition 1)
    results_dir/name/seq/seq_time.txt  one line per frame: seconds, 8 decimals (one column per
                                       repetition; only the first is written / read here)

Deterministic trackers run one repetition, which is all this module reads and writes. Ground
truth is read straight from ``groundtruth.txt`` / ``cover.label`` / ``meta_info.ini`` in float64,
as the toolkit does, so metrics from these files equal the toolkit's bit for bit.
"""
from __future__ import annotations

import configparser
import re
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np

from stpn.metrics.got10k import SequenceResult, got10k_metrics

PathLike = Union[str, Path]


def result_files(results_dir: PathLike, tracker: str, seq: str) -> tuple[Path, Path]:
    """``(boxes file, times file)`` of one sequence."""
    folder = Path(results_dir) / tracker / seq
    return folder / f"{seq}_001.txt", folder / f"{seq}_time.txt"


def write_results(results_dir: PathLike, tracker: str, seq: str, boxes: np.ndarray,
                  times: Optional[np.ndarray] = None) -> Path:
    """Write ``(N, 4)`` xywh boxes (and ``(N,)`` seconds) of one sequence; returns the box file."""
    box_file, time_file = result_files(results_dir, tracker, seq)
    box_file.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(box_file, np.asarray(boxes, dtype=np.float64).reshape(-1, 4), fmt="%.3f", delimiter=",")
    if times is not None:
        np.savetxt(time_file, np.asarray(times, dtype=np.float64).reshape(-1, 1), fmt="%.8f", delimiter=",")
    return box_file


def read_results(results_dir: PathLike, tracker: str, seq: str) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``(boxes (N, 4), times (N,) or None)`` of one sequence."""
    box_file, time_file = result_files(results_dir, tracker, seq)
    if not box_file.is_file():
        raise FileNotFoundError(f"no results for sequence {seq!r}: {box_file} is missing")
    boxes = np.loadtxt(box_file, delimiter=",", ndmin=2)
    if boxes.shape[1:] != (4,):
        raise ValueError(f"{box_file}: expected x,y,w,h per line, got {boxes.shape[1]} columns")
    times = None
    if time_file.is_file():
        times = np.loadtxt(time_file, delimiter=",", ndmin=2)[:, 0]
    return boxes, times


def read_resolution(seq_dir: Path) -> tuple[int, int]:
    """``(width, height)`` from ``meta_info.ini`` (``resolution: (W, H)``), else the first frame."""
    meta_file = seq_dir / "meta_info.ini"
    if meta_file.is_file():
        meta = configparser.ConfigParser(interpolation=None)
        meta.read_string(meta_file.read_text())
        value = meta.get("METAINFO", "resolution", fallback="")
        numbers = re.findall(r"\d+", value)
        if len(numbers) == 2:
            return int(numbers[0]), int(numbers[1])
    frames = sorted(seq_dir.glob("*.jpg"))
    if not frames:
        raise FileNotFoundError(f"{seq_dir}: no meta_info.ini resolution and no frames to measure")
    from PIL import Image

    with Image.open(frames[0]) as image:
        return image.size


def read_ground_truth(seq_dir: PathLike) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``(gt (N, 4) float64 xywh, cover (N,) int, (width, height))`` of a GOT-10k sequence
    folder; without ``cover.label`` every frame has cover 8."""
    seq_dir = Path(seq_dir)
    gt_file = seq_dir / "groundtruth.txt"
    if not gt_file.is_file():
        raise FileNotFoundError(f"{gt_file} is missing")
    gt = np.loadtxt(gt_file, delimiter=",", ndmin=2)
    cover_file = seq_dir / "cover.label"
    cover = np.loadtxt(cover_file, ndmin=1).astype(int) if cover_file.is_file() else np.full(len(gt), 8)
    if len(cover) != len(gt):
        raise ValueError(f"{seq_dir}: {len(cover)} cover labels for {len(gt)} boxes")
    return gt, cover, read_resolution(seq_dir)


def sequence_names(data_root: PathLike, split: str) -> list[str]:
    list_file = Path(data_root) / split / "list.txt"
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file} not found: is {data_root} a GOT-10k root with a {split!r} split?")
    return [line.strip() for line in list_file.read_text().splitlines() if line.strip()]


def load_sequence_results(data_root: PathLike, split: str, results_dir: PathLike, tracker: str) -> list[SequenceResult]:
    """Ground truth and stored results of every sequence of a split, in ``list.txt`` order."""
    out = []
    for seq in sequence_names(data_root, split):
        gt, cover, (width, height) = read_ground_truth(Path(data_root) / split / seq)
        boxes, times = read_results(results_dir, tracker, seq)
        if len(boxes) != len(gt):
            raise ValueError(f"sequence {seq!r}: {len(boxes)} result boxes for {len(gt)} frames")
        out.append(SequenceResult(seq, boxes, gt, cover, width, height, times))
    return out


def evaluate_results(
    data_root: PathLike, split: str, results_dir: PathLike, tracker: str,
    subsets: Optional[Mapping[str, Mapping[str, np.ndarray]]] = None,
) -> dict[str, float]:
    """Metrics of stored results (:func:`~stpn.metrics.got10k.got10k_metrics`).

    ``subsets``: ``{subset name: {sequence name: (N,) bool}}``; each adds ``AO_<name>``,
    ``SR50_<name>``, ``SR75_<name>`` and ``num_frames_<name>``.
    """
    sequences = load_sequence_results(data_root, split, results_dir, tracker)
    report = got10k_metrics(sequences)
    for name, selectors in (subsets or {}).items():
        part = got10k_metrics(sequences, [selectors[s.name] for s in sequences])
        report.update({f"{k}_{name}": part[k] for k in ("AO", "SR50", "SR75")})
        report[f"num_frames_{name}"] = part["num_frames"]
    return report

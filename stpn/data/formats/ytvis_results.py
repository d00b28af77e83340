"""YouTube-VIS prediction files: a JSON list of
``{"video_id": int, "category_id": int, "score": float, "segmentations": [RLE or null per frame]}``
(category ids as in the dataset's JSON, i.e. 1-based; RLE compressed, as the official evaluation
server expects)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from stpn.data.formats.errors import ProblemLog, strict_if_none
from stpn.data.formats.geometry import decode_mask, encode_mask, parse_numbers
from stpn.data.formats.json_fields import is_int, load_json


def ytvis_result(video_id: int, category_id: int, score: float, masks: Sequence[Optional[np.ndarray]]) -> dict:
    """One predicted object track; ``masks`` holds a ``(H, W)`` bool mask or ``None`` per frame."""
    return {"video_id": int(video_id), "category_id": int(category_id), "score": float(score),
            "segmentations": [encode_mask(m) if m is not None else None for m in masks]}


def write_ytvis_results(results: Iterable[dict], path: Union[str, Path]) -> Path:
    """Write results (from :func:`ytvis_result`) as one JSON list."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(results)))
    return path


def read_ytvis_results(path: Union[str, Path], log: Optional[ProblemLog] = None) -> list[dict]:
    """Read and validate a result file; every RLE is decoded once to check it. Invalid entries are
    reported and left out."""
    log, path = strict_if_none(log), Path(path)
    data = load_json(path, log)
    if data is None:
        return []
    if not isinstance(data, list):
        log.report(path, "results", "expected a JSON list of predictions")
        return []
    good = []
    for i, result in enumerate(data):
        where = f"[{i}]"
        if not isinstance(result, dict):
            log.report(path, where, "expected an object")
            continue
        bad = [k for k in ("video_id", "category_id") if not is_int(result.get(k))]
        if bad:
            log.report(path, f"{where}.{bad[0]}", "missing or not an integer")
            continue
        if parse_numbers([result.get("score")], 1) is None:
            log.report(path, f"{where}.score", "missing or not a finite number")
            continue
        segmentations = result.get("segmentations")
        if not isinstance(segmentations, list) or not segmentations:
            log.report(path, f"{where}.segmentations", "needs one RLE (or null) per frame")
            continue
        if _valid_masks(segmentations, f"{where}.segmentations", path, log):
            good.append(result)
    return good


def _valid_masks(segmentations: list, where: str, path: Path, log: ProblemLog) -> bool:
    size = None
    for t, rle in enumerate(segmentations):
        if rle is None:
            continue
        dims = parse_numbers(rle.get("size") if isinstance(rle, dict) else None, 2)
        if dims is None or (size is not None and dims != size):
            log.report(path, f"{where}[{t}].size", "missing, or differs between frames")
            return False
        size = dims
        try:
            decode_mask(rle, int(dims[0]), int(dims[1]))
        except ValueError as exc:
            log.report(path, f"{where}[{t}]", str(exc))
            return False
    return True

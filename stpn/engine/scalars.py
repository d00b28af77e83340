"""Scalar logging: ``<run dir>/scalars.jsonl`` always, TensorBoard when installed.

Each JSONL line is ``{"step": int, "tag": value, ...}`` where ``step`` is the number of optimiser
steps done (TensorBoard's ``global_step``); it is the fallback when the
``tensorboard`` package is missing (one warning is emitted) and an easy format for scripts.
On resume from step ``k``, records with ``step > k`` are dropped (from the JSONL file, and from TensorBoard
through ``purge_step``), so an interrupted stretch is not logged twice.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Mapping, Optional

SCALARS_FILE = "scalars.jsonl"
_warned_missing_tensorboard = False


def _open_tensorboard(log_dir: Path, purge_step: Optional[int]):
    global _warned_missing_tensorboard
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the tensorboard package is not installed
        if not _warned_missing_tensorboard:
            warnings.warn(
                f"tensorboard is not installed: scalars are written only to {log_dir / SCALARS_FILE} "
                "(pip install tensorboard to get TensorBoard event files)",
                stacklevel=3,
            )
            _warned_missing_tensorboard = True
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


def _truncate_jsonl(path: Path, last_step: int) -> None:
    """Keep only the records with ``step <= last_step`` (atomic rewrite)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= last_step]
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(line + "\n" for line in kept))
    os.replace(tmp, path)


class ScalarWriter:
    """``add_scalars({"train/loss": 0.3, ...}, step)``; does nothing when ``enabled`` is False
    (non-main ranks). ``resume_step``: keep the earlier records up to this step, drop later ones."""

    def __init__(self, log_dir: str | Path, enabled: bool = True, resume_step: Optional[int] = None) -> None:
        self.enabled = enabled
        self.log_dir = Path(log_dir)
        self._tb = None
        self._jsonl = None
        if not enabled:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / SCALARS_FILE
        if resume_step is not None:
            _truncate_jsonl(path, resume_step)
        elif path.exists():
            path.unlink()
        self._jsonl = path.open("a")
        self._tb = _open_tensorboard(self.log_dir, None if resume_step is None else resume_step + 1)

    @property
    def tensorboard(self) -> bool:
        """Whether TensorBoard event files are being written."""
        return self._tb is not None

    def add_scalars(self, values: Mapping[str, float], step: int) -> None:
        if not self.enabled:
            return
        clean = {k: float(v) for k, v in values.items()}
        record = {"step": int(step), **{k: (v if math.isfinite(v) else str(v)) for k, v in clean.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for tag, value in clean.items():
                self._tb.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
            self._jsonl = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None

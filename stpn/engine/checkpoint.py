"""Checkpoints (atomic, ``weights_only``-loadable) and safetensors export.

A checkpoint is a dict of plain values and tensors::

    {"format": 1, "model": state_dict, "optimizer": ..., "scheduler": ...,
     "iteration": steps done, "epoch": iteration // iters_per_epoch, "iters_per_epoch": int,
     "config": TrainConfig.to_dict(), "rng": [per-rank RNG state, ...]}

It is written to a temporary file in the same directory and moved into place with
``os.replace``, so a crash while saving never leaves a truncated checkpoint behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Union

import torch
from torch import nn

CHECKPOINT_FILE = "checkpoint.pt"
EXPORT_FILE = "model.safetensors"
CHECKPOINT_FORMAT = 1
PathLike = Union[str, Path]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The wrapped module of a DistributedDataParallel / DataParallel model, else ``model``."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_checkpoint(path: PathLike, checkpoint: Mapping[str, Any]) -> Path:
    """Atomically ``torch.save`` the checkpoint dict to ``path``."""
    path = Path(path)
    _atomic_write(path, lambda tmp: torch.save(dict(checkpoint), tmp))
    return path


def resolve_checkpoint_path(path: PathLike) -> Path:
    """A checkpoint file, or a run directory holding ``checkpoint.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Load a checkpoint (file or run directory) on CPU with ``weights_only=True``."""
    path = resolve_checkpoint_path(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    missing = [k for k in ("model", "optimizer", "scheduler", "iteration", "config") if k not in checkpoint]
    if missing:
        raise ValueError(f"{path} is not an stpn training checkpoint (missing {missing})")
    return checkpoint


def export_safetensors(model: nn.Module, path: PathLike, metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Write the model's weights (DDP wrapper removed, shared tensors de-duplicated) as
    safetensors, atomically. Load them with :func:`load_safetensors`."""
    from safetensors.torch import save_model

    path = Path(path)
    module = unwrap_model(model)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    _atomic_write(path, lambda tmp: save_model(module, tmp, metadata=meta or None))
    return path


def load_safetensors(model: nn.Module, path: PathLike, strict: bool = True) -> nn.Module:
    """Load weights written by :func:`export_safetensors` into ``model`` (in place)."""
    from safetensors.torch import load_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no safetensors file at {path}")
    load_model(unwrap_model(model), str(path), strict=strict)
    return model

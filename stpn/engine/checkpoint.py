"""Checkpoints (atomic, ``weights_only``-loadable) and safetensors export.

A checkpoint is a dict of plain values and tensors::

    {"format": 1, "model": state_dict, "optimizer": ..., "scheduler": ...,
     "iteration": steps done, "epoch": iteration // iters_per_epoch, "iters_per_epoch": int,
     "config": TrainConfig.to_dict(), "rng": [per-rank RNG state, ...]}

It is written to a temporary file in the same directory and moved into place with
``os.replace``, so a crash while saving never leaves a truncated checkpoint behind (and the
temporary files a killed save leaves are removed by the next save: :mod:`stpn.outputs`).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import torch
from torch import nn

from stpn.outputs import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"
EXPORT_FILE = "model.safetensors"
CHECKPOINT_FORMAT = 1
PathLike = Union[str, Path]


def unwrap_model(model: nn.Module) -> nn.Module:
    """The wrapped module of a DistributedDataParallel / DataParallel model, else ``model``."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def save_checkpoint(path: PathLike, checkpoint: Mapping[str, Any]) -> Path:
    """Atomically ``torch.save`` the checkpoint dict to ``path``."""
    path = Path(path)
    atomic_write(path, lambda tmp: torch.save(dict(checkpoint), tmp))
    return path


def resolve_checkpoint_path(path: PathLike) -> Path:
    """A checkpoint file, or a run directory holding ``checkpoint.pt``."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return path


class CheckpointError(ValueError):
    """A weight or checkpoint file that cannot be used; the message names the file."""


def load_torch_file(path: PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; anything it refuses (random bytes, a
    truncated file, a pickle of arbitrary objects) is a :class:`CheckpointError`."""
    try:
        with warnings.catch_warnings():  # torch's note on foreign pickle protocols: the error below says enough
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError, zip / EOF errors, ...: a one-line message, no traceback
        raise CheckpointError(f"{path}: not a stpn checkpoint (unsafe or corrupt pickle refused)") from exc


def _load_safetensors_file(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # SafetensorError, header / size errors
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from exc


WEIGHT_FILES = (EXPORT_FILE, CHECKPOINT_FILE)  # a run's weights, in the order they are looked for


def run_directory(path: Union[str, Path]) -> Path:
    """The run directory of ``path``: ``path`` itself if it is a directory, else the folder of
    the weight file it names."""
    path = Path(path)
    return path if path.is_dir() else path.parent


def read_run_record(path: PathLike, record_file: str, what: str,
                    parse: Optional[Callable[[dict, Path], Any]] = None) -> tuple[Any, Path]:
    """``(record, weights)`` of a training run, given its directory or one of its weight files:
    the JSON dict in ``record_file`` beside the weights, and the weight file (the one given, else
    the first of :data:`WEIGHT_FILES` present). ``parse(record, record_path)``, when given, checks
    and converts the record before the weights are looked for, and its result is returned
    instead. ``what`` names the kind of run in the errors (``FileNotFoundError`` for a missing
    run, record or weights, ``ValueError`` naming the file for a record that is not a JSON object)."""
    import json

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no {what} checkpoint at {path}")
    run_dir = run_directory(path)
    record_path = run_dir / record_file
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} not found: is {run_dir} a {what} run directory?")
    try:
        record = json.loads(record_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{record_path}: not valid JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise ValueError(f"{record_path}: expected a JSON object, got {type(record).__name__}")
    if parse is not None:
        record = parse(record, record_path)
    weights = path if path.is_file() else next((run_dir / f for f in WEIGHT_FILES if (run_dir / f).is_file()), None)
    if weights is None:
        raise FileNotFoundError(f"no {' or '.join(WEIGHT_FILES)} in {run_dir}")
    return record, weights


def read_model_state(path: PathLike) -> dict[str, torch.Tensor]:
    """Model weights from a ``*.safetensors`` export or an engine checkpoint's ``model`` entry."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return _load_safetensors_file(path)
    checkpoint = load_torch_file(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"{path}: not a stpn checkpoint (expected an engine checkpoint with a `model` state dict)")
    return checkpoint["model"]


def load_model_state(model: nn.Module, state: Mapping[str, Any], source: PathLike) -> nn.Module:
    """``model.load_state_dict(state)``; wrong keys or shapes are a :class:`CheckpointError`
    naming ``source``."""
    try:
        unwrap_model(model).load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{source} does not fit this model: {str(exc).splitlines()[0]} "
                              f"{_first_mismatch(str(exc))}".rstrip()) from exc
    return model


def _first_mismatch(message: str) -> str:
    """The first detail line of a ``load_state_dict`` error (missing keys, a shape)."""
    details = [line.strip() for line in message.splitlines()[1:] if line.strip()]
    return f"({details[0][:200]})" if details else ""


def load_checkpoint(path: PathLike) -> dict[str, Any]:
    """Load a checkpoint (file or run directory) on CPU with ``weights_only=True``."""
    path = resolve_checkpoint_path(path)
    checkpoint = load_torch_file(path)
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: not a stpn checkpoint (a {type(checkpoint).__name__}, not a dict)")
    missing = [k for k in ("model", "optimizer", "scheduler", "iteration", "config") if k not in checkpoint]
    if missing:
        raise CheckpointError(f"{path} is not an stpn training checkpoint (missing {missing})")
    return checkpoint


def export_safetensors(model: nn.Module, path: PathLike, metadata: Optional[Mapping[str, str]] = None) -> Path:
    """Write the model's weights (DDP wrapper removed, shared tensors de-duplicated) as
    safetensors, atomically. Load them with :func:`load_safetensors`."""
    from safetensors.torch import save_model

    path = Path(path)
    module = unwrap_model(model)
    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    atomic_write(path, lambda tmp: save_model(module, tmp, metadata=meta or None))
    return path


def load_safetensors(model: nn.Module, path: PathLike, strict: bool = True) -> nn.Module:
    """Load weights written by :func:`export_safetensors` into ``model`` (in place)."""
    from safetensors.torch import load_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no safetensors file at {path}")
    load_model(unwrap_model(model), str(path), strict=strict)
    return model

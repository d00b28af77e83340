"""Choosing the device and moving arbitrary batches onto it."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import torch

from stpn.engine.distributed import DistInfo


def resolve_device(requested: Optional[str], info: DistInfo) -> torch.device:
    """``requested`` if given, else ``cuda:LOCAL_RANK`` when CUDA is available, else CPU."""
    if requested is not None:
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Recursively move tensors in ``batch`` to ``device``: tensors and objects with a ``to``
    method (e.g. torchvision's ``ImageList``), dicts, lists, tuples (named ones too) and
    dataclasses (e.g. :class:`~stpn.detection.clip_batch.ClipBatch`). Anything else is kept."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return type(batch)((k, move_to_device(v, device)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):
        changes = {f.name: move_to_device(getattr(batch, f.name), device) for f in dataclasses.fields(batch) if f.init}
        return dataclasses.replace(batch, **changes)
    if callable(getattr(batch, "to", None)):
        return batch.to(device)
    return batch

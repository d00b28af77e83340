"""Choosing the device, moving arbitrary batches onto it, and bf16 autocast at inference."""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, ContextManager, Iterable, Iterator, Optional, TypeVar

import torch

from stpn.engine.distributed import DistInfo, dist_info

T = TypeVar("T")


def resolve_device(requested: Optional[str], info: DistInfo) -> torch.device:
    """``requested`` if given, else ``cuda:LOCAL_RANK`` when CUDA is available, else CPU."""
    if requested is not None:
        try:
            device = torch.device(requested)
        except RuntimeError:
            raise ValueError(f"unknown device {requested!r} (expected e.g. cpu, cuda, cuda:1)") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {requested!r} requested but CUDA is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def pick_device(requested: Optional[str] = None) -> torch.device:
    """The device of a command that runs a model (``--device``): ``requested`` if given, else
    ``cuda:LOCAL_RANK`` when CUDA is available, else CPU."""
    return resolve_device(requested, dist_info())


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model``'s parameters live (CPU for a model without parameters)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def inference_autocast(device: torch.device, bf16: bool) -> ContextManager:
    """bf16 autocast on ``device`` when ``bf16``, else a no-op context."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def step_under(context: Callable[[], ContextManager], items: Iterable[T]) -> Iterator[T]:
    """Yield from ``items`` with every step of it (each ``next``) run inside ``context()``:
    a lazy pipeline computes under autocast without the context leaking to the caller
    between items."""
    iterator = iter(items)
    while True:
        with context():
            try:
                item = next(iterator)
            except StopIteration:
                return
        yield item


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

"""torchrun / DistributedDataParallel helpers.

``torchrun --nproc_per_node N -m stpn train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and starts the process
group (NCCL when CUDA is available, Gloo otherwise). Without those variables everything runs as
a single process and the helpers degrade gracefully (``all_gather_objects(x) == [x]``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    backend: Optional[str]

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def init_distributed(backend: Optional[str] = None) -> DistInfo:
    """Start the process group from torchrun's environment (idempotent).

    Returns the rank information; with ``WORLD_SIZE`` unset or 1 no process group is created.
    On CUDA, the process's device is set to ``cuda:LOCAL_RANK``.
    """
    if is_dist():
        return dist_info()
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size <= 1:
        return DistInfo(0, 1, 0, None)
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside [0, WORLD_SIZE={world_size})")
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise ValueError(f"WORLD_SIZE={world_size} but {missing} unset: launch with torchrun")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, backend)


def is_dist() -> bool:
    return dist.is_available() and dist.is_initialized()


def dist_info() -> DistInfo:
    """The current process's rank information (single process if no group is running)."""
    if not is_dist():
        return DistInfo(0, 1, 0, None)
    return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0), dist.get_backend())


def get_rank() -> int:
    return dist.get_rank() if is_dist() else 0


def get_world_size() -> int:
    return dist.get_world_size() if is_dist() else 1


def is_main_process() -> bool:
    return get_rank() == 0


def barrier() -> None:
    if is_dist():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order, on every rank."""
    if not is_dist():
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather_to_main(obj: Any) -> Optional[list[Any]]:
    """Every rank's picklable ``obj``, in rank order, on rank 0; ``None`` on the other ranks."""
    if not is_dist():
        return [obj]
    out: Optional[list[Any]] = [None] * get_world_size() if is_main_process() else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over ranks (a new tensor; the input is left unchanged)."""
    if not is_dist():
        return tensor.clone()
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / get_world_size()


def cleanup_distributed() -> None:
    """Destroy the process group if one is running, once every rank has reached this point (a
    rank that tears gloo down while another still holds its connections can abort that one:
    "terminate called without an active exception"). Call it on the normal way out only: after an
    error on one rank the others would wait at the barrier."""
    if is_dist():
        dist.barrier()
        dist.destroy_process_group()

"""Evaluation sharded by whole videos across processes and gathered on rank 0.

A video is never split: the online/streaming inference of STPN (prompts predicted from earlier
frames, trackers) needs the whole sequence in one process. Videos are balanced greedily by
length (longest first onto the least-loaded rank), which is deterministic on every rank.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence, TypeVar

from stpn.engine.distributed import gather_to_main, get_rank, get_world_size

T = TypeVar("T")
R = TypeVar("R")


def shard_indices(lengths: Sequence[int], rank: int, world_size: int) -> list[int]:
    """Indices (ascending) of the videos that ``rank`` evaluates, given each video's length
    (e.g. its number of frames; use 1s for an equal count per rank)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside [0, world_size={world_size})")
    if any(n < 0 for n in lengths):
        raise ValueError("video lengths must be non-negative")
    load = [0] * world_size
    owned: list[list[int]] = [[] for _ in range(world_size)]
    for idx in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        target = min(range(world_size), key=lambda r: (load[r], r))
        load[target] += lengths[idx]
        owned[target].append(idx)
    return sorted(owned[rank])


def evaluate_sharded(
    items: Sequence[T],
    fn: Callable[[T], R],
    lengths: Optional[Sequence[int]] = None,
) -> Optional[list[R]]:
    """Run ``fn`` on this rank's share of ``items`` (whole videos) and gather the results.

    Returns ``[fn(item) for item in items]`` in the original order on rank 0 and ``None`` on the
    other ranks. Every rank must call it with the same ``items`` / ``lengths``.
    """
    lengths = [1] * len(items) if lengths is None else list(lengths)
    if len(lengths) != len(items):
        raise ValueError(f"{len(lengths)} lengths for {len(items)} items")
    mine = shard_indices(lengths, get_rank(), get_world_size())
    gathered = gather_to_main([(i, fn(items[i])) for i in mine])
    if gathered is None:
        return None
    results: dict[int, R] = {i: r for part in gathered for i, r in part}
    return [results[i] for i in range(len(items))]

"""A training loader whose order and random augmentation depend only on (seed, epoch, index).

This is what makes ``--resume`` exact: the batch sampler draws the epoch's permutation from
``derive_seed(seed, epoch)`` and can start at any batch of the epoch without touching the data,
and :class:`SeededDataset` runs every ``__getitem__`` under global RNGs seeded from
``derive_seed(seed, epoch, index)``, so ordinary random transforms (``torch.rand``,
``random.random``, ``np.random``, torchvision's random transforms) give the same sample whether
it is loaded in the main process or in any worker, in an uninterrupted or a resumed run.

With several processes, global batch ``b`` of the epoch is ``order[b*B:(b+1)*B]`` and rank ``r``
loads its ``r``-th slice of ``B / world_size`` samples, so the union over ranks is exactly the
batch a single process would see.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, NamedTuple, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from stpn.engine.distributed import get_rank, get_world_size
from stpn.engine.rng import derive_seed, seeded_rng


class SampleKey(NamedTuple):
    """What the batch sampler yields per sample: the dataset index and its augmentation seed."""

    index: int
    seed: int


class SeededDataset(Dataset):
    """Wraps a map-style dataset; ``ds[SampleKey(i, s)]`` is ``inner[i]`` computed with the
    global RNGs seeded by ``s`` (and restored afterwards). A plain ``int`` key is passed through."""

    def __init__(self, inner: Dataset) -> None:
        self.inner = inner

    def __len__(self) -> int:
        return len(self.inner)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, SampleKey):
            with seeded_rng(key.seed):
                return self.inner[key.index]
        return self.inner[key]


class ResumableBatchSampler(Sampler[list[SampleKey]]):
    """Per-epoch shuffled batches of :class:`SampleKey`, sharded across ranks, resumable.

    Args:
        num_samples: dataset length.
        batch_size: the *global* batch size; must be divisible by ``world_size``.
        seed: base seed of the order and of the per-sample augmentation seeds.
        shuffle: permute the samples every epoch (else dataset order).
        drop_last: drop the last incomplete global batch (required with several processes,
            where an incomplete batch could leave a rank without samples).
        rank / world_size: default to the running process group, looked up at iteration time,
            so the loader may be built before :func:`~stpn.engine.distributed.init_distributed`.

    Protocol used by :func:`stpn.engine.loop.fit`: ``set_epoch(e)`` before iterating, and
    ``skip_batches(k)`` to make the *next* iteration start at batch ``k`` of the epoch.
    ``len()`` is always the full number of batches per epoch.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
    ) -> None:
        if num_samples < 1:
            raise ValueError(f"the dataset is empty (num_samples={num_samples})")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int (the global batch), got {batch_size!r}")
        if drop_last and num_samples < batch_size:
            raise ValueError(f"{num_samples} samples make no full batch of {batch_size} (drop_last=True)")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self._rank = rank
        self._world_size = world_size
        self.epoch = 0
        self._start = 0
        self.layout()

    def layout(self) -> tuple[int, int]:
        """``(rank, local batch size)`` for the current process group (or the fixed values)."""
        rank = get_rank() if self._rank is None else self._rank
        world_size = get_world_size() if self._world_size is None else self._world_size
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside [0, world_size={world_size})")
        if self.batch_size < 1 or self.batch_size % world_size:
            raise ValueError(
                f"global batch_size {self.batch_size} must be a positive multiple of world_size {world_size}"
            )
        if not self.drop_last and world_size > 1:
            raise ValueError("drop_last=False is only supported in a single process")
        return rank, self.batch_size // world_size

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def skip_batches(self, count: int) -> None:
        if not 0 <= count <= len(self):
            raise ValueError(f"cannot skip {count} of {len(self)} batches")
        self._start = count

    def order(self) -> list[int]:
        """The epoch's sample order (same on every rank)."""
        if not self.shuffle:
            return list(range(self.num_samples))
        gen = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch))
        return torch.randperm(self.num_samples, generator=gen).tolist()

    def __iter__(self) -> Iterator[list[SampleKey]]:
        start, self._start = self._start, 0
        rank, local = self.layout()
        order = self.order()
        for b in range(start, len(self)):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size][rank * local : (rank + 1) * local]
            yield [SampleKey(i, derive_seed(self.seed, self.epoch, i)) for i in batch]


def make_train_loader(
    dataset: Dataset,
    batch_size: int,
    seed: int = 0,
    collate_fn: Optional[Callable[[Sequence[Any]], Any]] = None,
    num_workers: int = 0,
    shuffle: bool = True,
    drop_last: bool = True,
    pin_memory: bool = False,
    **loader_kwargs: Any,
) -> DataLoader:
    """A ``DataLoader`` over ``SeededDataset(dataset)`` with a :class:`ResumableBatchSampler`.

    ``batch_size`` is global (e.g. ``config.batch_size``); each process loads its share. The
    loader gets its own ``generator`` so creating an iterator never draws from the global RNG
    (which would make a resumed run diverge from an uninterrupted one).
    """
    sampler = ResumableBatchSampler(len(dataset), batch_size, seed=seed, shuffle=shuffle, drop_last=drop_last)
    return DataLoader(
        SeededDataset(dataset),
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
        **loader_kwargs,
    )

"""Per-frame support features of one video, each computed at most once: the one cache behind the
streaming extractor (:mod:`stpn.prompts.streaming`, STPN support embeddings ``(N, d_L)``), SELSA's
support RoI features (:mod:`stpn.detection.selsa_cache`, ``(2, n, R)``) and the online tracker
(:mod:`stpn.tracking.online`, search-crop embeddings ``(N, d_L)``).

A frame's support features do not depend on the key frame they support, so they are keyed by
frame index. Eviction: after a key frame, everything below the smallest index the *next* key
frame can ask for is dropped (:meth:`SupportCache.forget_before_key`); under every sampler of
:mod:`stpn.prompts.sampling` that index never decreases with ``t >= 1``, so a dropped entry is
never asked for again and the cache holds the window's span, not the video.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Sequence

from torch import Tensor

from stpn.prompts.sampling import Sampler

Compute = Callable[[list[int]], Sequence[Tensor]]


class SupportCache:
    """Frame index → support features, computed on demand in batches.

    Args:
        compute: ``sorted frame indices → one tensor per index`` (one batched call), used by
            :meth:`gather` for the indices not held; None when entries are only :meth:`put`.
        batch_size: at most this many indices per ``compute`` call (None: all missing at once).

    ``computed``: the indices whose features were computed or put, in order (each at most once
    while held); ``max_held``: the most entries held at once.
    """

    def __init__(self, compute: Optional[Compute] = None, batch_size: Optional[int] = None) -> None:
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.compute, self.batch_size = compute, batch_size
        self.entries: dict[int, Tensor] = {}
        self.computed: list[int] = []
        self.max_held = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, index: int) -> bool:
        return index in self.entries

    def __iter__(self) -> Iterator[int]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> Tensor:
        return self.entries[index]

    def put(self, index: int, features: Tensor) -> None:
        """Hold ``features`` for frame ``index`` (a producer that computes them itself)."""
        self._store([index], [features])

    def gather(self, groups: Sequence[Sequence[int]]) -> list[list[Tensor]]:
        """The features of every index of every group (one group per key frame), computing the
        missing ones first: their union, sorted, in chunks of ``batch_size``."""
        missing = sorted({i for group in groups for i in group} - set(self.entries))
        if missing and self.compute is None:
            raise KeyError(f"support features of frames {missing} were never put into the cache")
        step = self.batch_size or len(missing)
        for start in range(0, len(missing), step or 1):
            chunk = missing[start : start + step]
            self._store(chunk, self.compute(chunk))
        return [[self.entries[i] for i in group] for group in groups]

    def forget_before(self, index: int) -> None:
        """Drop every entry below frame ``index``."""
        for i in [i for i in self.entries if i < index]:
            del self.entries[i]

    def forget_before_key(self, sampler: Sampler, next_key: int, length: int) -> int:
        """Drop what key frame ``next_key`` (of a video of ``length`` frames, so far) and every
        later one cannot ask for; returns the smallest index it can ask for."""
        oldest = min(sampler(next_key, length))
        self.forget_before(oldest)
        return oldest

    def _store(self, indices: Sequence[int], features: Sequence[Tensor]) -> None:
        self.entries.update(zip(indices, features))
        self.computed.extend(indices)
        self.max_held = max(self.max_held, len(self.entries))

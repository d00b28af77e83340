"""Walk a video once and extract STPN features for every frame.

:class:`StreamingExtractor` computes each frame's support embedding at most once and keeps only
the embeddings that a later key frame can still ask for (a bounded cache), so the cost per frame
is one unprompted pass (the embedding) plus one prompted pass, instead of ``K`` + 1 passes for
naive recomputation (:func:`extract_naive`, kept as the reference). Both give the same features
(to float rounding): the tests check ≤ 1e-5.

Modes (support indices from :mod:`stpn.prompts.sampling`):

``per-video``
    ``K`` frames spread over the whole video; prompts predicted once and reused for every frame
    (the authors' released test mode; needs the whole video up front: a sequence, not a stream).
``sliding``
    ``t ± S·k``; frame ``t`` is emitted once frame ``t + S·floor(K/2)`` has arrived (or the
    stream ended), so the look-ahead is ``S·floor(K/2)`` frames.
``causal``
    ``t - S·k``, past only: every frame is emitted as soon as it arrives (live streams).
"""
from __future__ import annotations

from collections.abc import Sequence as SequenceABC
from typing import Iterable, Iterator, Optional, Sequence

import torch
from torch import Tensor

from stpn.prompts.sampling import build_sampler
from stpn.prompts.settings import DEFAULT_INFERENCE, check_mode
from stpn.prompts.stpn import STPN
from stpn.prompts.support_cache import SupportCache

Features = list[Tensor]


class StreamingExtractor:
    """Features for every frame of a video, each support embedding computed at most once.

    Args:
        model: an :class:`~stpn.prompts.stpn.STPN` model (put it in eval mode yourself).
        mode: ``"per-video"``, ``"sliding"`` or ``"causal"``.
        num_support: ``K``. ``stride``: ``S`` (ignored in per-video mode). Defaults:
            :data:`~stpn.prompts.settings.DEFAULT_INFERENCE`.
        batch_size: key frames processed together (their missing embeddings, prompts and
            prompted passes each in one batched call). Results do not depend on it.

    The embeddings live in a :class:`~stpn.prompts.support_cache.SupportCache`. After a run,
    ``embedded`` lists the frame indices whose embedding was computed, in order (each at most
    once) and ``max_cached`` is the largest number of embeddings held at once.
    """

    def __init__(
        self,
        model: STPN,
        mode: str = DEFAULT_INFERENCE.mode,
        num_support: int = DEFAULT_INFERENCE.num_support,
        stride: int = DEFAULT_INFERENCE.stride,
        batch_size: int = 1,
    ) -> None:
        self.model = model
        self.mode = check_mode(mode)
        self.sampler = build_sampler(self.mode, num_support, stride)
        self.lookahead = stride * (num_support // 2) if self.mode == "sliding" else 0
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.cache = SupportCache()

    @property
    def embedded(self) -> list[int]:
        return self.cache.computed

    @property
    def max_cached(self) -> int:
        return self.cache.max_held

    @torch.no_grad()
    def run(self, frames: Iterable[Tensor], prompt_frames: Optional[Sequence[Tensor]] = None
            ) -> Iterator[tuple[int, Features]]:
        """Yield ``(t, features)`` for every frame in order; frames are ``(3, H, W)`` tensors.

        ``prompt_frames`` (per-video mode only): take the support frames from this sequence
        instead of the video itself, e.g. another video's frames, to measure how much of STPN's
        effect comes from the video's own frames. ``embedded`` then indexes ``prompt_frames``."""
        self.cache = SupportCache()
        if prompt_frames is not None and self.mode != "per-video":
            raise ValueError(f"prompt_frames needs per-video mode, not {self.mode!r}")
        if self.mode == "per-video":
            yield from self._run_per_video(frames, prompt_frames)
        else:
            yield from self._run_stream(iter(frames))

    def _run_per_video(self, frames: Iterable[Tensor], prompt_frames: Optional[Sequence[Tensor]] = None
                       ) -> Iterator[tuple[int, Features]]:
        if not isinstance(frames, SequenceABC) and not isinstance(frames, Tensor):
            raise ValueError(
                "per-video mode needs the whole video up front (a list or tensor of frames); "
                "use mode='sliding' or 'causal' for a stream"
            )
        length = len(frames)
        if length == 0:
            raise ValueError("the video has no frames")
        source = frames if prompt_frames is None else prompt_frames
        if len(source) == 0:
            raise ValueError("prompt_frames is empty")
        self.cache = SupportCache(self._embedder(source))
        (embeddings,) = self.cache.gather([self.sampler(0, len(source))])
        prompts = self.model.predict_prompts(torch.stack(embeddings)[None])
        for start in range(0, length, self.batch_size):
            keys = list(range(start, min(start + self.batch_size, length)))
            batch = torch.stack([frames[t] for t in keys])
            feats = self.model(batch, prompts=_expand_prompts(prompts, len(keys)))
            yield from _split(keys, feats)

    def _run_stream(self, frames: Iterator[Tensor]) -> Iterator[tuple[int, Features]]:
        raw: dict[int, Tensor] = {}  # frames still needed as key frames or for an embedding
        self.cache = SupportCache(self._embedder(raw))  # support embeddings (N, d_L)
        next_key, seen, ended = 0, 0, False
        while True:
            try:
                raw[seen] = next(frames)
                seen += 1
            except StopIteration:
                ended = True
            ready_until = seen if ended else seen - self.lookahead  # keys < ready_until can go
            pending = min(ready_until, next_key + self.batch_size) - next_key
            if pending >= self.batch_size or (ended and pending > 0):
                keys = list(range(next_key, next_key + pending))
                yield from self._emit(keys, raw, seen)
                next_key += pending
                self._evict(next_key, raw, seen)
            if ended and next_key >= seen:
                if seen == 0:
                    raise ValueError("the video has no frames")
                return

    def _emit(self, keys, raw, seen) -> Iterator[tuple[int, Features]]:
        # Before the end every index a ready key can ask for is < seen, so `seen` stands in for
        # the still unknown length without changing any clamped index.
        supports = self.cache.gather([self.sampler(t, seen) for t in keys])
        prompts = self.model.predict_prompts(torch.stack([torch.stack(s) for s in supports]))
        feats = self.model(torch.stack([raw[t] for t in keys]), prompts=prompts)
        return _split(keys, feats)

    def _evict(self, next_key, raw, seen) -> None:
        """Drop embeddings and frames below the smallest index the next key frame can use."""
        # the next key frame may not have arrived yet (causal mode): size the video to hold it
        oldest = self.cache.forget_before_key(self.sampler, next_key, max(seen, next_key + 1))
        for i in [i for i in raw if i < min(oldest, next_key)]:
            del raw[i]

    def _embedder(self, frames):
        """``SupportCache`` compute function: indices into ``frames`` → ``(F, N, d_L)``."""
        return lambda indices: self.model.embed_frames(torch.stack([frames[i] for i in indices]))


@torch.no_grad()
def extract_naive(
    model: STPN, frames: Sequence[Tensor], mode: str = DEFAULT_INFERENCE.mode,
    num_support: int = DEFAULT_INFERENCE.num_support, stride: int = DEFAULT_INFERENCE.stride,
) -> list[Features]:
    """Reference: for every frame, run the backbone on all ``K`` support frames again."""
    sampler = build_sampler(check_mode(mode), num_support, stride)
    length = len(frames)
    out = []
    for t in range(length):
        support = torch.stack([frames[i] for i in sampler(t, length)])[None]
        out.append([f[0] for f in model(frames[t][None], support)])
    return out


def _expand_prompts(prompts, batch: int):
    if isinstance(prompts, Tensor):
        return prompts.expand(batch, -1, -1)
    return [p.expand(batch, -1, -1) for p in prompts]


def _split(keys: list[int], feats: Features) -> Iterator[tuple[int, Features]]:
    for j, t in enumerate(keys):
        yield t, [f[j] for f in feats]

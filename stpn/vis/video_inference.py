"""Segment the instances of a video: per-frame Mask2Former outputs, MinVIS association.

The segmenter (``model``) offers ``features(images (B, 3, H, W), prompts=None) -> [maps]``,
``decode(maps) -> {"class_logits" (B, Q, C + 1), "mask_logits" (B, Q, H/4, W/4),
"query_embeddings" (B, Q, D)}`` and ``stpn`` (an :class:`~stpn.prompts.stpn.STPN`, or ``None``
for the per-frame baseline). Frames go to the model's device and are normalised and zero-padded
to multiples of 32 (:func:`stpn.detection.inference.prepare_frame`). Without STPN every frame
runs through ``features`` alone; with STPN the
:class:`~stpn.prompts.streaming.StreamingExtractor` walks the video (per-video / sliding /
causal, :class:`~stpn.prompts.settings.InferenceSettings`), computing each support embedding
once with ``model.stpn`` and the prompted pass with ``model.features(images, prompts)``. Key
frames are decoded ``settings.batch_size`` at a time; under ``bf16`` everything runs in bf16
autocast. :class:`~stpn.vis.association.QueryAssociation` then links the queries over time.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional, Sequence

import torch
from torch import Tensor

from stpn.data.normalisation import padded_size
from stpn.detection.inference import PreparedFrames, prepare_frame
from stpn.engine.device import inference_autocast, model_device, step_under
from stpn.prompts.settings import DEFAULT_INFERENCE, InferenceSettings
from stpn.prompts.streaming import StreamingExtractor
from stpn.vis.association import TOP_K, QueryAssociation, VideoInstance

OUTPUT_KEYS = ("class_logits", "mask_logits", "query_embeddings")


@dataclass
class AssociatedVideo:
    """A video's associated queries and the sizes its masks need: ``image_size`` ``(h, w)`` of
    the frames given to the model, ``padded_size`` the network input (multiples of 32)."""

    association: QueryAssociation
    image_size: tuple[int, int]
    padded_size: tuple[int, int]

    def instances(self, out_size: Sequence[int], top_k: int = TOP_K) -> list[VideoInstance]:
        return self.association.instances(out_size, self.image_size, self.padded_size, top_k)

    def frame_masks(self, queries: Tensor, t: int, out_size: Sequence[int]) -> Tensor:
        return self.association.frame_masks(queries, t, out_size, self.image_size, self.padded_size)


class _PromptedFeatures:
    """What the streaming extractor calls: support embeddings and prompts from ``model.stpn``,
    the prompted pass through ``model.features`` (so any per-stage output norms apply)."""

    def __init__(self, model) -> None:
        self.model = model

    def embed_frames(self, frames: Tensor) -> Tensor:
        return self.model.stpn.embed_frames(frames)

    def predict_prompts(self, support_embeddings: Tensor, mask: Optional[Tensor] = None):
        return self.model.stpn.predict_prompts(support_embeddings, mask)

    def __call__(self, images: Tensor, prompts=None) -> list[Tensor]:
        return self.model.features(images, prompts=prompts)


def _feature_stream(model, frames, settings: InferenceSettings, device) -> tuple[Iterator, tuple[int, int]]:
    """``((t, [maps (C_i, H_i, W_i)]) per frame in order, (h, w) of the first frame)``."""
    if isinstance(frames, (SequenceABC, Tensor)):
        if len(frames) == 0:
            raise ValueError("the video has no frames")
        first, prepared = frames[0], PreparedFrames(frames, device)
    else:
        if settings.mode == "per-video" and model.stpn is not None:
            frames = list(frames)  # per-video prompts need the whole video
            return _feature_stream(model, frames, settings, device)
        iterator = iter(frames)
        first = next(iterator, None)
        if first is None:
            raise ValueError("the video has no frames")
        prepared = map(functools.partial(prepare_frame, device=device), _chain(first, iterator))
    if model.stpn is not None:
        extractor = StreamingExtractor(_PromptedFeatures(model), settings.mode, settings.num_support,
                                       settings.stride, settings.batch_size)
        stream = extractor.run(prepared)
    else:
        stream = ((t, [m[0] for m in model.features(f[None])]) for t, f in enumerate(prepared))
    return stream, (int(first.shape[-2]), int(first.shape[-1]))


def _chain(first, rest):
    yield first
    yield from rest


def _decode(model, batch: list[tuple[int, list[Tensor]]], association: QueryAssociation) -> None:
    maps = [torch.stack(level) for level in zip(*(m for _, m in batch))]
    outputs = model.decode(maps)
    missing = [k for k in OUTPUT_KEYS if k not in outputs]
    if missing:
        raise ValueError(f"model.decode returned no {missing[0]!r} (needs {', '.join(OUTPUT_KEYS)})")
    for j in range(len(batch)):
        association.add(*(outputs[k][j] for k in OUTPUT_KEYS))


@torch.no_grad()
def associate_frames(
    model, frames: Sequence[Tensor] | Iterable[Tensor], settings: InferenceSettings = DEFAULT_INFERENCE,
    device: Optional[torch.device] = None, bf16: bool = False, progress: Optional[Callable[[int], None]] = None,
) -> AssociatedVideo:
    """Run ``model`` over ``frames`` (``(3, h, w)`` in [0, 1], all one size, on any device) and
    associate the queries. ``device``: move the model there first (default: where it is).
    ``progress(t)`` is called after frame ``t`` is decoded."""
    model.eval()
    if device is not None:
        model.to(device)
    device = model_device(model)
    stream, size = _feature_stream(model, frames, settings, device)
    autocast = functools.partial(inference_autocast, device, bf16)
    association, batch = QueryAssociation(), []

    def flush() -> None:
        with autocast():
            _decode(model, batch, association)
        for t, _ in batch:
            if progress is not None:
                progress(t)
        batch.clear()

    for item in step_under(autocast, stream):
        batch.append(item)
        if len(batch) == settings.batch_size:
            flush()
    if batch:
        flush()
    return AssociatedVideo(association, size, padded_size(size))


def segment_frames(
    model, frames: Sequence[Tensor] | Iterable[Tensor], settings: InferenceSettings = DEFAULT_INFERENCE,
    out_size: Optional[Sequence[int]] = None, device: Optional[torch.device] = None, bf16: bool = False,
    progress: Optional[Callable[[int], None]] = None, top_k: int = TOP_K,
) -> list[VideoInstance]:
    """The ``top_k`` instances of a video (best first), masks ``(T, *out_size)`` bool on the CPU
    (``out_size`` default: the frames' own size). Arguments as :func:`associate_frames`."""
    video = associate_frames(model, frames, settings, device, bf16, progress)
    return video.instances(tuple(out_size) if out_size is not None else video.image_size, top_k)

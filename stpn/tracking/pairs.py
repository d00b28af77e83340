"""Tracker training samples (MixFormer's GOT-10k protocol, + STPN support frames).

One sample of sequence ``index % len(sequences)``:

* frames, MixFormer's "trident" rule: the template and the search frame are any two visible
  frames of the sequence; the online template is a visible frame within ``max_gap`` frames of
  the search frame, on the template's side of it;
* crops (:mod:`stpn.tracking.crops`): templates ``template_factor`` (2) × the target's size
  around the exact box (MixFormer's template jitter is 0) → ``template_size``; the search region
  ``search_factor`` (5) × around a jittered box (centre jitter 4.5, scale jitter 0.5), redrawn up
  to ``max_tries`` times until the target's centre lies inside the crop (else the exact box);
* target: the search frame's box in normalised crop ``x1, y1, x2, y2`` (not clipped: it may
  stick out of ``[0, 1]``; the loss clips, :func:`stpn.tracking.losses.box_losses`);
* augmentation, the same for every crop of a sample so the object looks alike in all of them:
  grayscale (probability 0.05) and horizontal flip (0.5, boxes mirrored); a brightness factor
  in ``[1 - b, 1 + b]`` per frame (MixFormer's ``ToTensorAndJitter(0.2)``);
* STPN (``num_support = K > 0``): frames ``search - S·k``, ``k = K..1`` (oldest first), clamped
  at the sequence start (:func:`stpn.prompts.sampling.causal`; at frame 0 the search frame is
  its own support), each cropped like a search region (factor 5, ``search_size``) around its
  *own* jittered box. At test time each past frame was cropped around the tracker's estimate of
  the frame before it; an independently jittered box around the frame's own target is the
  training stand-in for that estimate, as the jittered search box is for the current frame.
  An absent frame is cropped around the object's last visible box (where a tracker would still
  look). ``support_mask`` is all True (every support is a real frame, possibly repeated);
* score-head training (``negative_prob > 0``, stage 2): a sample is negative (label 0) with that
  probability. MixFormer's negative is a search region from another sequence (any frame, around
  that sequence's own object); with ``off_target_share`` a share of negatives is instead the
  positive's own search frame with the crop moved off the target (the target lies wholly
  outside it; support crops moved by the same offset). Positives have label 1.

Determinism: :meth:`TrackingPairs.sample` is a pure function of ``(seed, index, salt)``;
``dataset[i]`` draws ``salt`` from the global torch RNG, which the engine's loader
(:func:`stpn.engine.make_train_loader`) seeds per ``(seed, epoch, index)`` — new samples every
epoch, identical in a resumed run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from stpn.data.clips import frame_to_tensor
from stpn.data.types import FrameSource, load_frame
from stpn.data.normalisation import normalise  # the online tracker's normalisation too
from stpn.engine.rng import derive_seed
from stpn.prompts.sampling import causal
from stpn.tracking.crops import CropWindow, crop_images, crop_window, jitter_box, xywh_to_xyxy
from stpn.tracking.sequences import TrackSequence

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma


@dataclass(frozen=True)
class PairSettings:
    """How samples are drawn and cropped; the ``pairs`` section of a tracker YAML config.
    Defaults are MixFormer-CvT's GOT-10k settings (stage 1, no STPN)."""

    template_size: int = 128
    search_size: int = 320
    template_factor: float = 2.0
    search_factor: float = 5.0
    centre_jitter: float = 4.5
    scale_jitter: float = 0.5
    template_centre_jitter: float = 0.0
    template_scale_jitter: float = 0.0
    max_gap: int = 200
    grayscale_prob: float = 0.05
    flip_prob: float = 0.5
    brightness_jitter: float = 0.2
    num_support: int = 0
    support_stride: int = 8
    negative_prob: float = 0.0
    off_target_share: float = 0.0
    max_tries: int = 10

    def __post_init__(self) -> None:
        for name in ("template_size", "search_size", "max_gap", "support_stride", "max_tries"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.num_support < 0:
            raise ValueError(f"num_support must be >= 0, got {self.num_support}")
        for name in ("template_factor", "search_factor"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("centre_jitter", "scale_jitter", "template_centre_jitter", "template_scale_jitter"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("grayscale_prob", "flip_prob", "negative_prob", "off_target_share", "brightness_jitter"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "", section: Optional[str] = None) -> "PairSettings":
        """Strict: unknown keys and wrong types are one-line errors naming ``where``."""
        from stpn.strict_fields import from_dict

        return from_dict(cls, data, where, kind="pair settings", section=section)


@dataclass
class TrackingBatch:
    """A collated batch: ``template``/``online_template (B, 3, T, T)``, ``search (B, 3, S, S)``,
    ``boxes (B, 4)`` normalised crop xyxy, ``labels (B,)`` float 1/0, and with STPN
    ``support (B, K, 3, S, S)`` and ``support_mask (B, K)`` bool (True = real frame)."""

    template: Tensor
    online_template: Tensor
    search: Tensor
    boxes: Tensor
    labels: Tensor
    support: Optional[Tensor] = None
    support_mask: Optional[Tensor] = None

    def __len__(self) -> int:
        return self.search.shape[0]


def collate_tracking(items: Sequence[dict]) -> TrackingBatch:
    """Stack :meth:`TrackingPairs.sample` dicts (their ``info`` is dropped)."""
    if not items:
        raise ValueError("cannot collate an empty list of samples")
    stack = {k: torch.stack([it[k] for it in items]) for k in ("template", "online_template", "search", "box", "label")}
    with_support = "support" in items[0]
    return TrackingBatch(
        stack["template"], stack["online_template"], stack["search"], stack["box"], stack["label"],
        torch.stack([it["support"] for it in items]) if with_support else None,
        torch.stack([it["support_mask"] for it in items]) if with_support else None,
    )


def _choice(options: Sequence[int], g: torch.Generator) -> int:
    return options[int(torch.randint(len(options), (), generator=g))]


def _uniform(low: float, high: float, g: torch.Generator) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def pick_frames(visible: Sequence[int], max_gap: int, g: torch.Generator) -> tuple[int, int, int]:
    """``(template, online template, search)`` frame indices, MixFormer's "trident" rule."""
    if not visible:
        raise ValueError("the sequence has no visible frame")
    template, search = _choice(visible, g), _choice(visible, g)
    low, high = (search, search + max_gap) if template >= search else (search - max_gap, search)
    online = _choice([t for t in visible if low <= t <= high], g)
    return template, online, search


def target_centre_inside(window: CropWindow, box_xywh: Tensor) -> bool:
    x, y, w, h = box_xywh.tolist()
    cx, cy = x + w / 2, y + h / 2
    return window.x0 <= cx <= window.x0 + window.side and window.y0 <= cy <= window.y0 + window.side


def jittered_window(
    box_xywh: Tensor, factor: float, size: int, centre_jitter: float, scale_jitter: float, tries: int,
    g: torch.Generator,
) -> CropWindow:
    """A crop window around a jittered ``box_xywh`` that still holds the box's centre."""
    if centre_jitter == 0 and scale_jitter == 0:
        return crop_window(box_xywh.tolist(), factor, size)
    for _ in range(tries):
        window = crop_window(jitter_box(box_xywh, centre_jitter, scale_jitter, g).tolist(), factor, size)
        if target_centre_inside(window, box_xywh):
            return window
    return crop_window(box_xywh.tolist(), factor, size)


def off_target_offset(window: CropWindow, box_xywh: Tensor, g: torch.Generator) -> tuple[float, float]:
    """A shift of ``window`` that leaves the whole box outside it: along a random axis and
    direction, the window centre ends ``side/2 + extent/2 + u·side/4`` from the box centre
    (``u`` uniform in [0, 1]); along the other axis anywhere within ``±side/2``."""
    x, y, w, h = box_xywh.tolist()
    centre = (x + w / 2, y + h / 2)
    axis = int(torch.randint(2, (), generator=g))
    sign = 1.0 if float(torch.rand((), generator=g)) < 0.5 else -1.0
    extent = (w, h)[axis]
    target = [centre[0] + _uniform(-0.5, 0.5, g) * window.side, centre[1] + _uniform(-0.5, 0.5, g) * window.side]
    target[axis] = centre[axis] + sign * (window.side / 2 + extent / 2 + _uniform(0.0, 0.25, g) * window.side)
    return (target[0] - window.side / 2 - window.x0, target[1] - window.side / 2 - window.y0)


def shifted(window: CropWindow, offset: tuple[float, float]) -> CropWindow:
    return CropWindow(window.x0 + offset[0], window.y0 + offset[1], window.side, window.out_size)


def flip_box(box_xyxy: Tensor) -> Tensor:
    """Mirror a normalised ``(..., 4)`` xyxy box left-right."""
    x1, y1, x2, y2 = box_xyxy.unbind(-1)
    return torch.stack([1 - x2, y1, 1 - x1, y2], -1)


class TrackingPairs(Dataset):
    """Training samples of single-object sequences (see the module docstring).

    ``sample(i)`` → dict: ``template``, ``online_template (3, T, T)``, ``search (3, S, S)``
    (normalised), ``box (4,)`` normalised crop xyxy, ``label ()`` float; with STPN ``support
    (K, 3, S, S)`` and ``support_mask (K,)``; ``info``: frame indices and augmentation flags.

    Args:
        sequences: :func:`stpn.tracking.sequences.sequences_from_dataset` output; sequences
            without a visible frame are an error.
        settings: :class:`PairSettings`.
        samples_per_epoch: dataset length (default: one sample per sequence; MixFormer uses
            60 000 on GOT-10k's 9 335 sequences).
        seed: mixed into every sample's random stream.
    """

    def __init__(
        self, sequences: Sequence[TrackSequence], settings: PairSettings = PairSettings(),
        samples_per_epoch: Optional[int] = None, seed: int = 0,
    ) -> None:
        if not sequences:
            raise ValueError("no training sequences")
        empty = [s.name for s in sequences if not bool(s.visible.any())]
        if empty:
            raise ValueError(f"sequences without a visible frame: {empty[:5]}")
        if settings.negative_prob > 0 and settings.off_target_share < 1 and len(sequences) < 2:
            raise ValueError("negatives from another sequence need at least two sequences (or off_target_share=1)")
        self.sequences = list(sequences)
        self.settings = settings
        self.samples_per_epoch = len(self.sequences) if samples_per_epoch is None else int(samples_per_epoch)
        if self.samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch}")
        self.seed = seed
        self._support = causal(settings.num_support, settings.support_stride) if settings.num_support else None

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> dict:
        return self.sample(index, salt=int(torch.randint(2**62, ())))

    def sample(self, index: int, salt: int = 0) -> dict:
        s = self.settings
        g = torch.Generator().manual_seed(derive_seed(self.seed, index, salt))
        seq_id = index % len(self.sequences)
        seq = self.sequences[seq_id]
        template_t, online_t, search_t = pick_frames(seq.visible_indices, s.max_gap, g)
        search_id, negative = seq_id, None
        if float(torch.rand((), generator=g)) < s.negative_prob:
            if float(torch.rand((), generator=g)) < s.off_target_share:
                negative = "off_target"
            else:
                negative = "other_sequence"
                search_id = (seq_id + 1 + int(torch.randint(len(self.sequences) - 1, (), generator=g))) % len(self.sequences)
                search_t = int(torch.randint(len(self.sequences[search_id]), (), generator=g))
        search_seq = self.sequences[search_id]
        search_box = search_seq.carried_box(search_t)
        window = self._search_window(search_box, g)
        offset = off_target_offset(window, search_box, g) if negative == "off_target" else (0.0, 0.0)
        window = shifted(window, offset)
        support_t = self._support(search_t, len(search_seq)) if self._support else []
        support_windows = [shifted(self._search_window(search_seq.carried_box(t), g), offset) for t in support_t]
        gray = float(torch.rand((), generator=g)) < s.grayscale_prob
        flip = float(torch.rand((), generator=g)) < s.flip_prob

        images: dict[tuple[int, int], Tensor] = {}

        def crop(sid: int, t: int, win: CropWindow) -> Tensor:
            if (sid, t) not in images:
                images[(sid, t)] = self._load(self.sequences[sid].frames[t], gray, g)
            out = crop_images(images[(sid, t)][None], [win])[0]
            return out.flip(-1) if flip else out

        def template_crop(t: int) -> Tensor:
            win = jittered_window(seq.boxes[t], s.template_factor, s.template_size, s.template_centre_jitter,
                                  s.template_scale_jitter, s.max_tries, g)
            return crop(seq_id, t, win)

        box = window.to_crop(xywh_to_xyxy(search_box)).float()
        item = {
            "template": template_crop(template_t),
            "online_template": template_crop(online_t),
            "search": crop(search_id, search_t, window),
            "box": flip_box(box) if flip else box,
            "label": torch.tensor(0.0 if negative else 1.0),
        }
        if self._support:
            item["support"] = torch.stack([crop(search_id, t, w) for t, w in zip(support_t, support_windows)])
            item["support_mask"] = torch.ones(len(support_t), dtype=torch.bool)
        item["info"] = {
            "sequence": seq.name, "template": template_t, "online_template": online_t,
            "search_sequence": search_seq.name, "search": search_t, "support": list(support_t),
            "negative": negative, "flip": flip, "gray": gray, "window": window,
        }
        return item

    def _search_window(self, box_xywh: Tensor, g: torch.Generator) -> CropWindow:
        s = self.settings
        return jittered_window(box_xywh, s.search_factor, s.search_size, s.centre_jitter, s.scale_jitter,
                               s.max_tries, g)

    def _load(self, frame: FrameSource, gray: bool, g: torch.Generator) -> Tensor:
        image = frame_to_tensor(load_frame(frame))
        b = self.settings.brightness_jitter
        if b:
            image = (image * _uniform(max(0.0, 1 - b), 1 + b, g)).clamp_(0, 1)
        if gray:
            luma = (image * image.new_tensor(GRAY_WEIGHTS)[:, None, None]).sum(0, keepdim=True)
            image = luma.expand(3, -1, -1)
        return normalise(image)  # before cropping: crops pad with zeros = the mean colour


__all__ = [
    "PairSettings", "TrackingBatch", "TrackingPairs", "collate_tracking",
    "flip_box", "pick_frames",
]

"""Online single-object tracking with a MixFormer (optionally STPN-prompted): ``init`` on the
first frame with a box, then ``update`` frame after frame.

Per frame ``t >= 1`` (MixFormer-CvT's online tracker, GOT-10k setting):

1. The search region is the square of side ``sqrt(w·h)·search_factor`` around the previous box,
   sampled to ``model.search_size`` (:mod:`stpn.tracking.crops`; outside the image reads the mean
   colour). Images are normalised with the ImageNet mean / std.
2. The template memory (keys / values of the first-frame template and the online template,
   ``model.encode_templates``) is reused: it is recomputed only when the online template changes.
3. Under STPN, prompts come from the support embeddings of *past* search crops (below).
4. ``model.track`` gives a box in the crop (normalised xyxy) and a score logit; the box is mapped
   back to the image and clipped to it, keeping at least ``min(margin, W, H)`` pixels a side.
5. Online templates (MixFormer's rule): ``best`` is the highest score seen since the last
   update, decayed by ``score_decay`` every frame; a frame whose score exceeds both
   ``score_threshold`` (0.5) and ``best`` becomes the candidate (its template-size crop around
   the new box) and sets ``best``. Every ``update_interval`` frames the candidate enters the
   online templates, ``best`` resets and the candidate resets to the first template. With one
   online template (``online_size=1``) the candidate replaces it, so an interval without a
   confident frame brings the first template back; with ``M > 1`` the sequence starts with one
   online template (the first template), candidates are appended up to ``M`` and then replace
   the oldest slot in turn. A model without a score head never updates.

Defaults follow MixFormer-CvT's GOT-10k test settings: interval 10 (``GOT10K_TEST`` in its
``baseline.yaml``), score decay 0.98 (its GOT-10k test command), template factor 2; the search
factor is the training factor 5 (MixFormer tests GOT-10k at 4.55; pass ``search_factor=4.55``).
MixFormer keeps two online templates there (``online_size=2``) although it trains with one; the
default here is one, as trained.

STPN support rule (causal, :func:`stpn.prompts.sampling.causal`): the search crop of every frame
is embedded once (``model.embed_support``) right after that frame is tracked, and frame 0 gets
the search-size crop around the initial box. Frame ``t`` uses the embeddings of frames
``max(t - S·k, 0)``, ``k = K..1``, all strictly in the past, so early frames repeat frame 0 (the
"use what exists" rule of the causal sampler). The embeddings live in a
:class:`~stpn.prompts.support_cache.SupportCache`; only those of frames ``>= t + 1 - S·K`` are
kept: at most ``S·K`` embeddings are held.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from stpn.data.clips import frame_to_tensor
from stpn.data.normalisation import normalise
from stpn.engine.device import inference_autocast
from stpn.prompts.sampling import causal
from stpn.prompts.support_cache import SupportCache
from stpn.tracking.crops import check_box, clip_box_xywh, crop_images, crop_window, xyxy_to_xywh


def normalise_image(image: np.ndarray, device: torch.device) -> Tensor:
    """RGB ``(H, W, 3)`` uint8 → ``(1, 3, H, W)`` float normalised with ImageNet mean / std."""
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise ValueError(f"an image must be an RGB (H, W, 3) uint8 numpy array, got {shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"an image must be uint8 (0..255), got dtype {image.dtype}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"the image is empty: {image.shape}")
    return normalise(frame_to_tensor(image).to(device))[None]


class OnlineTracker:
    """Track one object through a video with a :class:`~stpn.tracking.model.MixFormer`.

    Args:
        model: the tracker network (put in eval mode here).
        template_factor / search_factor: crop sides as multiples of ``sqrt(w·h)``.
        update_interval: frames between online-template updates.
        score_threshold: a frame's score must exceed it to become the online template.
        score_decay: per-frame decay of the best score since the last update (1 = none).
        online_size: number of online templates ``M`` kept.
        num_support / support_stride: ``K`` and ``S`` of the causal support frames (STPN models).
        margin: smallest box side (pixels) kept when clipping to the image.
        device: where to run; default: the model's device (the model is moved there).
        bf16: run the network under bf16 autocast (boxes and scores come back as float).

    ``init(image, box_xywh)`` then ``update(image) -> (box_xywh (4,) float64, score or None)``.
    For inspection: ``scores`` (per frame), ``template_updates`` (``(frame t, frame whose crop
    became an online template)``, 0 = the first template; only changes are listed),
    ``online_frames`` (source frame of each online template), ``support_indices`` (last frame's).
    """

    def __init__(
        self,
        model,
        template_factor: float = 2.0,
        search_factor: float = 5.0,
        update_interval: int = 10,
        score_threshold: float = 0.5,
        score_decay: float = 0.98,
        online_size: int = 1,
        num_support: int = 4,
        support_stride: int = 4,
        margin: float = 10.0,
        device: Optional[torch.device | str] = None,
        bf16: bool = False,
    ) -> None:
        if update_interval < 1:
            raise ValueError(f"update_interval must be >= 1, got {update_interval}")
        if online_size < 1:
            raise ValueError(f"online_size must be >= 1, got {online_size}")
        self.online_size = int(online_size)
        if template_factor <= 0 or search_factor <= 0:
            raise ValueError(f"crop factors must be positive, got {template_factor} and {search_factor}")
        self.model = model.eval()
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.model.to(self.device)
        self.template_factor, self.search_factor = float(template_factor), float(search_factor)
        self.update_interval = int(update_interval)
        self.score_threshold, self.score_decay = float(score_threshold), float(score_decay)
        self.num_support, self.support_stride = int(num_support), int(support_stride)
        self.sampler = causal(self.num_support, self.support_stride)
        self.margin = float(margin)
        self.bf16 = bool(bf16)
        self.frame_index = -1  # -1: not initialised

    @property
    def uses_prompts(self) -> bool:
        return bool(getattr(self.model, "has_stpn", False))

    def _crop(self, image: Tensor, box_xywh: Sequence[float], factor: float, size: int):
        window = crop_window(box_xywh, factor, size)
        return crop_images(image, [window]), window

    @torch.no_grad()
    def init(self, image: np.ndarray, box_xywh: Sequence[float]) -> None:
        """Start a track on ``image`` (RGB ``(H, W, 3)`` uint8) at ``box_xywh`` (pixels)."""
        with inference_autocast(self.device, self.bf16):
            self._init(image, box_xywh)

    def _init(self, image: np.ndarray, box_xywh: Sequence[float]) -> None:
        frame = normalise_image(image, self.device)
        self.height, self.width = image.shape[:2]
        check_box(list(box_xywh), self.height, self.width)
        box = torch.tensor([float(v) for v in box_xywh], dtype=torch.float64)
        self.state = clip_box_xywh(box, self.height, self.width, self._min_side()).tolist()
        self.template, _ = self._crop(frame, self.state, self.template_factor, self.model.template_size)
        self.online_templates, self.online_frames = [self.template], [0]
        self.forget_slot = 0  # slot replaced next once all M are filled
        self.memory = self.model.encode_templates(self.template, self.online_template)
        self.candidate, self.best_score, self.candidate_frame = self.template, -1.0, 0
        self.frame_index = 0
        self.scores: list[Optional[float]] = [None]
        self.template_updates: list[tuple[int, int]] = []
        self.support_indices: list[int] = []
        self.support = SupportCache()  # frame index → its search crop's embedding (N, d_L)
        if self.uses_prompts:
            search, _ = self._crop(frame, self.state, self.search_factor, self.model.search_size)
            self.support.put(0, self.model.embed_support(search)[0])

    @property
    def online_template(self) -> Tensor:
        """What the model sees: ``(1, 3, T, T)``, or ``(1, M, 3, T, T)`` for several."""
        if len(self.online_templates) == 1:
            return self.online_templates[0]
        return torch.stack([o[0] for o in self.online_templates])[None]

    def _min_side(self) -> float:
        return min(self.margin, float(self.width), float(self.height))

    def _prompts(self, t: int) -> Optional[Tensor]:
        if not self.uses_prompts:
            return None
        indices = self.support_indices = self.sampler(t, t + 1)
        support = torch.stack(self.support.gather([indices])[0])[None]  # (1, K, N, d_L)
        return self.model.predict_prompts(support)

    @torch.no_grad()
    def update(self, image: np.ndarray) -> tuple[np.ndarray, Optional[float]]:
        """Track the next frame: ``(box x, y, w, h in pixels (4,) float64, score in [0, 1] or None)``."""
        if self.frame_index < 0:
            raise RuntimeError("OnlineTracker.update called before init(first frame, box)")
        with inference_autocast(self.device, self.bf16):
            return self._update(image)

    def _update(self, image: np.ndarray) -> tuple[np.ndarray, Optional[float]]:
        frame = normalise_image(image, self.device)
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame size {image.shape[1]}x{image.shape[0]} differs from the first frame's "
                             f"{self.width}x{self.height}")
        t = self.frame_index = self.frame_index + 1
        search, window = self._crop(frame, self.state, self.search_factor, self.model.search_size)
        prompts = self._prompts(t)
        out = self.model.track(search, self.memory, prompts=prompts, with_score=True)
        xyxy = window.to_image(out.boxes[0].detach().double().cpu())
        box = clip_box_xywh(xyxy_to_xywh(xyxy), self.height, self.width, self._min_side())
        self.state = box.tolist()
        score = None if out.score_logits is None else float(torch.sigmoid(out.score_logits.reshape(-1)[0].float()))
        self.scores.append(score)
        self._update_online_template(frame, score, t)
        if self.uses_prompts:
            self.support.put(t, self.model.embed_support(search)[0])
            self.support.forget_before_key(self.sampler, t + 1, t + 2)  # keeps frames >= t + 1 - S·K
        return np.asarray(self.state, dtype=np.float64), score

    def _update_online_template(self, frame: Tensor, score: Optional[float], t: int) -> None:
        if score is None:
            return
        self.best_score *= self.score_decay
        if score > self.score_threshold and score > self.best_score:
            self.candidate, _ = self._crop(frame, self.state, self.template_factor, self.model.template_size)
            self.candidate_frame, self.best_score = t, score
        if t % self.update_interval == 0:
            self._store_candidate(t)
            self.candidate, self.candidate_frame, self.best_score = self.template, 0, -1.0

    def _store_candidate(self, t: int) -> None:
        if len(self.online_templates) < self.online_size:
            self.online_templates.append(self.candidate)
            self.online_frames.append(self.candidate_frame)
        else:
            slot = self.forget_slot
            self.forget_slot = (slot + 1) % self.online_size
            if self.candidate is self.online_templates[slot]:
                return  # unchanged: keep the encoded memory
            self.online_templates[slot], self.online_frames[slot] = self.candidate, self.candidate_frame
        self.memory = self.model.encode_templates(self.template, self.online_template)
        self.template_updates.append((t, self.candidate_frame))


def check_online_settings(settings, source: str) -> None:
    """Raise a ``ValueError`` naming ``source`` if ``settings`` has keys that are not
    :class:`OnlineTracker` arguments (a typo would otherwise be found only at tracking time)."""
    import inspect

    known = set(inspect.signature(OnlineTracker).parameters) - {"model", "device"}
    unknown = sorted(set(settings or {}) - known)
    if unknown:
        raise ValueError(f"{source} `online` has unknown settings {unknown}; known: {', '.join(sorted(known))}")

"""The DropTrack network: OSTrack's one-stream ViT (Ye et al., ECCV 2022) as DropTrack uses it,
with optional STPN prompts.

Template tokens (``T×T`` crop, ``(T/p)²`` tokens) and search tokens (``S×S``) are embedded by the
ViT's patch embedding, each gets its **own** learned position embedding (both initialised from
the ViT's ``pos_embed``, resampled to their grids by timm's ``resample_abs_pos_embed``) and its
own temporal embedding (``template_embed`` / ``search_embed`` ``(C,)``: zeros, or the later /
earlier frame's from a pair-MAE export, :func:`stpn.pretraining.export.tracker_initialisation`).
The concatenation ``[prompts, template, search]`` goes through every ViT block (joint attention)
and the final norm; the search tokens, as a ``(B, C, S/p, S/p)`` map, feed the centre head.

Choices where the papers are vague or this library differs:

* the ViT's class / register tokens are not used (OSTrack drops the class token);
* one template: ``online_template`` is accepted for the online tracker's interface and ignored
  (OSTrack / DropTrack keep the first-frame template);
* no score head: :meth:`DropTrack.track` returns ``score_logits=None``, so
  :class:`~stpn.tracking.online.OnlineTracker` never swaps templates; the peak of the centre
  score map is in ``TrackerOutput.peak_scores``;
* candidate elimination (OSTrack's, optional, off by default: ``ce_layers=()``): in the blocks
  ``ce_layers`` only the ``ceil(ce_keep_ratio · n)`` search tokens the template attends to most
  go on; the dropped ones are zeros in the map the head sees
  (:mod:`stpn.droptrack.candidate_elimination` says which attention ranks them); ``forward``
  takes a ``ce_keep_ratio`` for training's ramp (:class:`~stpn.droptrack.objective.DropTrackObjective`);
* STPN: the support frames are past search crops embedded alone by the plain ViT
  (``PromptViT.embed``, its own ``pos_embed``, no template, no prompts, under ``no_grad`` unless
  ``support_grad``), as the MixFormer tracker does; the predictor's prompts (width ``C``, no
  position embedding) are prepended to the joint sequence and stripped after the blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from timm.layers import resample_abs_pos_embed
from torch import Tensor, nn

from stpn.backbones.base import check_crops, tokens_to_map
from stpn.backbones.vit import PromptViT
from stpn.droptrack.candidate_elimination import (
    TEMPLATE_RANGES,
    centre_index,
    eliminate,
    restore_search,
    template_attention,
)
from stpn.droptrack.center_head import CenterHead, CenterMaps, decode_boxes, hann_window
from stpn.prompts.stpn import STPN


@dataclass
class TrackerOutput:
    """``boxes (B, 4)`` normalised xyxy in the search crop; ``score_logits``: always None (no
    score head); ``maps``: the centre head's maps; ``peak_scores (B,)``: score at the chosen cell."""

    boxes: Tensor
    score_logits: Optional[Tensor]
    maps: CenterMaps
    peak_scores: Tensor


@dataclass
class JointTokens:
    """What the blocks leave of the search: ``tokens (B, F², C)`` after the final norm, in grid
    order, zeros where candidate elimination dropped a token; ``kept``: per elimination block,
    the ``(B, k)`` grid positions of the search tokens it kept (empty without elimination)."""

    tokens: Tensor
    kept: list[Tensor]


@dataclass
class TemplateTokens:
    """What :meth:`DropTrack.encode_templates` keeps: ``tokens (B, N_z, C)`` embedded template
    tokens (patches + position + temporal embeddings). One-stream attention mixes template and
    search in every block, so only the embedding can be reused across frames."""

    tokens: Tensor

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]


def grid_position_embed(vit: PromptViT, side: int) -> Tensor:
    """The ViT's patch position embedding (prefix entries dropped) resampled to ``side × side``
    → ``(1, side², C)``."""
    pos = vit.pos_embed.detach()
    old = tuple(vit.patch_embed.grid_size)
    if pos.shape[1] > old[0] * old[1]:
        pos = pos[:, vit.num_prefix_tokens:]
    return resample_abs_pos_embed(pos, (side, side), old, num_prefix_tokens=0).clone()


class DropTrack(nn.Module):
    """One-stream ViT + centre head (+ DVP predictor).

    Args:
        vit: a :class:`~stpn.backbones.vit.PromptViT` (``build_vit``).
        head: :class:`~stpn.droptrack.center_head.CenterHead` of width ``vit.embed_dim``.
        template_size, search_size: crop sides in pixels, multiples of the patch size.
        predictor: shallow DVP predictor ``(B, K, N, C), (B, K) → (B, N_P, C)`` or None.
        support_grad / support_grid: as :class:`~stpn.prompts.stpn.STPN`.
        ce_layers: 0-based blocks doing candidate elimination (OSTrack: ``(3, 6, 9)``; ``()`` = off).
        ce_keep_ratio: share of the remaining search tokens each of them keeps (OSTrack: 0.7).
        ce_template: rank by the attention of the template's ``"centre"`` token (OSTrack's
            ``CTR_POINT``) or of ``"all"`` template tokens.
    """

    def __init__(self, vit: PromptViT, head: CenterHead, template_size: int = 128, search_size: int = 256,
                 predictor: Optional[nn.Module] = None, support_grad: bool = False,
                 support_grid: Optional[tuple[int, int]] = None, ce_layers: Sequence[int] = (),
                 ce_keep_ratio: float = 0.7, ce_template: str = "centre") -> None:
        super().__init__()
        ce_layers = tuple(int(i) for i in ce_layers)
        if list(ce_layers) != sorted(set(ce_layers)) or any(not 0 <= i < len(vit.blocks) for i in ce_layers):
            raise ValueError(f"ce_layers must be increasing block indices in [0, {len(vit.blocks)}), got {ce_layers}")
        if not 0 < ce_keep_ratio <= 1:
            raise ValueError(f"ce_keep_ratio must be in (0, 1], got {ce_keep_ratio}")
        if ce_template not in TEMPLATE_RANGES:
            raise ValueError(f"ce_template must be one of {TEMPLATE_RANGES}, got {ce_template!r}")
        self.ce_layers, self.ce_keep_ratio, self.ce_template = ce_layers, float(ce_keep_ratio), ce_template
        patch = vit.patch_embed.patch_size[0]
        for name, size in (("template_size", template_size), ("search_size", search_size)):
            if size < patch or size % patch:
                raise ValueError(f"{name} must be a positive multiple of the patch size {patch}, got {size}")
        if getattr(predictor, "prompt_dims", None) is not None:
            raise ValueError("DropTrack takes shallow prompts (one set before the first block), not a deep predictor")
        self.vit, self.head, self.predictor = vit, head, predictor
        self.stride, self.template_size, self.search_size = patch, template_size, search_size
        dim = vit.embed_dim
        self.template_pos = nn.Parameter(grid_position_embed(vit, template_size // patch))
        self.search_pos = nn.Parameter(grid_position_embed(vit, search_size // patch))
        self.template_embed = nn.Parameter(torch.zeros(dim))
        self.search_embed = nn.Parameter(torch.zeros(dim))
        stpn = STPN(vit, predictor, support_grid, support_grad) if predictor is not None else None
        object.__setattr__(self, "stpn", stpn)  # not a child: keys stay vit.* / predictor.*
        self.has_stpn = predictor is not None
        self.num_prompts = predictor.num_prompts if predictor is not None else 0
        self.register_buffer("window", hann_window(self.feature_size), persistent=False)

    @property
    def feature_size(self) -> int:
        """Side ``F`` of the search token grid (16 for 256 px, patch 16)."""
        return self.search_size // self.stride

    def forward(self, template: Tensor, online_template: Optional[Tensor], search: Tensor,
                support: Optional[Tensor] = None, support_mask: Optional[Tensor] = None,
                prompts: Optional[Tensor] = None, with_score: bool = False,
                ce_keep_ratio: Optional[float] = None) -> TrackerOutput:
        """Training / one-shot pass: ``template (B, 3, T, T)``, ``search (B, 3, S, S)``,
        ``support (B, K, 3, S, S)`` past search crops (STPN) or ``prompts (B, N_P, C)``; no
        Hann window; ``ce_keep_ratio`` replaces the model's for this pass. ``online_template``
        and ``with_score`` are accepted and ignored."""
        memory = self.encode_templates(template)
        prompts = self._prompts(search.shape[0], support, support_mask, prompts)
        return self._run(search, memory, prompts, None, ce_keep_ratio)

    def encode_templates(self, template: Tensor, online_template: Optional[Tensor] = None) -> TemplateTokens:
        """``(B, 3, T, T)`` → :class:`TemplateTokens` (``online_template`` ignored)."""
        check_crops("template", template, self.template_size)
        return TemplateTokens(self._patch_tokens(template) + self.template_pos + self.template_embed)

    def track(self, search: Tensor, memory: TemplateTokens, prompts: Optional[Tensor] = None,
              with_score: bool = True) -> TrackerOutput:
        """Online step: the search crop against :meth:`encode_templates`' tokens, boxes read
        from the Hann-windowed score map."""
        if not isinstance(memory, TemplateTokens):
            raise ValueError(f"memory must be TemplateTokens from encode_templates, got {type(memory).__name__}")
        return self._run(search, memory, self._prompts(search.shape[0], None, None, prompts), self.window)

    def embed_support(self, frames: Tensor) -> Tensor:
        """``(F, 3, S, S)`` past search crops → ``(F, N, C)`` support embeddings (cacheable)."""
        check_crops("support frames", frames, self.search_size)
        return self._stpn_or_raise().embed_frames(frames)

    def predict_prompts(self, support_embeddings: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``(B, K, N, C)`` (+ ``(B, K)`` mask) → prompts ``(B, N_P, C)``."""
        return self._stpn_or_raise().predict_prompts(support_embeddings, mask)

    def search_map(self, search: Tensor, memory: TemplateTokens, prompts: Optional[Tensor] = None,
                   ce_keep_ratio: Optional[float] = None) -> Tensor:
        """Joint attention over ``[prompts, template, search]`` → search map ``(B, C, F, F)``."""
        x = self.joint_tokens(search, memory, prompts, ce_keep_ratio).tokens
        return tokens_to_map(x, self.feature_size, self.feature_size)

    def joint_tokens(self, search: Tensor, memory: TemplateTokens, prompts: Optional[Tensor] = None,
                     ce_keep_ratio: Optional[float] = None) -> JointTokens:
        """The blocks over ``[prompts (B, N_P, C), template (B, N_z, C), search (B, 3, S, S)]``
        with candidate elimination in ``ce_layers`` (keeping ``ce_keep_ratio``, default the
        model's) → :class:`JointTokens`."""
        keep_ratio = self.ce_keep_ratio if ce_keep_ratio is None else float(ce_keep_ratio)
        check_crops("search", search, self.search_size)
        if search.shape[0] != memory.batch_size:
            raise ValueError(f"search batch size {search.shape[0]} != template batch size {memory.batch_size}")
        x = self._patch_tokens(search) + self.search_pos + self.search_embed
        x = self.vit.norm_pre(torch.cat([memory.tokens, x], 1))
        if prompts is not None:
            x = torch.cat([prompts.to(x.dtype), x], 1)
        num_search = self.feature_size**2
        start = x.shape[1] - num_search  # prompts + template tokens, never dropped
        index, kept = None, []
        for i, block in enumerate(self.vit.blocks):
            if i not in self.ce_layers:
                x = block(x)
                continue
            if index is None:
                index = torch.arange(num_search, device=x.device).expand(x.shape[0], -1)
            scores = template_attention(block, x, self._template_rows(start, memory.tokens.shape[1]))
            x, index = eliminate(block(x), start, scores[:, start:], keep_ratio, index)
            kept.append(index)
        x = self.vit.norm(x)[:, start:]
        return JointTokens(restore_search(x, index, num_search), kept)

    def _template_rows(self, start: int, num_template: int) -> Tensor:
        """Sequence positions of the template queries that rank the search tokens."""
        first = start - num_template
        if self.ce_template == "all":
            return torch.arange(first, start, device=self.template_pos.device)
        side = self.template_size // self.stride
        return torch.tensor([first + centre_index(side)], device=self.template_pos.device)

    def _run(self, search: Tensor, memory: TemplateTokens, prompts: Optional[Tensor],
             window: Optional[Tensor], ce_keep_ratio: Optional[float] = None) -> TrackerOutput:
        maps = self.head(self.search_map(search, memory, prompts, ce_keep_ratio))
        boxes, peaks = decode_boxes(maps, window)
        return TrackerOutput(boxes, None, maps, peaks)

    def _patch_tokens(self, images: Tensor) -> Tensor:
        """``(B, 3, H, W)`` → ``(B, H/p · W/p, C)`` (timm's dynamic-size patch embedding returns NHWC)."""
        x = self.vit.patch_embed(images)
        return x.flatten(1, 2) if x.dim() == 4 else x

    def _stpn_or_raise(self) -> STPN:
        if self.stpn is None:
            raise ValueError("this tracker was built without STPN (build_droptrack(stpn=True) adds the predictor)")
        return self.stpn

    def _prompts(self, batch_size: int, support: Optional[Tensor], mask: Optional[Tensor],
                 prompts: Optional[Tensor]) -> Optional[Tensor]:
        if (support is not None or prompts is not None) and not self.has_stpn:
            raise ValueError("this tracker was built without STPN: it takes neither support frames nor prompts")
        if support is not None and prompts is not None:
            raise ValueError("give support frames or precomputed prompts, not both")
        if support is not None:
            if support.dim() != 5 or support.shape[0] != batch_size:
                raise ValueError(f"support must be (B={batch_size}, K, 3, S, S), got {tuple(support.shape)}")
            return self.predict_prompts(self.embed_support(support.flatten(0, 1)).unflatten(0, support.shape[:2]), mask)
        if prompts is not None and tuple(prompts.shape) != (batch_size, self.num_prompts, self.vit.embed_dim):
            raise ValueError(f"prompts must be ({batch_size}, {self.num_prompts}, {self.vit.embed_dim}), "
                             f"got {tuple(prompts.shape)}")
        return prompts

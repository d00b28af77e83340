"""The MixFormer tracker (Cui et al., CVPR 2022) with optional STPN prompts (Sun et al.,
ICCV 2023, supplementary §1): mixed-attention CvT → corner head (+ score head).

Two ways to run it:

* training / one-shot: :meth:`MixFormer.forward` runs templates and search jointly;
* online: :meth:`MixFormer.encode_templates` once per template update, then
  :meth:`MixFormer.track` per frame — the same numbers (tested), the template stream not redone.

STPN: the support frames are past search-size crops. The tracker holds the library's one
:class:`~stpn.prompts.stpn.STPN` over its backbone and DVP predictor (``MixFormer.stpn``), which
embeds each crop alone by the plain CvT (no template, no prompts; :meth:`MixFormer.embed_support`,
under ``no_grad`` unless ``support_grad``), so one frame's embedding can be cached whatever key
frame it later supports, and turns ``K`` embeddings into 9 prompts
(:meth:`MixFormer.predict_prompts`), which the backbone prepends to the search tokens.

Stage-2 training (MixFormer's score head): freeze every parameter whose name does not start with
``"score_head."``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import Tensor, nn

from stpn.backbones.base import check_crops
from stpn.prompts.stpn import STPN
from stpn.tracking.heads import CornerHead, ScoreHead, boxes_from_corner_logits
from stpn.tracking.mixed_attention import MixedAttentionCvT, TemplateMemory


@dataclass
class TrackerOutput:
    """``boxes (B, 4)``: normalised ``x1, y1, x2, y2`` in the search crop, in ``[0, 1]``;
    ``score_logits (B,)``: target-presence logits, or None when the score head was not run;
    ``corner_logits``: the corner head's top-left and bottom-right maps ``(B, 1, F, F)`` the
    boxes were read from (for :func:`stpn.tracking.losses.corner_map_loss`)."""

    boxes: Tensor
    score_logits: Optional[Tensor]
    corner_logits: Optional[tuple[Tensor, Tensor]] = None


class MixFormer(nn.Module):
    """Mixed-attention CvT backbone, corner box head, score head, optional DVP predictor.

    Args:
        backbone: a :class:`~stpn.tracking.mixed_attention.MixedAttentionCvT`.
        box_head: :class:`~stpn.tracking.heads.CornerHead` on the last-stage search map.
        score_head: :class:`~stpn.tracking.heads.ScoreHead`.
        predictor: DVP predictor ``(B, K, N, d_L), (B, K) → (B, 9, C_0)`` or None (no STPN).
        template_size, search_size: input sizes in pixels, multiples of the backbone stride (16).
        support_grad: let gradients reach the support pass (default False, released STPN code).
        support_grid: STPN's support grid (``stpn.prompts.build.support_tokens``; None: native).

    ``stpn``: the :class:`~stpn.prompts.stpn.STPN` over ``backbone`` and ``predictor`` (None
    without a predictor). It shares their modules but is kept out of this module's children, so
    the state-dict keys stay ``backbone.*`` / ``predictor.*`` (saved trackers load unchanged).
    """

    def __init__(
        self,
        backbone: MixedAttentionCvT,
        box_head: CornerHead,
        score_head: ScoreHead,
        predictor: Optional[nn.Module] = None,
        template_size: int = 128,
        search_size: int = 320,
        support_grad: bool = False,
        support_grid: Optional[tuple[int, int]] = None,
    ) -> None:
        super().__init__()
        self.stride = backbone.feature_info[-1]["reduction"]
        for name, size in (("template_size", template_size), ("search_size", search_size)):
            if size < self.stride or size % self.stride:
                raise ValueError(f"{name} must be a positive multiple of the backbone stride {self.stride}, got {size}")
        if getattr(predictor, "prompt_dims", None) is not None:
            raise ValueError("MixFormer takes shallow prompts (one set before the first block), not a deep predictor")
        stpn = STPN(backbone, predictor, support_grid, support_grad) if predictor is not None else None
        self.backbone, self.box_head, self.score_head, self.predictor = backbone, box_head, score_head, predictor
        object.__setattr__(self, "stpn", stpn)  # not a child: its modules are registered above
        self.template_size, self.search_size = template_size, search_size
        self.has_stpn = predictor is not None
        self.num_prompts = predictor.num_prompts if predictor is not None else 0

    @property
    def support_grad(self) -> bool:
        """Whether gradients reach the support pass (STPN's ``support_grad``)."""
        return self.stpn is not None and self.stpn.support_grad

    @property
    def feature_size(self) -> int:
        """Side of the last-stage search map (20 for 320 px)."""
        return self.search_size // self.stride

    def forward(
        self,
        template: Tensor,
        online_template: Optional[Tensor],
        search: Tensor,
        support: Optional[Tensor] = None,
        support_mask: Optional[Tensor] = None,
        prompts: Optional[Tensor] = None,
        with_score: bool = False,
    ) -> TrackerOutput:
        """Joint template + search pass.

        Args:
            template: ``(B, 3, T, T)``.
            online_template: ``(B, 3, T, T)``, ``(B, M, 3, T, T)`` for ``M`` online templates, or
                None for a copy of ``template`` (how MixFormer starts a sequence).
            search: ``(B, 3, S, S)``.
            support: ``(B, K, 3, S, S)`` past search crops (STPN only); ``support_mask (B, K)``
                bool, True for real frames.
            prompts: ``(B, 9, C_0)`` precomputed prompts instead of ``support``.
            with_score: also run the score head.
        """
        templates = self._templates(template, online_template)
        self._check_search(search, templates[0].shape[0])
        prompts = self._prompts(search.shape[0], support, support_mask, prompts)
        memory, search_map = self.backbone.forward_mixed(templates, search, prompts)
        return self._heads(search_map, memory, with_score)

    def embed_support(self, frames: Tensor) -> Tensor:
        """Support embeddings of single frames: ``(F, 3, S, S)`` → ``(F, N, d_L)`` last-stage
        tokens of the plain CvT (``N = (S/16)²``; :meth:`STPN.embed_frames`); cacheable per frame."""
        check_crops("support frames", frames, self.search_size)
        return self._stpn_or_raise().embed_frames(frames)

    def predict_prompts(self, support_embeddings: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``(B, K, N, d_L)`` support embeddings (+ ``(B, K)`` mask) → prompts ``(B, 9, C_0)``
        (:meth:`STPN.predict_prompts`)."""
        return self._stpn_or_raise().predict_prompts(support_embeddings, mask)

    def _stpn_or_raise(self) -> STPN:
        if self.stpn is None:
            raise ValueError("this tracker was built without STPN (build_mixformer(stpn=True) adds the predictor)")
        return self.stpn

    def encode_templates(self, template: Tensor, online_template: Optional[Tensor] = None) -> TemplateMemory:
        """Template stream alone (arguments as in :meth:`forward`) → per-block template
        keys/values and last-stage template maps, for :meth:`track`."""
        return self.backbone.encode_templates(self._templates(template, online_template))

    def track(
        self, search: Tensor, memory: TemplateMemory, prompts: Optional[Tensor] = None, with_score: bool = True
    ) -> TrackerOutput:
        """Search (+ prompts) stream against :meth:`encode_templates`' memory; equals
        :meth:`forward` with the same templates."""
        if not isinstance(memory, TemplateMemory):
            raise ValueError(f"memory must be a TemplateMemory from encode_templates, got {type(memory).__name__}")
        self._check_search(search, memory.batch_size)
        prompts = self._prompts(search.shape[0], None, None, prompts)
        return self._heads(self.backbone.track_search(search, memory, prompts), memory, with_score)

    def _heads(self, search_map: Tensor, memory: TemplateMemory, with_score: bool) -> TrackerOutput:
        corner_logits = self.box_head.corner_logits(search_map)
        boxes = boxes_from_corner_logits(*corner_logits)
        scores = self.score_head(search_map, memory.template_maps[0], boxes) if with_score else None
        return TrackerOutput(boxes, scores, corner_logits)

    def _templates(self, template: Tensor, online_template: Optional[Tensor]) -> list[Tensor]:
        check_crops("template", template, self.template_size)
        if online_template is None:
            return [template, template]
        if isinstance(online_template, Tensor) and online_template.dim() == 5:
            online = list(online_template.unbind(1))
        else:
            online = [online_template]
        for o in online:
            check_crops("online_template", o, self.template_size)
            if o.shape[0] != template.shape[0]:
                raise ValueError(f"online_template batch size {o.shape[0]} != template batch size {template.shape[0]}")
        return [template, *online]

    def _check_search(self, search: Tensor, batch_size: int) -> None:
        check_crops("search", search, self.search_size)
        if search.shape[0] != batch_size:
            raise ValueError(f"search batch size {search.shape[0]} != template batch size {batch_size}")

    def _prompts(
        self, batch_size: int, support: Optional[Tensor], mask: Optional[Tensor], prompts: Optional[Tensor]
    ) -> Optional[Tensor]:
        """Validated prompts ``(B, 9, C_0)``, predicted from ``support`` when given, or None."""
        if (support is not None or prompts is not None) and not self.has_stpn:
            raise ValueError("this tracker was built without STPN: it takes neither support frames nor prompts")
        if support is not None and prompts is not None:
            raise ValueError("give support frames or precomputed prompts, not both")
        if support is None and mask is not None:
            raise ValueError("support_mask given without support frames")
        if support is not None:
            if not isinstance(support, Tensor) or support.dim() != 5:
                shape = tuple(support.shape) if isinstance(support, Tensor) else type(support).__name__
                raise ValueError(f"support must be (B, K, 3, S, S), got {shape}")
            if support.shape[0] != batch_size:
                raise ValueError(f"support batch size {support.shape[0]} != search batch size {batch_size}")
            check_crops("support frames", support.flatten(0, 1), self.search_size)
            return self.predict_prompts(self.stpn.embed_support(support), mask)
        if prompts is not None:
            width = self.backbone.prompt_dims[0]
            if not isinstance(prompts, Tensor) or tuple(prompts.shape) != (batch_size, self.num_prompts, width):
                shape = tuple(prompts.shape) if isinstance(prompts, Tensor) else type(prompts).__name__
                raise ValueError(
                    f"prompts must be (B, N_P, C_0) = ({batch_size}, {self.num_prompts}, {width}), got {shape}"
                )
        return prompts

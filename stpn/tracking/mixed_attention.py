"""MixFormer's mixed-attention CvT (Cui et al., "MixFormer: End-to-End Tracking with Iterative
Mixed Attention", CVPR 2022), with STPN prompts in the search stream.

The weights are a plain :class:`~stpn.backbones.cvt.PromptCvT`'s (same modules, same state-dict
keys); only the way the token streams meet differs. At every stage each template map (the
template and any online templates) and the search map go through the stage's convolutional token
embedding separately; in every block:

* each map gets its own depthwise conv q/k/v projections
  (:meth:`~stpn.backbones.cvt_attention.ConvSelfAttention.project`), then the shared linear ones;
* **asymmetric mixed attention**: template queries attend to the template keys/values only
  (all templates together); search queries attend to template *and* search keys/values;
* LayerNorm, output projection, residuals, DropPath and MLP run over the concatenated sequence
  ``[templates, prompts, search]`` (:meth:`~stpn.backbones.cvt_attention.CvtBlock.run`), so
  one sample's streams share their DropPath draw, as in MixFormer.

STPN prompts (``N_P = 9``) are prepended to the search tokens: they skip the depthwise conv
projections like CvT's class token, attend to everything like search tokens, and template queries
never see them; at stages 1, 2 they pass the conv embedding as a 3×3 map
(:meth:`~stpn.backbones.cvt.ConvTokenEmbedding.embed_prompts`).

Because the template stream never reads the search stream, its keys/values per block can be
computed once (:meth:`MixedAttentionCvT.encode_templates` → :class:`TemplateMemory`) and reused
for every search frame (:meth:`MixedAttentionCvT.track_search`), which is what MixFormer's online
tracker does.

BatchNorm: as in MixFormer (``FREEZE_BN: true``), the BatchNorms of the depthwise conv
projections are frozen — always in eval mode (running statistics fixed, whatever ``train()``
says) and with ``requires_grad=False`` on their affine parameters. They stay ``nn.BatchNorm2d``
modules so the state dict keeps CvT's keys (MixFormer swaps in a buffer-only FrozenBatchNorm2d).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from stpn.backbones.base import check_prompts, tokens_to_map
from stpn.backbones.cvt import PromptCvT
from stpn.backbones.cvt_attention import ConvSelfAttention


@dataclass
class TemplateMemory:
    """The template stream of a mixed-attention pass, everything the search stream reads.

    Attributes:
        keys: one ``(B, M_j, C_j)`` tensor per block ``j``: the linear-projected keys of all
            template maps (template first, then the online templates), concatenated.
        values: same layout as ``keys``.
        template_maps: last-stage output of each template map, ``[(B, d_L, h_t, w_t), ...]``
            (``[0]`` is the initial template, read by the score head).
    """

    keys: list[Tensor]
    values: list[Tensor]
    template_maps: list[Tensor]

    @property
    def batch_size(self) -> int:
        return self.template_maps[0].shape[0]

    def to(self, *args, **kwargs) -> "TemplateMemory":
        """A copy with every tensor moved / cast (``Tensor.to`` arguments)."""
        return TemplateMemory(
            [k.to(*args, **kwargs) for k in self.keys],
            [v.to(*args, **kwargs) for v in self.values],
            [m.to(*args, **kwargs) for m in self.template_maps],
        )


@dataclass(frozen=True)
class StreamLayout:
    """Where the streams sit in one stage's sequence ``[templates..., prompts, search]``.

    ``template_shapes``: ``(h, w)`` of each template map (empty: no template stream);
    ``search_shape``: ``(h, w)`` of the search map (None: no search stream); ``num_prompts``.
    """

    template_shapes: tuple[tuple[int, int], ...]
    search_shape: Optional[tuple[int, int]]
    num_prompts: int

    @classmethod
    def of(cls, templates: Sequence[Tensor], search: Optional[Tensor], prompts: Optional[Tensor]) -> "StreamLayout":
        return cls(
            tuple(tuple(t.shape[-2:]) for t in templates),
            tuple(search.shape[-2:]) if search is not None else None,
            prompts.shape[1] if prompts is not None else 0,
        )

    @property
    def num_template(self) -> int:
        return sum(h * w for h, w in self.template_shapes)

    def join(self, templates: Sequence[Tensor], search: Optional[Tensor], prompts: Optional[Tensor]) -> Tensor:
        """Maps ``(B, C, h, w)`` and prompts ``(B, P, C)`` → sequence ``(B, N, C)``."""
        parts = [t.flatten(2).transpose(1, 2) for t in templates]
        if prompts is not None:
            parts.append(prompts)
        if search is not None:
            parts.append(search.flatten(2).transpose(1, 2))
        return torch.cat(parts, 1) if len(parts) > 1 else parts[0]

    def split(self, tokens: Tensor) -> tuple[list[Tensor], Optional[Tensor], Optional[Tensor]]:
        """Inverse of :meth:`join`: → (template maps, search map or None, prompts or None)."""
        n_t, n_p = self.num_template, self.num_prompts
        shapes = self.template_shapes
        templates = [tokens_to_map(t, h, w) for t, (h, w) in zip(_split(tokens[:, :n_t], shapes), shapes)]
        if self.search_shape is None:
            return templates, None, None
        prompts = tokens[:, n_t : n_t + n_p] if n_p else None
        return templates, tokens_to_map(tokens[:, n_t + n_p :], *self.search_shape), prompts


def mixed_attention(
    attention: ConvSelfAttention,
    normed: Tensor,
    layout: StreamLayout,
    template_kv: Optional[tuple[Tensor, Tensor]] = None,
    record: Optional[list] = None,
) -> Tensor:
    """MixFormer's asymmetric mixed attention over one block's LayerNorm-ed sequence
    ``(B, N, C)`` laid out as ``layout`` → ``(B, N, C)`` (before the output projection).

    Template queries read the template keys only; prompt and search queries read the template
    keys (computed here, or ``template_kv`` cached by an earlier encode) and the search keys.
    The template keys/values computed here are appended to ``record``.
    """
    outputs, n_t = [], layout.num_template
    if layout.template_shapes:
        out, k, v = template_attention(attention, normed[:, :n_t], layout.template_shapes)
        outputs.append(out)
        template_kv = (k, v)
        if record is not None:
            record.append(template_kv)
    if layout.search_shape is not None:
        k, v = template_kv if template_kv is not None else (None, None)
        outputs.append(search_attention(attention, normed[:, n_t:], layout.num_prompts, layout.search_shape, k, v))
    return torch.cat(outputs, 1) if len(outputs) > 1 else outputs[0]


def template_attention(
    attention: ConvSelfAttention, normed: Tensor, shapes: Sequence[tuple[int, int]]
) -> tuple[Tensor, Tensor, Tensor]:
    """Template queries over template keys only.

    ``normed (B, Σ h_i·w_i, C)``: the LayerNorm-ed tokens of the template maps of ``shapes``
    in order → ``(out (B, Σ h_i·w_i, C), keys (B, M, C), values (B, M, C))``.
    """
    projected = [attention.project(None, tokens_to_map(t, h, w)) for t, (h, w) in zip(_split(normed, shapes), shapes)]
    q, k, v = (torch.cat(parts, 1) for parts in zip(*projected))
    return attention.attend(q, k, v), k, v


def search_attention(
    attention: ConvSelfAttention,
    normed: Tensor,
    num_prompts: int,
    shape: tuple[int, int],
    template_keys: Optional[Tensor] = None,
    template_values: Optional[Tensor] = None,
) -> Tensor:
    """Search (and prompt) queries over template + search keys.

    ``normed (B, P + h·w, C)`` ``[prompts, search patches]`` (LayerNorm-ed); template keys /
    values ``(B, M, C)`` or None (then this is CvT's plain self-attention) → ``(B, P + h·w, C)``.
    """
    extra = normed[:, :num_prompts] if num_prompts else None
    q, k, v = attention.project(extra, tokens_to_map(normed[:, num_prompts:], *shape))
    if template_keys is not None:
        k, v = torch.cat([template_keys, k], 1), torch.cat([template_values, v], 1)
    return attention.attend(q, k, v)


class MixedAttentionCvT(PromptCvT):
    """A :class:`PromptCvT` (same weights and keys, no class token) that runs MixFormer's mixed
    attention; see the module docstring. The inherited ``embed`` / ``forward_features`` stay the
    plain single-image CvT pass (used for STPN support embeddings)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if any(stage.cls_token is not None for stage in self.stages):
            raise ValueError("MixFormer's CvT has no class token: build it with cls_token all False")
        for norm in self._batch_norms():
            norm.weight.requires_grad_(False)
            norm.bias.requires_grad_(False)
        self.train(self.training)

    def _batch_norms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> "MixedAttentionCvT":
        """Sets the mode as usual, but the frozen BatchNorms always stay in eval mode."""
        super().train(mode)
        for norm in self._batch_norms():
            norm.eval()
        return self

    @property
    def num_blocks(self) -> int:
        return len(self.prompt_dims)

    def forward_mixed(
        self, templates: Sequence[Tensor], search: Tensor, prompts: Optional[Tensor] = None
    ) -> tuple[TemplateMemory, Tensor]:
        """Joint pass. ``templates [(B, 3, T, T), ...]`` (template first), ``search (B, 3, S, S)``,
        ``prompts (B, 9, C_0)`` or None → (template memory, last-stage search map
        ``(B, d_L, S/16, S/16)``)."""
        return self._run_streams(list(templates), search, prompts, None)

    def encode_templates(self, templates: Sequence[Tensor]) -> TemplateMemory:
        """Template stream alone: ``[(B, 3, T, T), ...]`` → :class:`TemplateMemory`."""
        return self._run_streams(list(templates), None, None, None)[0]

    def track_search(
        self, search: Tensor, memory: Optional[TemplateMemory], prompts: Optional[Tensor] = None
    ) -> Tensor:
        """Search stream against cached template keys/values: ``(B, 3, S, S)`` → last-stage
        search map ``(B, d_L, S/16, S/16)``. ``memory=None`` gives the plain (prompted) CvT pass."""
        if memory is not None:
            if len(memory.keys) != self.num_blocks or len(memory.values) != self.num_blocks:
                raise ValueError(
                    f"template memory has {len(memory.keys)} blocks, this backbone has {self.num_blocks}"
                )
            if memory.batch_size != search.shape[0]:
                raise ValueError(
                    f"template memory batch size {memory.batch_size} != search batch size {search.shape[0]}"
                )
        return self._run_streams(None, search, prompts, memory)[1]

    def _run_streams(
        self,
        templates: Optional[list[Tensor]],
        search: Optional[Tensor],
        prompts: Optional[Tensor],
        memory: Optional[TemplateMemory],
    ) -> tuple[Optional[TemplateMemory], Optional[Tensor]]:
        """One loop for every mode: templates only (encode), search only (+ memory: track;
        without: plain CvT), both (joint forward)."""
        if prompts is not None:
            check_prompts(prompts, self.prompt_dims, search.shape[0], self.required_num_prompts)
        templates, record, block = templates or [], [], 0
        for i, stage in enumerate(self.stages):
            templates = [stage.embedding(t) for t in templates]
            if search is not None:
                search = stage.embedding(search)
            if prompts is not None and i > 0:
                prompts = stage.embedding.embed_prompts(prompts)
            layout = StreamLayout.of(templates, search, prompts)
            tokens = layout.join(templates, search, prompts)
            for layer in stage.layers:
                cached = (memory.keys[block], memory.values[block]) if memory is not None else None
                attend = partial(mixed_attention, layer.attention.attention, layout=layout, template_kv=cached, record=record)
                tokens = layer.run(tokens, attend)
                block += 1
            templates, search, prompts = layout.split(tokens)
        if not templates:
            return None, search
        return TemplateMemory([k for k, _ in record], [v for _, v in record], templates), search


def _split(tokens: Tensor, shapes: Sequence[tuple[int, int]]) -> tuple[Tensor, ...]:
    """``(B, Σ h_i·w_i, C)`` → one ``(B, h_i·w_i, C)`` chunk per shape."""
    return tokens.split([h * w for h, w in shapes], 1)

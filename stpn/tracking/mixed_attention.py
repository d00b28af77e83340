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
        keys, values, block = [], [], 0
        for i, stage in enumerate(self.stages):
            if templates is not None:
                templates = [stage.embedding(t) for t in templates]
                shapes = [tuple(t.shape[-2:]) for t in templates]
                template_tokens = torch.cat([t.flatten(2).transpose(1, 2) for t in templates], 1)
            if search is not None:
                search = stage.embedding(search)
                search_shape = tuple(search.shape[-2:])
                search_tokens = search.flatten(2).transpose(1, 2)
                if prompts is not None:
                    if i > 0:
                        prompts = stage.embedding.embed_prompts(prompts)
                    search_tokens = torch.cat([prompts, search_tokens], 1)
            num_prompts = prompts.shape[1] if prompts is not None else 0
            num_template = template_tokens.shape[1] if templates is not None else 0
            parts = ([template_tokens] if templates is not None else []) + ([search_tokens] if search is not None else [])
            tokens = torch.cat(parts, 1) if len(parts) > 1 else parts[0]

            for layer in stage.layers:
                attention = layer.attention.attention

                def mixed(normed: Tensor) -> Tensor:
                    outputs, k, v = [], None, None
                    if templates is not None:
                        out, k, v = template_attention(attention, normed[:, :num_template], shapes)
                        keys.append(k)
                        values.append(v)
                        outputs.append(out)
                    elif memory is not None:
                        k, v = memory.keys[block], memory.values[block]
                    if search is not None:
                        outputs.append(
                            search_attention(attention, normed[:, num_template:], num_prompts, search_shape, k, v)
                        )
                    return torch.cat(outputs, 1) if len(outputs) > 1 else outputs[0]

                tokens = layer.run(tokens, mixed)
                block += 1

            if templates is not None:
                templates = [
                    tokens_to_map(t, h, w) for t, (h, w) in zip(_split(tokens[:, :num_template], shapes), shapes)
                ]
            if search is not None:
                if prompts is not None:
                    prompts = tokens[:, num_template : num_template + num_prompts]
                search = tokens_to_map(tokens[:, num_template + num_prompts :], *search_shape)
        new_memory = TemplateMemory(keys, values, templates) if templates is not None else None
        return new_memory, search


def _split(tokens: Tensor, shapes: Sequence[tuple[int, int]]) -> tuple[Tensor, ...]:
    """``(B, Σ h_i·w_i, C)`` → one ``(B, h_i·w_i, C)`` chunk per shape."""
    return tokens.split([h * w for h, w in shapes], 1)

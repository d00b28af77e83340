"""Prompt-aware CvT (Wu et al., "CvT: Introducing Convolutions to Vision Transformers", ICCV 2021),
the backbone of MixFormer; STPN prompts as in the STPN supplementary §1.

:class:`PromptCvT` is written in plain PyTorch (timm's DropPath / QuickGELU only); its state-dict
keys and shapes equal transformers' ``CvtModel`` so those weights load unchanged, and official
microsoft/CvT checkpoints load through :mod:`stpn.backbones.cvt_convert`. Without prompts every
stage output equals ``CvtModel``'s hidden states (tested).

Prompts (``N_P = 9``, so that they form a 3×3 map):

* they enter after the first stage's convolutional token embedding (the 7×7 stride-4 image
  embedding has no prompt analogue);
* at each later stage's convolutional embedding (3×3, stride 2) they are reshaped to a 3×3 map
  (row-major: prompt ``r·3 + c`` at row ``r``, column ``c``) and go through the same conv with
  zero padding 2 instead of the patches' padding, so they stay 3×3, then through the same
  LayerNorm (and embedding dropout), and are prepended again;
* inside attention they are treated like CvT's class token: split off before the depthwise conv
  projections of q/k/v, concatenated back before the linear projections
  (:mod:`stpn.backbones.cvt_attention`); LayerNorm and MLP apply to them as to patches;
* the sequence is ``[cls (last stage only, if configured), prompts, patches]``: the class token
  stays first as in CvT, so that the patch tokens stay a contiguous tail;
* STPN deep replaces the prompts before every block with that block's set; the next stage's set
  then replaces them at stage boundaries, so the conv embedding of prompts is skipped in deep
  mode.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stpn.backbones.base import Prompts, check_images, check_prompts, tokens_to_map
from stpn.backbones.cvt_attention import ACTIVATIONS, CvtBlock
from stpn.backbones.cvt_convert import checkpoint_format, convert_cvt_checkpoint
from stpn.backbones.weights import StateDict, load_weights, read_state_dict

PROMPT_GRID = 3  # prompts form a 3×3 map so the stride-2 conv embeddings can process them


@dataclass(frozen=True)
class CvtSpec:
    """CvT architecture, one entry per stage; field names and defaults are transformers'
    ``CvtConfig`` (= CvT-13). transformers' ``layer_norm_eps`` is not a field: its ``CvtModel``
    ignores it and uses LayerNorm's default 1e-5, as the official code does."""

    num_channels: int = 3
    patch_sizes: tuple = (7, 3, 3)
    patch_stride: tuple = (4, 2, 2)
    patch_padding: tuple = (2, 1, 1)
    embed_dim: tuple = (64, 192, 384)
    num_heads: tuple = (1, 3, 6)
    depth: tuple = (1, 2, 10)
    mlp_ratio: tuple = (4.0, 4.0, 4.0)
    attention_drop_rate: tuple = (0.0, 0.0, 0.0)
    drop_rate: tuple = (0.0, 0.0, 0.0)
    drop_path_rate: tuple = (0.0, 0.0, 0.1)
    qkv_bias: tuple = (True, True, True)
    cls_token: tuple = (False, False, True)
    qkv_projection_method: tuple = ("dw_bn", "dw_bn", "dw_bn")
    kernel_qkv: tuple = (3, 3, 3)
    padding_kv: tuple = (1, 1, 1)
    stride_kv: tuple = (2, 2, 2)
    padding_q: tuple = (1, 1, 1)
    stride_q: tuple = (1, 1, 1)

    def __post_init__(self) -> None:
        stages = len(self.depth)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "num_channels" and len(value) != stages:
                raise ValueError(f"CvT {f.name} has {len(value)} entries, depth has {stages} stages")
        for i in range(stages):
            dim, heads, method = self.embed_dim[i], self.num_heads[i], self.qkv_projection_method[i]
            if dim % heads:
                raise ValueError(f"stage {i}: embed_dim {dim} not divisible by num_heads {heads}")
            if method != "dw_bn":
                raise ValueError(f"stage {i}: qkv_projection_method {method!r} unsupported (only 'dw_bn')")
            if self.depth[i] < 1:
                raise ValueError(f"stage {i}: depth must be >= 1, got {self.depth[i]}")


# Paper Table 2 (CvT-13, CvT-21, CvT-W24); all other fields are CvtConfig's defaults.
CVT_VARIANTS: dict[str, dict[str, Any]] = {
    "cvt-13": dict(depth=(1, 2, 10)),
    "cvt-21": dict(depth=(1, 4, 16)),
    "cvt-w24": dict(embed_dim=(192, 768, 1024), num_heads=(3, 12, 16), depth=(2, 2, 20)),
}
_SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(CvtSpec))


def resolve_spec(config: Any = None, variant: str = "cvt-21", **overrides) -> CvtSpec:
    """``variant``'s architecture, then the fields of ``config`` (a ``dict`` with some fields, or
    an object with all of them, e.g. ``transformers.CvtConfig``), then ``overrides``."""
    if variant not in CVT_VARIANTS:
        raise ValueError(f"unknown CvT variant {variant!r}; choose one of {', '.join(CVT_VARIANTS)}")
    values = dict(CVT_VARIANTS[variant])
    if config is not None:
        if isinstance(config, Mapping):
            values.update(config)
        else:
            missing = [f for f in _SPEC_FIELDS if not hasattr(config, f)]
            if missing:
                raise ValueError(f"{type(config).__name__} is not a CvtConfig: it lacks {', '.join(missing)}")
            values.update({f: getattr(config, f) for f in _SPEC_FIELDS})
    values.update(overrides)
    unknown = sorted(set(values) - set(_SPEC_FIELDS))
    if unknown:
        raise ValueError(f"unknown CvT config fields: {', '.join(unknown)}")
    return CvtSpec(**{k: tuple(v) if isinstance(v, (list, tuple)) else v for k, v in values.items()})


def prompt_padding(kernel_size: int, stride: int, grid: int = PROMPT_GRID) -> Optional[int]:
    """Smallest zero padding that keeps a ``grid×grid`` map ``grid×grid`` under this conv
    (2 for CvT's 3×3 stride-2 embeddings, as in the STPN supplementary); None if none does."""
    for pad in range(kernel_size + stride * grid):
        if grid + 2 * pad >= kernel_size and (grid + 2 * pad - kernel_size) // stride + 1 == grid:
            return pad
    return None


class ConvTokenEmbedding(nn.Module):
    """Conv + LayerNorm over channels: ``(B, C_in, H, W)`` → ``(B, C, H', W')``."""

    def __init__(self, dim_in: int, dim: int, patch_size: int, stride: int, padding: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(dim_in, dim, patch_size, stride=stride, padding=padding)
        self.normalization = nn.LayerNorm(dim)
        self.prompt_padding = prompt_padding(patch_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.normalization(self.projection(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def embed_prompts(self, prompts: Tensor) -> Tensor:
        """``(B, 9, C_in)`` → ``(B, 9, C)``: as a 3×3 map through the same conv (zero padding
        :attr:`prompt_padding` instead of the patches' padding) and the same norm."""
        conv = self.projection
        if self.prompt_padding is None:
            raise ValueError(
                f"a {PROMPT_GRID}x{PROMPT_GRID} prompt map cannot keep its size under a "
                f"{conv.kernel_size} conv with stride {conv.stride}"
            )
        grid = tokens_to_map(prompts, PROMPT_GRID, PROMPT_GRID)
        out = F.conv2d(grid, conv.weight, conv.bias, stride=conv.stride, padding=self.prompt_padding)
        return self.normalization(out.flatten(2).transpose(1, 2))


class StageEmbedding(nn.Module):
    """:class:`ConvTokenEmbedding` + dropout (transformers' ``CvtEmbeddings`` layout)."""

    def __init__(self, drop_rate: float = 0.0, **conv_kwargs) -> None:
        super().__init__()
        self.convolution_embeddings = ConvTokenEmbedding(**conv_kwargs)
        self.dropout = nn.Dropout(drop_rate)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.convolution_embeddings(x))

    def embed_prompts(self, prompts: Tensor) -> Tensor:
        return self.dropout(self.convolution_embeddings.embed_prompts(prompts))


class CvtStage(nn.Module):
    """Conv embedding, optional class token, ``depth`` :class:`CvtBlock` s.

    ``forward(x (B, C_in, H, W), prompts (B, P, C) | None, block_prompts [(B, P, C)] * depth | None)
    → ((B, C, h, w) patch map, (B, P, C) prompts | None)``. ``prompts`` are prepended after the
    embedding (already at this stage's width); ``block_prompts`` (deep) replace them before
    each block.
    """

    def __init__(self, spec: CvtSpec, index: int, activation: str = "gelu") -> None:
        super().__init__()
        i, dim = index, spec.embed_dim[index]
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if spec.cls_token[i] else None
        self.embedding = StageEmbedding(
            drop_rate=spec.drop_rate[i],
            dim_in=spec.num_channels if i == 0 else spec.embed_dim[i - 1],
            dim=dim,
            patch_size=spec.patch_sizes[i],
            stride=spec.patch_stride[i],
            padding=spec.patch_padding[i],
        )
        # official CvT rule: rates rise linearly from 0 to drop_path_rate[i] over the stage's blocks
        drop_path = [spec.drop_path_rate[i] * j / max(spec.depth[i] - 1, 1) for j in range(spec.depth[i])]
        self.layers = nn.ModuleList(
            CvtBlock(
                dim,
                spec.num_heads[i],
                mlp_ratio=spec.mlp_ratio[i],
                drop_rate=spec.drop_rate[i],
                drop_path_rate=drop_path[j],
                activation=activation,
                kernel_size=spec.kernel_qkv[i],
                padding_q=spec.padding_q[i],
                padding_kv=spec.padding_kv[i],
                stride_q=spec.stride_q[i],
                stride_kv=spec.stride_kv[i],
                qkv_bias=spec.qkv_bias[i],
                attention_drop_rate=spec.attention_drop_rate[i],
            )
            for j in range(spec.depth[i])
        )

    def forward(
        self,
        x: Tensor,
        prompts: Optional[Tensor] = None,
        block_prompts: Optional[Sequence[Tensor]] = None,
    ) -> tuple[Tensor, Optional[Tensor]]:
        x = self.embedding(x)
        b, _, h, w = x.shape
        patches = x.flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(b, -1, -1) if self.cls_token is not None else None
        for j, layer in enumerate(self.layers):
            if block_prompts is not None:
                prompts = block_prompts[j]
            extra = [t for t in (cls, prompts) if t is not None]
            num_extra = sum(t.shape[1] for t in extra)
            seq = layer(torch.cat(extra + [patches], 1), h, w, num_extra)
            if cls is not None:
                cls = seq[:, :1]
            if prompts is not None:
                prompts = seq[:, num_extra - prompts.shape[1] : num_extra]
            patches = seq[:, num_extra:]
        return tokens_to_map(patches, h, w), prompts


class PromptCvT(nn.Module):
    """CvT + STPN prompts (see the module docstring). State dict = transformers ``CvtModel``'s.

    Args:
        spec: architecture (:func:`resolve_spec`).
        out_indices: stages whose maps :meth:`forward_features` returns.
        activation: MLP activation, ``"gelu"`` (transformers) or ``"quick_gelu"`` (official CvT
            and MixFormer code, which the official checkpoints were trained with).
    """

    def __init__(
        self, spec: CvtSpec = CvtSpec(), out_indices: Sequence[int] = (0, 1, 2), activation: str = "gelu"
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        num_stages = len(spec.depth)
        self.out_indices = tuple(out_indices)
        if not self.out_indices or any(not 0 <= i < num_stages for i in self.out_indices):
            raise ValueError(f"out_indices {self.out_indices} must be non-empty and within the {num_stages} stages")
        self.spec, self.activation = spec, activation
        stages = nn.ModuleList(CvtStage(spec, i, activation) for i in range(num_stages))
        self.encoder = nn.ModuleDict({"stages": stages})  # keys "encoder.stages.{i}...", as transformers
        reductions = [math.prod(spec.patch_stride[: i + 1]) for i in range(num_stages)]
        self.feature_info = [
            {"num_chs": spec.embed_dim[i], "reduction": reductions[i], "module": f"encoder.stages.{i}"}
            for i in self.out_indices
        ]
        self.prompt_dims = tuple(spec.embed_dim[i] for i in range(num_stages) for _ in range(spec.depth[i]))
        self.support_dim = spec.embed_dim[-1]
        self.required_num_prompts = PROMPT_GRID * PROMPT_GRID
        self.apply(_init_weights)
        for stage in self.stages:
            if stage.cls_token is not None:
                nn.init.trunc_normal_(stage.cls_token, std=0.02)

    @property
    def stages(self) -> nn.ModuleList:
        return self.encoder["stages"]

    def embed(self, images: Tensor) -> Tensor:
        """Support embeddings ``(B, d_L, h, w)``: the last stage's patch tokens without prompts,
        no extra norm (= transformers' ``CvtModel`` ``last_hidden_state``; CvT has no final
        norm on patch tokens, its ``norm`` belongs to the classifier)."""
        check_images(images)
        return self._run(images, None, deep=False, last=len(self.stages) - 1)[-1]

    def forward_features(self, images: Tensor, prompts: Prompts = None) -> list[Tensor]:
        """``(B, 3, H, W)`` (+ prompts, see :mod:`stpn.backbones.base`) →
        ``[(B, C_i, H_i, W_i) for i in out_indices]``, class token and prompts stripped."""
        check_images(images)
        sets = check_prompts(prompts, self.prompt_dims, images.shape[0], self.required_num_prompts)
        deep = sets is not None and not isinstance(prompts, Tensor)
        maps = self._run(images, sets, deep, last=max(self.out_indices))
        return [maps[i] for i in self.out_indices]

    forward = forward_features

    def _run(self, images: Tensor, sets: Optional[list[Tensor]], deep: bool, last: int) -> list[Tensor]:
        """Stage maps ``0..last``; ``sets``: one shallow set or one set per block (deep)."""
        x, maps, first_block = images, [], 0
        prompts = sets[0] if sets is not None and not deep else None
        for i, stage in enumerate(self.stages[: last + 1]):
            block_prompts = None
            if deep:
                block_prompts = sets[first_block : first_block + len(stage.layers)]
            elif prompts is not None and i > 0:
                prompts = stage.embedding.embed_prompts(prompts)
            x, prompts = stage(x, prompts, block_prompts)
            first_block += len(stage.layers)
            maps.append(x)
        return maps


def _init_weights(module: nn.Module) -> None:
    """transformers' / official init: truncated normal (std 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def build_cvt(
    config: Any = None,
    variant: str = "cvt-21",
    weights: Optional[str] = None,
    *,
    activation: Optional[str] = None,
    out_indices: Sequence[int] = (0, 1, 2),
    **overrides,
) -> PromptCvT:
    """A prompt-aware CvT.

    Args:
        config: ``transformers.CvtConfig`` (read by attribute, transformers is not imported) or a
            ``dict`` of :class:`CvtSpec` fields; overrides ``variant``'s fields.
        variant: ``"cvt-13"``, ``"cvt-21"`` (MixFormer's default) or ``"cvt-w24"``.
        weights: a local checkpoint file, official microsoft/CvT or transformers format (detected
            from the keys); classifier parts are dropped, and a checkpoint's class token is
            dropped when the model has none (MixFormer builds CvT with ``cls_token`` all False).
        activation: ``"gelu"`` / ``"quick_gelu"``; default: ``"quick_gelu"`` for official
            checkpoints (trained with it), else ``"gelu"`` (transformers' choice).
        **overrides: :class:`CvtSpec` fields, e.g. ``cls_token=(False, False, False)``.
    """
    spec = resolve_spec(config, variant, **overrides)
    if activation is None:
        activation = default_activation(weights)
    model = PromptCvT(spec, out_indices=out_indices, activation=activation)
    if weights is not None:
        load_cvt_weights(model, weights)
    return model


def default_activation(weights: Optional[str] = None) -> str:
    """``"quick_gelu"`` for an official microsoft/CvT checkpoint (trained with it), else
    ``"gelu"`` (transformers' choice)."""
    official = weights is not None and checkpoint_format(read_state_dict(weights)) == "official"
    return "quick_gelu" if official else "gelu"


def load_cvt_weights(model: PromptCvT, weights: str) -> None:
    """Load a local CvT checkpoint (official or transformers format) into ``model`` (a
    :class:`PromptCvT` or subclass); classifier parts and an unused class token are dropped."""
    own = set(model.state_dict())

    def convert(state: StateDict) -> StateDict:
        state = convert_cvt_checkpoint(state)
        return {k: v for k, v in state.items() if k in own or not k.endswith(".cls_token")}

    load_weights(model, weights, convert=convert)

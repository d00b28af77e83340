"""``build_mixformer``: a plain factory for the MixFormer tracker (+ STPN)."""
from __future__ import annotations

import dataclasses
from typing import Optional

from stpn.backbones.cvt import default_activation, load_cvt_weights, resolve_spec
from stpn.prompts.build import build_predictor, support_tokens
from stpn.tracking.heads import CornerHead, ScoreHead
from stpn.tracking.mixed_attention import MixedAttentionCvT
from stpn.tracking.model import MixFormer

# "tiny": a CPU-trainable toy for tests and the built-in benchmark (not a published model)
TINY = dict(embed_dim=(16, 32, 64), num_heads=(1, 2, 2), depth=(1, 1, 2))
VARIANTS = ("cvt-13", "cvt-21", "cvt-w24", "tiny")
HEAD_CHANNELS = 384  # MixFormer's HEAD_DIM default (tiny: 32)


def build_mixformer(
    variant: str = "cvt-21",
    stpn: bool = False,
    predictor: str = "att",
    weights: Optional[str] = None,
    template_size: int = 128,
    search_size: int = 320,
    *,
    activation: Optional[str] = None,
    head_channels: Optional[int] = None,
    support_grad: bool = False,
    **cvt_overrides,
) -> MixFormer:
    """A MixFormer tracker on the mixed-attention CvT, with STPN prompts if ``stpn``.

    Args:
        variant: ``"cvt-21"`` (MixFormer's default), ``"cvt-13"``, ``"cvt-w24"`` (MixFormer-L) or
            ``"tiny"`` (16/32/64 wide, 1/1/2 blocks; for tests).
        stpn: add a DVP predictor (9 prompts at the first stage's width).
        predictor: ``"att"`` / ``"avg"`` (the released STPN predictors, = ``"relation"`` /
            ``"topk"``), ``"transformer"`` or ``"mixer"`` (the paper's).
        weights: local CvT checkpoint (official microsoft/CvT or transformers format) loaded into
            the backbone; classifier and class token are dropped.
        template_size, search_size: input sizes, multiples of 16 (128 → 8×8, 320 → 20×20 tokens).
        activation: MLP activation; default ``"quick_gelu"`` for official weights, else ``"gelu"``.
        head_channels: corner-head width (384, tiny: 32).
        support_grad: let gradients reach the support pass.
        **cvt_overrides: :class:`~stpn.backbones.cvt.CvtSpec` fields.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown MixFormer variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if variant == "tiny":
        cvt_overrides = {**TINY, **cvt_overrides}
    if any(cvt_overrides.get("cls_token", ())):
        raise ValueError("MixFormer's CvT has no class token: cls_token must be all False")
    spec = resolve_spec(None, "cvt-13" if variant == "tiny" else variant, **cvt_overrides)
    spec = dataclasses.replace(spec, cls_token=(False,) * len(spec.depth))
    backbone = MixedAttentionCvT(spec, activation=activation or default_activation(weights))
    if weights is not None:
        load_cvt_weights(backbone, weights)
    dim = backbone.support_dim
    box_head = CornerHead(dim, head_channels or (32 if variant == "tiny" else HEAD_CHANNELS))
    score_head = ScoreHead(dim)
    dvp = grid = None
    if stpn:
        native = (search_size // backbone.feature_info[-1]["reduction"],) * 2  # search crops: fixed size
        grid, options = support_tokens(predictor, default_grid=native)
        dvp = build_predictor(predictor, dim, backbone.prompt_dims[0], backbone.required_num_prompts, **options)
    return MixFormer(backbone, box_head, score_head, dvp, template_size, search_size, support_grad, grid)

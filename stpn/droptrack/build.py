"""``build_droptrack``: a plain factory for the DropTrack network (+ STPN), optionally
initialised from an exported pair-MAE pre-training run."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import torch

from stpn.backbones.vit import build_vit
from stpn.droptrack.center_head import CenterHead
from stpn.droptrack.model import DropTrack
from stpn.prompts.build import build_predictor, support_tokens

# "tiny": a CPU-trainable toy for tests and the built-in benchmark (not a published model)
TINY = dict(variant="vit_tiny_patch16_224", img_size=64, patch_size=8, embed_dim=96, depth=4, num_heads=3)


def build_droptrack(
    variant: str = "vit_base_patch16_224",
    stpn: bool = False,
    predictor: str = "att",
    template_size: int = 128,
    search_size: int = 256,
    head_channels: int = 256,
    num_prompts: int = 9,
    support_grad: bool = False,
    pretrained: Optional[Union[str, Path]] = None,
    ce_layers: Sequence[int] = (),
    ce_keep_ratio: float = 0.7,
    ce_template: str = "centre",
    **vit_kwargs: Any,
) -> DropTrack:
    """A DropTrack network.

    Args:
        variant: timm ViT name for ``build_vit``, or ``"tiny"`` (:data:`TINY`, for tests).
        stpn / predictor / num_prompts: add a DVP predictor (``build_predictor`` names) making
            ``num_prompts`` prompts of the ViT's width (9, as the MixFormer tracker).
        template_size, search_size: 128 / 256 (OSTrack-256; DropTrack-384 uses 384).
        head_channels: centre-head width (OSTrack: 256).
        pretrained: an exported pre-training run (``encoder.json``, ``encoder.safetensors``,
            ``temporal_embed.safetensors``): the ViT is built as there (``variant`` is then
            ignored; ``vit_kwargs`` may add options without weights, e.g. OSTrack's
            ``drop_path_rate`` 0.1) and loaded, the position
            embeddings resampled from its ``pos_embed``, the template / search temporal
            embeddings set to the later / earlier frame's.
        ce_layers / ce_keep_ratio / ce_template: OSTrack's candidate elimination
            (:class:`~stpn.droptrack.model.DropTrack`; OSTrack: ``[3, 6, 9]``, 0.7, ``"centre"``;
            ``[]`` = off, the default).
        **vit_kwargs: ``build_vit`` overrides (``embed_dim``, ``depth``, ``patch_size``…).
    """
    if pretrained is not None:
        config = json.loads(_run_file(pretrained, "encoder.json").read_text())
        variant, vit_kwargs = config.pop("variant"), {**config, **vit_kwargs}
    elif variant == "tiny":
        tiny = dict(TINY)
        variant, vit_kwargs = tiny.pop("variant"), {**tiny, **vit_kwargs}
    vit = build_vit(variant, **vit_kwargs)
    if pretrained is not None:
        init = _load_initialisation(pretrained)
        vit.load_state_dict(init["encoder"], strict=True)
    dvp = grid = None
    if stpn:
        native = (search_size // vit.patch_embed.patch_size[0],) * 2
        grid, options = support_tokens(predictor, default_grid=native)
        dvp = build_predictor(predictor, vit.embed_dim, vit.embed_dim, num_prompts, **options)
    model = DropTrack(vit, CenterHead(vit.embed_dim, head_channels), template_size, search_size, dvp,
                      support_grad, grid, ce_layers=ce_layers, ce_keep_ratio=ce_keep_ratio, ce_template=ce_template)
    if pretrained is not None:
        with torch.no_grad():
            model.template_embed.copy_(init["template_embed"])
            model.search_embed.copy_(init["search_embed"])
    return model


def _run_file(run_dir: Union[str, Path], name: str) -> Path:
    path = Path(run_dir) / name
    if not path.is_file():
        raise FileNotFoundError(f"no {name} in {run_dir}: not an exported pre-training run")
    return path


def _load_initialisation(run_dir: Union[str, Path]) -> dict:
    from stpn.pretraining.export import tracker_initialisation

    return tracker_initialisation(run_dir)


"""Pre-trained encoder out of a pair MAE: timm's ViT key layout plus the two temporal embeddings.

``encoder.safetensors`` is the encoder's state dict exactly as timm names it (``patch_embed.*``,
``cls_token``, ``pos_embed`` (the sin-cos table), ``blocks.*``, ``norm.*``), so
``build_vit(variant, weights=..., img_size=...)`` loads it strictly; ``temporal_embed.safetensors``
holds ``temporal_embed (2, C)``: row 0 the earlier frame's slot, row 1 the later frame's
(:mod:`stpn.pretraining.pairs` puts the earlier frame first). ``encoder.json`` names the
``build_vit`` arguments that rebuild the architecture.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

from safetensors.torch import load_file, save_file
from torch import Tensor

from stpn.pretraining.model import PairMAE

ENCODER_FILE, TEMPORAL_FILE, ENCODER_CONFIG_FILE = "encoder.safetensors", "temporal_embed.safetensors", "encoder.json"


def export_encoder(model: PairMAE, out_dir: Union[str, Path], vit_config: dict[str, Any]) -> dict[str, Path]:
    """Write the three files into ``out_dir``; ``vit_config`` is ``{"variant": ..., **build_vit
    kwargs}`` (JSON-serialisable). Returns their paths by name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"encoder": out / ENCODER_FILE, "temporal": out / TEMPORAL_FILE, "config": out / ENCODER_CONFIG_FILE}
    state = {k: v.detach().cpu().contiguous() for k, v in model.encoder.state_dict().items()}
    save_file(state, str(paths["encoder"]), metadata={"layout": "timm VisionTransformer"})
    save_file({"temporal_embed": model.temporal_embed.detach().cpu().contiguous()}, str(paths["temporal"]),
              metadata={"rows": "0 = earlier frame, 1 = later frame"})
    paths["config"].write_text(json.dumps(vit_config, indent=2) + "\n")
    return paths


def load_temporal_embed(path: Union[str, Path]) -> Tensor:
    """``temporal_embed.safetensors`` → ``(2, C)``; a file without it is a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no temporal embeddings at {path}")
    state = load_file(str(path))
    value = state.get("temporal_embed")
    if value is None or value.ndim != 2 or value.shape[0] != 2:
        raise ValueError(f"{path} holds no (2, C) 'temporal_embed' tensor")
    return value


def load_exported_encoder(run_dir: Union[str, Path]):
    """Rebuild the exported encoder with ``build_vit`` from ``encoder.json`` and load its weights."""
    from stpn.backbones.vit import build_vit

    run = Path(run_dir)
    config_path = run / ENCODER_CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"no {ENCODER_CONFIG_FILE} in {run}: not an exported pre-training run")
    config = json.loads(config_path.read_text())
    variant = config.pop("variant")
    return build_vit(variant, weights=str(run / ENCODER_FILE), **config)


def tracker_initialisation(run_dir: Union[str, Path]) -> dict[str, Tensor]:
    """What a one-stream tracker (DropTrack on OSTrack) takes from an exported run: the encoder
    state dict in timm's layout (no decoder keys: they are never exported) and the two token
    embeddings the issue assigns, ``template_embed (C,)`` = the later frame's temporal
    embedding, ``search_embed (C,)`` = the earlier frame's."""
    run = Path(run_dir)
    encoder_path = run / ENCODER_FILE
    if not encoder_path.is_file():
        raise FileNotFoundError(f"no {ENCODER_FILE} in {run}: not an exported pre-training run")
    temporal = load_temporal_embed(run / TEMPORAL_FILE)
    return {"encoder": load_file(str(encoder_path)), "template_embed": temporal[1], "search_embed": temporal[0]}

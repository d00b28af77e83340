"""Initialise the segmenter from a local COCO Mask2Former checkpoint in transformers' layout.

The paper (as MinVIS) starts from Mask2Former trained on COCO instance segmentation. The file is
a ``Mask2FormerForUniversalSegmentation`` state dict (``.safetensors``, ``.bin`` or ``.pth``,
e.g. the ``facebook/mask2former-swin-tiny-coco-instance`` weights saved locally; nothing is
downloaded). Both of transformers' Swin key layouts are read: 4.x (``encoder.layers.0.blocks.0
.attention.self.query``, ``intermediate.dense``) and 5.x (``swin.encoder...attention.q_proj``,
``mlp.fc1``). How the keys map:

* ``model.pixel_level_module.encoder.*`` (transformers' ``SwinBackbone``) → timm's Swin in
  ``extractor.backbone``: separate q / k / v projections are concatenated into timm's ``qkv``;
  transformers keeps a stage's patch merging at the end of that stage, timm at the start of the
  next (``layers.i.downsample`` → ``layers.(i+1).downsample``); both concatenate the 2 × 2 patch
  group in the same order. ``hidden_states_norms.stage{n}`` → ``output_norms.{n-1}``; timm's
  final ``norm`` (used only for STPN's support embeddings) takes the checkpoint's ``layernorm``
  when it has one, else the stage-4 output norm.
* ``model.pixel_level_module.decoder.*`` → ``head.pixel_decoder.*``,
  ``model.transformer_module.*`` → ``head.transformer_module.*``, ``class_predictor.*`` →
  ``head.class_predictor.*`` (left at its initialisation when the class counts differ, as
  detectron2 skips the mismatched COCO classifier).

Left at initialisation: the DVP predictor (``extractor.predictor.*``, new in STPN) and the loss
buffer. Any other missing, unexpected or wrongly shaped key is a ``CheckpointError`` naming the
file and the first offending keys.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Union

import torch
from torch import Tensor

from stpn.backbones.weights import read_state_dict
from stpn.engine.checkpoint import CheckpointError
from stpn.vis.model import VideoInstanceSegmenter

ENCODER = "model.pixel_level_module.encoder."
PREFIXES = {"model.pixel_level_module.decoder.": "head.pixel_decoder.",
            "model.transformer_module.": "head.transformer_module.",
            "class_predictor.": "head.class_predictor."}
SWIN_RENAMES = [  # (transformers 4.x or 5.x pattern, timm name); attention before the block's own output
    (r"^embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
    (r"^embeddings\.norm\.", "patch_embed.norm."),
    (r"\.attention\.(self\.relative_position_bias_table|relative_position_bias\.relative_position_bias_table)$",
     ".attn.relative_position_bias_table"),
    (r"\.attention\.(self\.query|q_proj)\.", ".attn.q."),
    (r"\.attention\.(self\.key|k_proj)\.", ".attn.k."),
    (r"\.attention\.(self\.value|v_proj)\.", ".attn.v."),
    (r"\.attention\.(output\.dense|o_proj)\.", ".attn.proj."),
    (r"\.(intermediate\.dense|mlp\.fc1)\.", ".mlp.fc1."),
    (r"\.(output\.dense|mlp\.fc2)\.", ".mlp.fc2."),
    (r"\.layernorm_before\.", ".norm1."),
    (r"\.layernorm_after\.", ".norm2."),
    (r"^encoder\.layers\.", "layers."),
    (r"^layernorm\.", "norm."),
]
SKIPPED = (r"relative_position_index$", r"^criterion\.", r"attn_mask$")
INITIALISED = (r"^extractor\.predictor\.", r"^criterion\.")


def _swin_key(key: str) -> str:
    """A transformers ``SwinBackbone`` key (prefix removed) → timm's, before q/k/v fusion."""
    key = key[len("swin."):] if key.startswith("swin.") else key
    stage = re.match(r"^hidden_states_norms\.stage(\d+)\.(.*)$", key)
    if stage:
        return f"output_norms.{int(stage.group(1)) - 1}.{stage.group(2)}"
    merging = re.match(r"^encoder\.layers\.(\d+)\.downsample\.(.*)$", key)
    if merging:
        return f"layers.{int(merging.group(1)) + 1}.downsample.{merging.group(2)}"
    for pattern, replacement in SWIN_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def convert_coco_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """transformers' ``Mask2FormerForUniversalSegmentation`` keys → this package's segmenter keys
    (module docstring); keys it does not know are kept unchanged (and then reported)."""
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        if any(re.search(p, key) for p in SKIPPED):
            continue
        if key.startswith(ENCODER):
            name = _swin_key(key[len(ENCODER):])
            if name.startswith("output_norms."):
                out[name] = value
                continue
            part = re.match(r"^(.*)\.attn\.([qkv])\.(weight|bias)$", name)
            if part:
                qkv.setdefault(f"{part.group(1)}.attn.qkv.{part.group(3)}", {})[part.group(2)] = value
                continue
            out["extractor.backbone." + name] = value
            continue
        prefix = next((p for p in PREFIXES if key.startswith(p)), None)
        out[PREFIXES[prefix] + key[len(prefix):] if prefix else key] = value
    for name, parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise KeyError(f"{name}: the checkpoint has only the {sorted(parts)} projections")
        out["extractor.backbone." + name] = torch.cat([parts["q"], parts["k"], parts["v"]], 0)
    if "extractor.backbone.norm.weight" not in out and "output_norms.3.weight" in out:
        out["extractor.backbone.norm.weight"] = out["output_norms.3.weight"]
        out["extractor.backbone.norm.bias"] = out["output_norms.3.bias"]
    return out


def load_coco_mask2former(model: VideoInstanceSegmenter, path: Union[str, Path]) -> list[str]:
    """Load the COCO checkpoint at ``path`` into ``model`` (in place); returns the model keys left
    at their initialisation (the DVP predictor, the loss buffer and, when the class counts
    differ, the class head)."""
    try:
        state = convert_coco_state(read_state_dict(path))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a Mask2Former checkpoint in transformers' layout ({exc})") from None
    own = model.state_dict()
    if "head.class_predictor.weight" in state and state["head.class_predictor.weight"].shape != own[
            "head.class_predictor.weight"].shape:
        for key in ("head.class_predictor.weight", "head.class_predictor.bias"):
            state.pop(key)
    missing = [k for k in own if k not in state and not any(re.search(p, k) for p in INITIALISED)
               and not k.startswith("head.class_predictor.")]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state
             if k in own and state[k].shape != own[k].shape]
    problems = [f"{len(keys)} {what}: {', '.join(keys[:3])}" for what, keys in
                (("missing", missing), ("unexpected", unexpected), ("wrongly shaped", wrong)) if keys]
    if problems:
        raise CheckpointError(f"{path} does not fit this segmenter ({'; '.join(problems)})")
    model.load_state_dict(state, strict=False)
    return [k for k in own if k not in state]

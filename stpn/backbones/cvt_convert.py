"""CvT checkpoint keys → :class:`stpn.backbones.cvt.PromptCvT` keys (transformers' ``CvtModel``).

Two checkpoint formats exist:

* official (microsoft/CvT ``lib/models/cls_cvt.py``, the files MixFormer loads, e.g.
  ``CvT-21-384x384-IN-22k.pth``): ``stage{i}.patch_embed.proj.weight``,
  ``stage{i}.blocks.{j}.attn.conv_proj_q.conv.weight``, ``stage{i}.cls_token``, ``norm.*`` (final
  LayerNorm of the classifier) and ``head.*`` (classifier);
* transformers (``CvtModel`` keys ``encoder.stages.{i}...``, or ``CvtForImageClassification``
  with a ``cvt.`` prefix plus ``layernorm.*`` / ``classifier.*``).

The classifier parts (``norm``/``head``, ``layernorm``/``classifier``) are dropped: the backbone
has no final norm (transformers' ``CvtModel`` has none either).
"""
from __future__ import annotations

import re

from stpn.backbones.weights import StateDict

_LEAVES = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
_QKV = {"q": "query", "k": "key", "v": "value"}

# official block-level prefix -> transformers prefix (inside ``layers.{j}.``)
_BLOCK_PREFIXES = {
    "norm1.": "layernorm_before.",
    "norm2.": "layernorm_after.",
    "attn.proj.": "attention.output.dense.",
    "mlp.fc1.": "intermediate.dense.",
    "mlp.fc2.": "output.dense.",
    **{f"attn.proj_{s}.": f"attention.attention.projection_{n}." for s, n in _QKV.items()},
    **{
        f"attn.conv_proj_{s}.{part}.": f"attention.attention.convolution_projection_{n}.convolution_projection.{ours}."
        for s, n in _QKV.items()
        for part, ours in (("conv", "convolution"), ("bn", "normalization"))
    },
}
_EMBED_PREFIXES = {
    "patch_embed.proj.": "embedding.convolution_embeddings.projection.",
    "patch_embed.norm.": "embedding.convolution_embeddings.normalization.",
}
_OFFICIAL_CLASSIFIER = ("norm.", "head.")
_TRANSFORMERS_CLASSIFIER = ("layernorm.", "classifier.")


def _rename_prefixed(rest: str, prefixes: dict[str, str]) -> str | None:
    """``prefix + leaf`` → ``new_prefix + leaf`` for a known prefix and parameter name, else None."""
    for old, new in prefixes.items():
        if rest.startswith(old) and rest[len(old):] in _LEAVES:
            return new + rest[len(old):]
    return None


def _official_key(key: str) -> str | None:
    """One official key → ours; None for classifier keys; ValueError for anything unknown."""
    if key.startswith(_OFFICIAL_CLASSIFIER):
        return None
    stage = re.fullmatch(r"stage(\d+)\.(.+)", key)
    new = None
    if stage is not None:
        prefix, rest = f"encoder.stages.{stage[1]}.", stage[2]
        block = re.fullmatch(r"blocks\.(\d+)\.(.+)", rest)
        if rest == "cls_token":
            new = prefix + rest
        elif block is not None:
            renamed = _rename_prefixed(block[2], _BLOCK_PREFIXES)
            new = None if renamed is None else f"{prefix}layers.{block[1]}.{renamed}"
        else:
            renamed = _rename_prefixed(rest, _EMBED_PREFIXES)
            new = None if renamed is None else prefix + renamed
    if new is None:
        raise ValueError(f"unknown key in official CvT checkpoint: {key!r}")
    return new


def convert_official_cvt(state_dict: StateDict) -> StateDict:
    """Official microsoft/CvT state dict → ours (tensors unchanged); ``norm.*``/``head.*`` dropped.

    Raises ``ValueError`` naming the first key that is not part of the official naming scheme.
    """
    out = {}
    for key, value in state_dict.items():
        new = _official_key(key)
        if new is not None:
            out[new] = value
    return out


def convert_transformers_cvt(state_dict: StateDict) -> StateDict:
    """transformers ``CvtModel`` / ``CvtForImageClassification`` state dict → ours.

    The ``cvt.`` prefix is removed and the classifier (``layernorm.*``, ``classifier.*``) dropped.
    """
    out = {}
    for key, value in state_dict.items():
        if key.startswith(_TRANSFORMERS_CLASSIFIER):
            continue
        out[key.removeprefix("cvt.")] = value
    return out


def checkpoint_format(state_dict: StateDict) -> str:
    """``"official"`` if any key is official-style (``stage{i}.``), else ``"transformers"``."""
    return "official" if any(re.match(r"stage\d+\.", k) for k in state_dict) else "transformers"


def convert_cvt_checkpoint(state_dict: StateDict) -> StateDict:
    """Either format (see :func:`checkpoint_format`) → our keys."""
    if checkpoint_format(state_dict) == "official":
        return convert_official_cvt(state_dict)
    return convert_transformers_cvt(state_dict)

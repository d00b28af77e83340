"""Load pretrained backbone weights from a local file the user gives (never from a hub)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

StateDict = dict[str, torch.Tensor]


def read_state_dict(path: str | Path) -> StateDict:
    """Read a ``.safetensors``, ``.pth``/``.pt``/``.bin`` file into a flat state dict.

    Checkpoints that wrap the weights (``{"model": ...}``, ``{"state_dict": ...}``) are unwrapped.
    Pickled files are read with ``weights_only=True``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # SafetensorError, header / size errors
            raise ValueError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0]})") from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors come in many types; name the file
        raise ValueError(f"could not read weights from {path}: {exc}") from exc
    for key in ("model", "state_dict", "module"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not contain a state dict of tensors")
    return obj


def drop_classifier(state: StateDict) -> StateDict:
    """Remove a timm classification head (``head.*``) from an ImageNet checkpoint."""
    return {k: v for k, v in state.items() if not k.startswith("head.")}


def load_weights(
    model: nn.Module,
    path: str | Path,
    convert: Optional[Callable[[StateDict], StateDict]] = None,
    strict: bool = True,
) -> None:
    """Load a local weights file into ``model``, optionally converting key names first.

    With ``strict=True`` a mismatch raises ``ValueError`` listing (up to ten) missing,
    unexpected and wrongly shaped keys, instead of PyTorch's long ``RuntimeError``.
    """
    state = read_state_dict(path)
    if convert is not None:
        state = convert(state)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if wrong_shape or (strict and (missing or unexpected)):
        parts = []
        for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape", wrong_shape)):
            if keys:
                parts.append(f"{len(keys)} {name}: {', '.join(keys[:10])}")
        raise ValueError(f"weights in {path} do not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict(state, strict=strict)

"""The contract every prompt-aware backbone in :mod:`stpn.backbones` fulfils.

STPN runs one shared backbone twice (paper §4.1):

* predicting stage: ``embed(images)`` returns the support embeddings ``E^L`` of the last layer,
  computed **without** prompts, as a map ``(B, d_L, h_L, w_L)`` (patch tokens only, after the
  backbone's final norm where it has one — ViT, Swin; CvT has none; class tokens dropped). A map rather than tokens lets the STPN wrapper
  pool it to a fixed grid (the Mixer predictor needs a fixed token count) and cache it;
  ``map.flatten(2).transpose(1, 2)`` gives the ``(B, n_L, d_L)`` tokens of paper eq. 1;
* prompting stage: ``forward_features(images, prompts)`` runs the same weights with the dynamic
  video prompts prepended and returns multi-scale maps with the prompts stripped.

Attributes a backbone exposes:

``feature_info``
    timm-style list of ``{"num_chs": C, "reduction": R, "module": name}``, one per returned map,
    so a torchvision FPN (``in_channels_list = [f["num_chs"] for f in feature_info]``) plugs in.
``prompt_dims``
    width ``d_i`` of the prompts that enter each transformer block, in order. Shallow prompting
    uses ``prompt_dims[0]`` only; deep prompting gives one prompt set per entry (paper eq. 11).
``support_dim``
    width ``d_L`` of the support embeddings returned by ``embed``.
``required_num_prompts``
    ``None`` when any ``N_P`` works, else the only value accepted (CvT conv prompts: 9 = 3 × 3).

Prompts are passed as ``None`` (plain backbone), a tensor ``(B, N_P, prompt_dims[0])``
(shallow), or a sequence of ``len(prompt_dims)`` tensors ``(B, N_P, prompt_dims[i])`` (deep).
"""
from __future__ import annotations

from typing import Sequence, Union

from torch import Tensor

Prompts = Union[None, Tensor, Sequence[Tensor]]


def check_images(images: Tensor) -> None:
    """Raise ``ValueError`` unless ``images`` is a float ``(B, 3, H, W)`` tensor."""
    if not isinstance(images, Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, got dtype {images.dtype}")


def check_crops(name: str, images: Tensor, size: int) -> None:
    """:func:`check_images` for a tracker's ``size × size`` crops; errors start with ``name``."""
    try:
        check_images(images)
    except ValueError as err:
        raise ValueError(f"{name}: {err}") from None
    if tuple(images.shape[-2:]) != (size, size):
        raise ValueError(f"{name} must be {size}x{size} pixels, got {tuple(images.shape[-2:])}")


def check_prompts(
    prompts: Prompts,
    prompt_dims: Sequence[int],
    batch_size: int,
    required_num_prompts: int | None = None,
) -> list[Tensor] | None:
    """Validate prompts against a backbone and normalise them to a list.

    Returns ``None`` (no prompts), a one-element list (shallow) or ``len(prompt_dims)`` tensors
    (deep), each ``(B, N_P, d_i)``. Every mismatch raises ``ValueError`` naming what differs.
    """
    if prompts is None:
        return None
    if isinstance(prompts, Tensor):
        sets, deep = [prompts], False
    else:
        sets, deep = list(prompts), True
        if len(sets) != len(prompt_dims):
            raise ValueError(
                f"deep prompting needs one prompt set per block: expected {len(prompt_dims)} "
                f"sets, got {len(sets)}"
            )
    num_prompts = None
    for i, p in enumerate(sets):
        where = f"prompt set {i}" if deep else "prompts"
        if not isinstance(p, Tensor) or p.dim() != 3:
            shape = tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__
            raise ValueError(f"{where} must be a (B, N_P, d) tensor, got {shape}")
        if p.shape[0] != batch_size:
            raise ValueError(f"{where} batch size {p.shape[0]} != image batch size {batch_size}")
        if p.shape[2] != prompt_dims[i]:
            raise ValueError(
                f"{where} width {p.shape[2]} != backbone prompt width {prompt_dims[i]} "
                f"(block {i})"
            )
        if num_prompts is None:
            num_prompts = p.shape[1]
        elif p.shape[1] != num_prompts:
            raise ValueError(f"{where} has N_P={p.shape[1]}, earlier sets have {num_prompts}")
    if required_num_prompts is not None and num_prompts != required_num_prompts:
        raise ValueError(
            f"this backbone needs N_P={required_num_prompts} prompts, got N_P={num_prompts}"
        )
    return sets


def tokens_to_map(tokens: Tensor, height: int, width: int) -> Tensor:
    """``(B, H*W, C)`` tokens → ``(B, C, H, W)`` map."""
    b, n, c = tokens.shape
    if n != height * width:
        raise ValueError(f"cannot reshape {n} tokens into a {height}x{width} map")
    return tokens.transpose(1, 2).reshape(b, c, height, width)



__all__ = ["Prompts", "check_images", "check_prompts", "tokens_to_map"]

"""The STPN wrapper: one shared backbone, a DVP predictor, two stages (paper §4, Fig. 2a).

Predicting stage
    The support frames go through the backbone **without prompts** (``backbone.embed``), by
    default under ``torch.no_grad()`` as in the authors' released code: only the predictor and
    the prompted pass of the key frame receive gradients. ``support_grad=True`` lets gradients
    reach the support pass as well (costs memory).
Prompting stage
    The predicted prompts are prepended to the key frame's tokens and the same backbone returns
    its multi-scale maps with the prompts stripped (``backbone.forward_features``).

``predict_prompts`` is separate from the prompted forward so that prompts can be computed once
and reused (per-video mode) and support embeddings can be cached (:mod:`stpn.prompts.streaming`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from stpn.backbones.base import Prompts, check_images


class STPN(nn.Module):
    """Backbone + DVP predictor.

    Args:
        backbone: a prompt-aware backbone (see :mod:`stpn.backbones.base`).
        predictor: a DVP predictor (``stpn.prompts.build.build_predictor``) whose
            ``support_dim`` equals ``backbone.support_dim`` and whose output width equals
            ``backbone.prompt_dims[0]`` (shallow) or ``backbone.prompt_dims`` (deep).
        support_grid: if given, each support map ``(d_L, h_L, w_L)`` is average-pooled to this
            ``(h, w)`` grid before the predictor, so the token count no longer depends on the
            input size (needed by the Mixer predictor, which mixes a fixed number of tokens).
        support_grad: let gradients flow into the support pass (default False, released code).
    """

    def __init__(
        self,
        backbone: nn.Module,
        predictor: nn.Module,
        support_grid: Optional[Sequence[int]] = None,
        support_grad: bool = False,
    ) -> None:
        super().__init__()
        _check_compatible(backbone, predictor)
        self.backbone = backbone
        self.predictor = predictor
        self.support_grid = tuple(support_grid) if support_grid is not None else None
        self.support_grad = support_grad

    @property
    def feature_info(self) -> list[dict]:
        return self.backbone.feature_info

    def embed_frames(self, frames: Tensor) -> Tensor:
        """Support embeddings of single frames: ``(F, 3, H, W)`` → ``(F, N, d_L)`` tokens.

        This is the cacheable unit: a frame's embedding does not depend on which key frame it
        supports.
        """
        check_images(frames)
        with torch.set_grad_enabled(self.support_grad and torch.is_grad_enabled()):
            maps = self.backbone.embed(frames)
        if self.support_grid is not None:
            maps = F.adaptive_avg_pool2d(maps, self.support_grid)
        return maps.flatten(2).transpose(1, 2)

    def embed_support(self, support_frames: Tensor) -> Tensor:
        """``(B, K, 3, H, W)`` support frames → ``(B, K, N, d_L)`` support embeddings."""
        if support_frames.dim() != 5:
            raise ValueError(
                f"support frames must have shape (B, K, 3, H, W), got {tuple(support_frames.shape)}"
            )
        b, k = support_frames.shape[:2]
        tokens = self.embed_frames(support_frames.flatten(0, 1))
        return tokens.unflatten(0, (b, k))

    def predict_prompts(self, support_embeddings: Tensor, mask: Optional[Tensor] = None) -> Prompts:
        """``(B, K, N, d_L)`` support embeddings (+ ``(B, K)`` validity mask) → prompts."""
        return self.predictor(support_embeddings, mask)

    def forward(
        self,
        images: Tensor,
        support_frames: Optional[Tensor] = None,
        mask: Optional[Tensor] = None,
        prompts: Prompts = None,
    ) -> list[Tensor]:
        """Spatio-temporal features of the key frames.

        Args:
            images: key frames ``(B, 3, H, W)``.
            support_frames: ``(B, K, 3, H, W)``, the same ``H, W`` as ``images``; ignored when
                ``prompts`` are given.
            mask: ``(B, K)`` bool, True for real support frames (False for padding).
            prompts: precomputed prompts (from :meth:`predict_prompts`); skips the predictor.

        Returns:
            the backbone's multi-scale maps ``[(B, C_i, H_i, W_i), ...]``, prompts stripped.
            With neither support frames nor prompts this is the plain per-frame backbone.
        """
        check_images(images)
        if prompts is None and support_frames is not None:
            _check_support(images, support_frames, mask)
            prompts = self.predict_prompts(self.embed_support(support_frames), mask)
        return self.backbone.forward_features(images, prompts)


def _check_support(images: Tensor, support: Tensor, mask: Optional[Tensor]) -> None:
    if support.dim() != 5 or support.shape[2] != 3:
        raise ValueError(f"support frames must have shape (B, K, 3, H, W), got {tuple(support.shape)}")
    if support.shape[0] != images.shape[0]:
        raise ValueError(
            f"support frames batch size {support.shape[0]} != key frames batch size {images.shape[0]}"
        )
    if support.shape[-2:] != images.shape[-2:]:
        raise ValueError(
            f"support frames are {tuple(support.shape[-2:])} (H, W) but key frames are "
            f"{tuple(images.shape[-2:])}; resize them to the key frame's size"
        )
    if mask is not None and tuple(mask.shape) != tuple(support.shape[:2]):
        raise ValueError(f"mask shape {tuple(mask.shape)} != (B, K) = {tuple(support.shape[:2])}")


def _check_compatible(backbone: nn.Module, predictor: nn.Module) -> None:
    for attr in ("embed", "forward_features", "prompt_dims", "support_dim"):
        if not hasattr(backbone, attr):
            raise ValueError(f"backbone {type(backbone).__name__} has no `{attr}`: not prompt-aware")
    if predictor.support_dim != backbone.support_dim:
        raise ValueError(
            f"predictor support_dim {predictor.support_dim} != backbone support_dim (d_L) "
            f"{backbone.support_dim}"
        )
    dims = getattr(predictor, "prompt_dims", None)
    if dims is not None:  # deep prompting
        if list(dims) != list(backbone.prompt_dims):
            raise ValueError(f"deep predictor widths {list(dims)} != backbone prompt_dims {list(backbone.prompt_dims)}")
    elif predictor.prompt_dim != backbone.prompt_dims[0]:
        raise ValueError(
            f"predictor prompt width {predictor.prompt_dim} != backbone prompt width "
            f"{backbone.prompt_dims[0]}"
        )
    required = getattr(backbone, "required_num_prompts", None)
    if required is not None and predictor.num_prompts != required:
        raise ValueError(
            f"{type(backbone).__name__} needs N_P={required} prompts, predictor makes "
            f"N_P={predictor.num_prompts}"
        )

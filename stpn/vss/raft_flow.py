"""Optical flow from torchvision's RAFT for temporal consistency on recorded videos.

The model is built with ``weights=None`` (nothing is ever downloaded) and its state dict loaded
from a local file (e.g. torchvision's ``raft_small_C_T_V2`` weights saved with ``torch.save``).
Frames go in as RGB uint8, scaled to [-1, 1] and padded on the right and bottom (edge
replication) to a multiple of 8; of the flows RAFT returns (one per refinement iteration) the
last is the final one, cropped back to the frame. RAFT's correlation pyramid needs inputs of at
least 128 px a side: smaller frames (the benchmark's 64 px) are first upsampled (bilinear) by the
smallest integer factor that reaches 128, and the flow is resized back and divided by it.
Output ``(2, H, W)`` float32: ``(dx, dy)`` from frame t to frame t + 1 in pixels, the convention
of :mod:`stpn.vss.metrics`. TC measured with it is comparable only among models measured with
the same flow (docs/vss.md).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stpn.backbones.weights import read_state_dict

RAFT_VARIANTS = ("raft_small", "raft_large")
MIN_SIDE = 128  # torchvision's RAFT: feature maps (1/8) of at least 16


def pad_to_multiple(images: Tensor, multiple: int = 8) -> tuple[Tensor, tuple[int, int]]:
    """``(B, C, H, W)`` → padded ``(B, C, H', W')`` with ``H'``, ``W'`` multiples of ``multiple``
    (right / bottom, replicated edges) and the original ``(H, W)``."""
    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate")
    return images, (height, width)


def to_raft_input(frame: np.ndarray) -> Tensor:
    """RGB uint8 ``(H, W, 3)`` → float ``(1, 3, H, W)`` in [-1, 1]."""
    return torch.from_numpy(np.array(frame, np.uint8)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


def build_raft(variant: str, weights: Union[str, Path]) -> torch.nn.Module:
    """``raft_small`` / ``raft_large`` with the state dict of the local file ``weights``, in eval mode."""
    from torchvision.models import optical_flow

    if variant not in RAFT_VARIANTS:
        raise ValueError(f"RAFT variant must be one of {', '.join(RAFT_VARIANTS)}, got {variant!r}")
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"RAFT weights not found: {path} (give a local file with --flow-weights)")
    model = getattr(optical_flow, variant)(weights=None, progress=False)
    state = read_state_dict(path)  # unreadable files: ValueError naming the file
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not {variant} weights ({first})") from None
    return model.eval()


class RaftFlow:
    """``flow(frame_t, frame_next)`` → ``(2, H, W)`` forward flow (module docstring)."""

    def __init__(self, weights: Union[str, Path], variant: str = "raft_small", device: torch.device | str = "cpu",
                 iterations: int = 12) -> None:
        self.device = torch.device(device)
        self.model = build_raft(variant, weights).to(self.device)
        self.iterations = iterations

    @torch.no_grad()
    def __call__(self, frame_t: np.ndarray, frame_next: np.ndarray) -> Tensor:
        if frame_t.shape != frame_next.shape:
            raise ValueError(f"frames differ in shape: {frame_t.shape} and {frame_next.shape}")
        pair = torch.cat([to_raft_input(frame_t), to_raft_input(frame_next)])
        height, width = pair.shape[-2:]
        factor = math.ceil(MIN_SIDE / min(height, width))
        if factor > 1:
            pair = F.interpolate(pair, scale_factor=factor, mode="bilinear", align_corners=False)
        pair, (big_h, big_w) = pad_to_multiple(pair)
        pair = pair.to(self.device)
        flow = self.model(pair[:1], pair[1:], num_flow_updates=self.iterations)[-1][:, :, :big_h, :big_w]
        if factor > 1:
            flow = F.interpolate(flow, size=(height, width), mode="bilinear", align_corners=False) / factor
        return flow[0].float().cpu()

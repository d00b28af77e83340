"""Per-stage output norms + torchvision FPN on top of a multi-scale backbone.

The authors' detector (mmdetection's Swin) applies a LayerNorm to every stage output before the
FPN; timm's Swin has only a final norm for the last stage (used here for the support
embeddings), so the norms live in the neck: ``LayerNorm(C_i)`` over channels per output map.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

from torch import Tensor, nn
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map ``(B, C, H, W)``."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class NormFPN(nn.Module):
    """``[(B, C_i, H_i, W_i)]`` stage maps → ``OrderedDict`` of FPN maps ``"0".."3", "pool"``,
    ``out_channels`` each (P2–P5 plus a max-pooled P6, the Faster R-CNN FPN setting)."""

    def __init__(self, in_channels: Sequence[int], out_channels: int = 256) -> None:
        super().__init__()
        self.norms = nn.ModuleList(ChannelLayerNorm(c) for c in in_channels)
        self.fpn = FeaturePyramidNetwork(list(in_channels), out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, maps: Sequence[Tensor]) -> "OrderedDict[str, Tensor]":
        if len(maps) != len(self.norms):
            raise ValueError(f"expected {len(self.norms)} stage maps, got {len(maps)}")
        return self.fpn(OrderedDict((str(i), norm(m)) for i, (norm, m) in enumerate(zip(self.norms, maps))))

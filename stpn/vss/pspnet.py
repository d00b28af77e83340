"""PSPNet18: a dilated ResNet-18 (output stride 8) with a pyramid pooling decoder.

Shapes: images ``(B, 3, H, W)``; encoder features ``stage3`` ``(B, 256, H/8, W/8)`` and
``stage4`` ``(B, 512, H/8, W/8)``; logits ``(B, C, H/8, W/8)`` (upsampled by the caller).
The backbone is timm's ``resnet18`` with ``output_stride=8`` (the last two stages dilated,
2 and 4), never downloaded: ``weights`` is an optional local timm/torchvision state dict.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn

PYRAMID_BINS = (1, 2, 3, 6)
BRANCH_CHANNELS = 128
DECODER_CHANNELS = 256
AUX_WEIGHT = 0.4


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class PyramidPoolingHead(nn.Module):
    """Pool ``(B, C_in, h, w)`` to each bin size, 1×1 conv to 128 channels, upsample, concatenate
    with the input, 3×3 conv to 256 and a 1×1 classifier: ``(B, num_classes, h, w)``."""

    def __init__(self, in_channels: int, num_classes: int, bins: tuple[int, ...] = PYRAMID_BINS,
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.bins = tuple(bins)
        self.branches = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(b), conv_bn_relu(in_channels, BRANCH_CHANNELS, 1)) for b in self.bins)
        self.fuse = conv_bn_relu(in_channels + BRANCH_CHANNELS * len(self.bins), DECODER_CHANNELS, 3)
        self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(DECODER_CHANNELS, num_classes, 1))

    def forward(self, features: Tensor) -> Tensor:
        size = features.shape[-2:]
        pooled = [F.interpolate(branch(features), size=size, mode="bilinear", align_corners=False)
                  for branch in self.branches]
        return self.classifier(self.fuse(torch.cat([features, *pooled], dim=1)))


class AuxiliaryHead(nn.Module):
    """The deep-supervision head on stage 3: 3×3 conv to 256 and a classifier."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(in_channels, DECODER_CHANNELS, 3), nn.Dropout2d(0.1),
                                  nn.Conv2d(DECODER_CHANNELS, num_classes, 1))

    def forward(self, features: Tensor) -> Tensor:
        return self.body(features)


def dilated_resnet18(weights: Optional[Union[str, Path]] = None) -> nn.Module:
    """timm ResNet-18, ``features_only`` with stages 3 and 4 at output stride 8; ``weights``: a
    local state dict (``.pth``/``.safetensors``) of a plain ``resnet18`` (the fc layer is dropped)."""
    backbone = timm.create_model("resnet18", pretrained=False, features_only=True, output_stride=8,
                                 out_indices=(3, 4))
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"backbone weights not found: {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = backbone.load_state_dict(state, strict=False)
        if unexpected or missing:
            raise ValueError(f"{path}: not a resnet18 state dict (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return backbone


class PSPNet18(nn.Module):
    """The per-frame model: ``encode`` → (stage3, stage4), ``decode`` stage-4 features → logits."""

    def __init__(self, num_classes: int, weights: Optional[Union[str, Path]] = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone = dilated_resnet18(weights)
        stage3, stage4 = self.backbone.feature_info.channels()
        self.feature_channels = stage4
        self.head = PyramidPoolingHead(stage4, num_classes)
        self.aux_head = AuxiliaryHead(stage3, num_classes)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, 3, H, W)`` → stage 3 ``(B, 256, H/8, W/8)``, stage 4 ``(B, 512, H/8, W/8)``."""
        stage3, stage4 = self.backbone(images)
        return stage3, stage4

    def decode(self, features: Tensor) -> Tensor:
        """Stage-4 features ``(B, 512, h, w)`` → logits ``(B, C, h, w)``."""
        return self.head(features)

"""Tiny models and datasets shared by the engine tests (CPU, milliseconds per step)."""
from __future__ import annotations

import random
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset


class NoisyRegression(Dataset):
    """``(x, y)`` pairs whose ``x`` gets fresh noise from all three global RNGs on every access
    (a stand-in for random augmentation)."""

    def __init__(self, n: int = 12, dim: int = 4, augment: bool = True) -> None:
        gen = torch.Generator().manual_seed(1234)
        self.x = torch.randn(n, dim, generator=gen)
        self.y = self.x.sum(1) + 0.1 * torch.randn(n, generator=gen)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x = self.x[i].clone()
        if self.augment:
            x += 0.1 * torch.randn(x.shape) + 0.01 * float(np.random.randn()) + 0.01 * random.random()
        return x, self.y[i]


class TinyMLP(nn.Module):
    """``forward(x, y)`` → ``{"loss_mse", "loss_l1"}``. ``fail_at``: on that forward call
    (0-based) either raise (``fail_with="crash"``) or return a NaN ``loss_l1`` (``"nan"``)."""

    def __init__(self, dim: int = 4, dropout: float = 0.2, fail_at: Optional[int] = None, fail_with: str = "crash"):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 16), nn.LayerNorm(16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))
        self.fail_at = fail_at
        self.fail_with = fail_with
        self.calls = 0
        self.last_dtype: Optional[torch.dtype] = None

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        call, self.calls = self.calls, self.calls + 1
        if call == self.fail_at and self.fail_with == "crash":
            raise RuntimeError("simulated crash")
        hidden = self.net[0](x)
        self.last_dtype = hidden.dtype
        pred = self.net[1:](hidden).squeeze(-1).float()
        losses = {"loss_mse": F.mse_loss(pred, y), "loss_l1": 0.1 * F.l1_loss(pred, y)}
        if call == self.fail_at and self.fail_with == "nan":
            losses["loss_l1"] = losses["loss_l1"] * float("nan")
        return losses

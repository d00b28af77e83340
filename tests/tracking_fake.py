"""Test helpers for tracking: a bright-square video generator and a tiny stand-in with the
MixFormer tracking interface that finds the bright square in the search crop (so online
tracking logic can be tested with known answers, independently of a trained network)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import Tensor, nn

from stpn.data.normalisation import IMAGENET_MEAN, IMAGENET_STD
from stpn.data.types import FrameAnnotation, Instance, Video


@dataclass
class FakeOutput:
    boxes: Tensor
    score_logits: Optional[Tensor]


class BrightSquareTracker(nn.Module):
    """Box = bounding box of the pixels brighter than mid-grey in the search crop (plus a
    deterministic ``wobble`` per call, to vary the IoUs); score logit
    from ``scores`` (a list consumed one per ``track`` call) or +4. Records calls."""

    def __init__(self, has_stpn: bool = False, scores: Optional[list[float]] = None, with_score_head: bool = True,
                 template_size: int = 16, search_size: int = 40, wobble: float = 0.0) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.template_size, self.search_size, self.num_prompts = template_size, search_size, 9
        self.has_stpn = has_stpn
        self.scores = list(scores) if scores is not None else None
        self.with_score_head = with_score_head
        self.wobble, self.calls = wobble, 0  # wobble: deterministic box error (varied IoUs)
        self.encoded: list[tuple[Tensor, Tensor]] = []
        self.embedded = 0
        self.prompt_calls: list[Tensor] = []

    def encode_templates(self, template: Tensor, online_template: Tensor):
        assert template.shape[-1] == self.template_size
        self.encoded.append((template, online_template))
        return (template, online_template)

    def embed_support(self, frames: Tensor) -> Tensor:
        assert frames.shape[-1] == self.search_size
        self.embedded += 1
        return frames.mean(1).flatten(1)[..., None].repeat(1, 1, 2)  # (F, S·S, 2)

    def predict_prompts(self, support: Tensor, mask=None) -> Tensor:
        self.prompt_calls.append(support)
        return support.mean((1, 2))[:, None, :].expand(-1, 9, -1)  # (B, 9, 2)

    def track(self, search: Tensor, memory, prompts=None, with_score: bool = True) -> FakeOutput:
        assert search.shape[-1] == self.search_size and (prompts is not None) == self.has_stpn
        mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
        std = torch.tensor(IMAGENET_STD)[:, None, None]
        grey = (search[0] * std + mean).mean(0)  # (S, S) in [0, 1]
        ys, xs = torch.nonzero(grey > 0.5, as_tuple=True)
        if len(xs):
            box = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float() / self.search_size
        else:
            box = torch.tensor([0.4, 0.4, 0.6, 0.6])
        self.calls += 1
        error = self.wobble * (self.calls % 4)  # 0, 1, 2, 3 × wobble: a spread of IoUs
        box = box + error * torch.tensor([math.sin(self.calls), math.cos(self.calls), math.sin(2 * self.calls), 0.0])
        logit = None
        if self.with_score_head and with_score:
            logit = torch.tensor([self.scores.pop(0) if self.scores else 4.0])
        return FakeOutput(box[None], logit)


def square_video(name: str = "v", length: int = 8, size=(64, 80), side: int = 12, step=(3, 2),
                 absent: tuple[int, ...] = (), seed: int = 0) -> Video:
    """A white square gliding over a dark noisy background; ``absent`` frames hide it (no
    annotation). Boxes are exact pixel squares."""
    rng = np.random.default_rng(seed)
    height, width = size
    frames, annotations = [], []
    for t in range(length):
        image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        x, y = 6 + step[0] * t, 5 + step[1] * t
        if t in absent:
            annotations.append(FrameAnnotation([]))
        else:
            image[y:y + side, x:x + side] = 255
            box = np.array([x, y, x + side, y + side], np.float32)
            annotations.append(FrameAnnotation([Instance(0, 0, box)], ("noise",) if t % 3 == 2 else ()))
        frames.append(image)
    return Video(name, frames, annotations, height, width)

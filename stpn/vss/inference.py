"""Segment a video frame by frame; with STT the last ``num_key_frames`` frames' stage-4
features are kept in memory as the key frames (every frame is a key frame)."""
from __future__ import annotations

from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from stpn.vss.data import frames_to_tensor
from stpn.vss.model import VideoSegmenter


class StreamingSegmenter:
    def __init__(self, model: VideoSegmenter, device: torch.device | str = "cpu") -> None:
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.memory: deque[Tensor] = deque(maxlen=max(model.num_key_frames, 1))

    def reset(self) -> None:
        """Forget the key frames (call between videos)."""
        self.memory.clear()

    @torch.no_grad()
    def step(self, frame: np.ndarray) -> Tensor:
        """RGB uint8 ``(H, W, 3)`` → labels ``(H, W)`` int64 (on the CPU)."""
        image = frames_to_tensor(frame[None]).to(self.device)
        keys = list(self.memory)[::-1] if self.model.temporal else []  # nearest first
        out = self.model.segment(image, keys)
        if self.model.temporal:
            self.memory.append(out["features"])
        logits = F.interpolate(out["logits"], size=frame.shape[:2], mode="bilinear", align_corners=False)
        return logits.argmax(1)[0].cpu()

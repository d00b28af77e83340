"""From clip-dataset items to what the detector eats: ``(ClipBatch, targets)``."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor

from stpn.data.clips import collate_clips
from stpn.detection.clip_batch import ClipBatch, make_clip_batch


def collate_detection(items: Sequence[dict]) -> tuple[ClipBatch, list[dict[str, Tensor]]]:
    """Clip-dataset items (:class:`stpn.data.clips.ClipDataset`) → a padded, normalised
    :class:`ClipBatch` and torchvision targets ``{"boxes" (M, 4) xyxy, "labels" (M,) 1-based}``."""
    batch = collate_clips(items)
    targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in batch["target"]]
    return make_clip_batch(batch["key"], batch["support"]), targets

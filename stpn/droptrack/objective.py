"""What the training engine optimises for DropTrack: ``objective(batch) → {loss terms}``.

:class:`DropTrackObjective` registers the tracker's own submodules, parameters and buffers under
their own names (the tracker itself is a plain attribute), so its ``state_dict`` is exactly the
tracker's: the engine's ``model.safetensors`` / ``checkpoint.pt`` load straight into
:func:`stpn.droptrack.checkpoint.load_droptrack`, and ``lr_multipliers={"vit": 0.1}`` scales the
backbone's learning rate as OSTrack does. One stage (there is no score head).

With candidate elimination and a :class:`~stpn.droptrack.candidate_elimination.KeepRatioRamp`,
``objective(batch, epoch)`` trains with the ramp's keep ratio of that epoch
(:func:`stpn.droptrack.train.train_droptrack` passes the epoch); without an epoch, or at
evaluation, the tracker's own ratio applies.
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor, nn

from stpn.droptrack.candidate_elimination import KeepRatioRamp

from stpn.droptrack.losses import FOCAL_WEIGHT, droptrack_losses
from stpn.droptrack.model import DropTrack
from stpn.tracking.losses import GIOU_WEIGHT, L1_WEIGHT
from stpn.tracking.pairs import TrackingBatch


class DropTrackObjective(nn.Module):
    """Focal + GIoU + L1 of one :class:`~stpn.tracking.pairs.TrackingBatch` (the tracking
    package's samples; ``batch.labels`` weight the samples, 0 for a negative)."""

    def __init__(self, tracker: DropTrack, focal_weight: float = FOCAL_WEIGHT, giou_weight: float = GIOU_WEIGHT,
                 l1_weight: float = L1_WEIGHT, keep_ramp: Optional[KeepRatioRamp] = None) -> None:
        super().__init__()
        object.__setattr__(self, "tracker", tracker)  # not a submodule: state-dict keys stay unprefixed
        for name, child in tracker.named_children():
            self.add_module(name, child)
        for name, param in tracker.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buf in tracker.named_buffers(recurse=False):
            self.register_buffer(name, buf, persistent=name not in tracker._non_persistent_buffers_set)
        self.weights = dict(focal_weight=float(focal_weight), giou_weight=float(giou_weight), l1_weight=float(l1_weight))
        if min(self.weights.values()) < 0:
            raise ValueError(f"loss weights must be >= 0, got {self.weights}")
        self.keep_ramp = keep_ramp

    def keep_ratio(self, epoch: Optional[int]) -> Optional[float]:
        """The elimination keep ratio to train epoch ``epoch`` with (None: the tracker's own)."""
        if self.keep_ramp is None or epoch is None or not self.tracker.ce_layers or not self.training:
            return None
        return self.keep_ramp.keep_ratio(int(epoch), self.tracker.ce_keep_ratio)

    def train(self, mode: bool = True) -> "DropTrackObjective":
        super().train(mode)
        self.tracker.training = mode
        return self

    def forward(self, batch: TrackingBatch, epoch: Optional[int] = None) -> dict[str, Tensor]:
        if self.tracker.has_stpn and batch.support is None:
            raise ValueError("an STPN tracker needs support frames: set pairs.num_support > 0")
        stpn = self.tracker.has_stpn
        out = self.tracker(batch.template, None, batch.search, support=batch.support if stpn else None,
                           support_mask=batch.support_mask if stpn else None, ce_keep_ratio=self.keep_ratio(epoch))
        return droptrack_losses(out.maps.score, out.boxes, batch.boxes, batch.labels, **self.weights)

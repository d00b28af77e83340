"""What the training engine optimises for a tracker: ``objective(batch) → {loss terms}``.

MixFormer trains in two stages (STPN supplementary §2):

* ``"box"`` (stage 1): backbone, corner head and DVP predictor train on ``2·GIoU + 5·L1``;
  the score head is frozen (it is not run);
* ``"score"`` (stage 2): only parameters named ``score_head.*`` train, on binary cross-entropy
  over positive and negative search regions; everything else is frozen *and* kept in eval mode
  (BatchNorm statistics and dropout as at test time), so it leaves stage 2 bit-for-bit unchanged.

:class:`TrackerObjective` registers the tracker's own submodules under their own names (the
tracker itself is held as a plain attribute), so its ``state_dict`` and parameter names are
exactly the tracker's: the engine's ``checkpoint.pt`` / ``model.safetensors`` load straight into
:func:`stpn.tracking.checkpoint.load_tracker`, and ``lr_multipliers={"backbone": 0.1}`` reads as in
MixFormer.
"""
from __future__ import annotations

from torch import Tensor, nn

from stpn.tracking.losses import GIOU_WEIGHT, L1_WEIGHT, box_losses, corner_map_loss, score_loss
from stpn.tracking.model import MixFormer
from stpn.tracking.pairs import TrackingBatch

STAGES = ("box", "score")
SCORE_PREFIX = "score_head."


def freeze_for_stage(tracker: MixFormer, stage: str) -> MixFormer:
    """Set ``requires_grad`` for ``stage``: ``"score"`` trains only ``score_head.*``; ``"box"``
    freezes ``score_head.*`` and leaves the rest as the model built it (MixFormer's backbone
    BatchNorms stay frozen). Returns the tracker."""
    if stage not in STAGES:
        raise ValueError(f"unknown training stage {stage!r}; choose one of {STAGES}")
    for name, param in tracker.named_parameters():
        is_score = name.startswith(SCORE_PREFIX)
        if stage == "score" or is_score:
            param.requires_grad_(is_score and stage == "score")
    return tracker


class TrackerObjective(nn.Module):
    """Loss of one :class:`~stpn.tracking.pairs.TrackingBatch` for a training stage.

    Args:
        tracker: the :class:`~stpn.tracking.model.MixFormer` to train (frozen here for the stage).
        stage: ``"box"`` or ``"score"``.
        giou_weight, l1_weight: box-loss weights (MixFormer: 2 and 5). A from-scratch toy may
            drop the GIoU term (``giou_weight=0``): under localisation uncertainty an IoU-type
            loss is minimised by a box larger than the target, and an online tracker that crops
            around its own last box compounds that bias frame after frame; L1 on the corners
            has no such bias.
        corner_weight: weight of :func:`~stpn.tracking.losses.corner_map_loss` (MixFormer: 0,
            no such term); a from-scratch tracker needs it to learn to localise (see there).
    """

    def __init__(
        self, tracker: MixFormer, stage: str = "box", giou_weight: float = GIOU_WEIGHT, l1_weight: float = L1_WEIGHT,
        corner_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if any(True for _ in tracker.named_parameters(recurse=False)) or any(
            True for _ in tracker.named_buffers(recurse=False)
        ):
            raise ValueError("TrackerObjective shares the tracker's submodules; it cannot hold direct parameters")
        freeze_for_stage(tracker, stage)
        object.__setattr__(self, "tracker", tracker)  # not a submodule: keeps state-dict keys unprefixed
        for name, child in tracker.named_children():
            self.add_module(name, child)
        self.stage = stage
        self.giou_weight, self.l1_weight = float(giou_weight), float(l1_weight)
        self.corner_weight = float(corner_weight)
        if min(self.giou_weight, self.l1_weight, self.corner_weight) < 0:
            raise ValueError(f"loss weights must be >= 0, got giou {giou_weight}, l1 {l1_weight}, corner {corner_weight}")

    def train(self, mode: bool = True) -> "TrackerObjective":
        super().train(mode)
        self.tracker.training = mode
        if self.stage == "score":
            for name, child in self.named_children():
                if name != SCORE_PREFIX.rstrip("."):
                    child.eval()
        return self

    def forward(self, batch: TrackingBatch) -> dict[str, Tensor]:
        if self.tracker.has_stpn and batch.support is None:
            raise ValueError("an STPN tracker needs support frames: set pairs.num_support > 0")
        out = self.tracker(
            batch.template, batch.online_template, batch.search,
            support=batch.support if self.tracker.has_stpn else None,
            support_mask=batch.support_mask if self.tracker.has_stpn else None,
            with_score=self.stage == "score",
        )
        if self.stage == "score":
            return score_loss(out.score_logits, batch.labels)
        losses = box_losses(out.boxes, batch.boxes, weight=batch.labels,
                            giou_weight=self.giou_weight, l1_weight=self.l1_weight)
        if self.corner_weight:
            losses.update(corner_map_loss(out.corner_logits, batch.boxes, weight=batch.labels, scale=self.corner_weight))
        return losses

"""The FGFA motion-speed groups, for the metrics: they are a property of the ground truth and
live in :mod:`stpn.data.motion_speed` (so that ``stpn.data`` never imports ``stpn.metrics``)."""
from stpn.data.motion_speed import SPEED_GROUPS, box_iou, motion_ious, speed_group

__all__ = ["SPEED_GROUPS", "box_iou", "motion_ious", "speed_group"]

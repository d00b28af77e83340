"""Our tracker as a ``got10k.trackers.Tracker``, for the got10k toolkit's experiments::

    from got10k.experiments import ExperimentGOT10k
    from stpn.tracking.toolkit import ToolkitTracker

    experiment = ExperimentGOT10k(root, subset="val", result_dir="results", report_dir="reports")
    experiment.run(ToolkitTracker(model, name="stpn"))
    experiment.report(["stpn"])

``got10k`` is a development dependency (``pip install -e .[dev]``); nothing else in the library
imports this module.
"""
from __future__ import annotations

import numpy as np

try:
    from got10k.trackers import Tracker
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "stpn.tracking.toolkit needs the got10k toolkit (and six): pip install got10k six, "
        "or pip install -e .[dev]"
    ) from exc

from stpn.tracking.sequence import as_online_tracker


class ToolkitTracker(Tracker):
    """Adapts :class:`~stpn.tracking.online.OnlineTracker` to the toolkit: PIL images in,
    ``x, y, w, h`` numpy boxes out. Deterministic, so the toolkit runs one repetition."""

    def __init__(self, model_or_tracker, name: str = "stpn", **online_kwargs) -> None:
        super().__init__(name=name, is_deterministic=True)
        self.tracker = as_online_tracker(model_or_tracker, **online_kwargs)

    def init(self, image, box) -> None:
        self.tracker.init(np.asarray(image.convert("RGB")), [float(v) for v in box])

    def update(self, image) -> np.ndarray:
        box, _ = self.tracker.update(np.asarray(image.convert("RGB")))
        return box

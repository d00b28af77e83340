"""DropTrack training configs (``configs/droptrack_*.yaml``), one section per piece of code:

* ``model``: :func:`stpn.droptrack.build.build_droptrack` arguments (``pretrained``: an exported
  pre-training run; ``--pretrained`` overrides) and ``tracker: droptrack``, which makes
  ``stpn train-track`` train DropTrack (:mod:`stpn.tracking.kinds`; removed when read);
* ``data``: ``root`` (a GOT-10k root; ``--data`` overrides), ``split`` (or a list),
  ``samples_per_epoch``, ``num_workers``;
* ``pairs``: :class:`stpn.tracking.pairs.PairSettings` over OSTrack's defaults
  (:data:`stpn.droptrack.train.DROPTRACK_PAIRS`; crop sizes come from ``model``);
* ``train``: :class:`stpn.engine.TrainConfig`;
* ``loss``: ``focal_weight`` / ``giou_weight`` / ``l1_weight`` (1 / 2 / 5);
* ``online``: :class:`stpn.tracking.online.OnlineTracker` settings stored in ``droptrack.json``;
* ``elimination``: optional :class:`stpn.droptrack.candidate_elimination.KeepRatioRamp`
  (``start_epoch``, ``warm_epochs``: OSTrack's training ramp of the keep ratio; without it the
  model's ``ce_keep_ratio`` is used from the first iteration).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Union

from stpn.config_file import read_sections
from stpn.strict_fields import from_dict

SECTIONS = ("model", "data", "pairs", "train", "loss", "online", "elimination")


def load_droptrack_config(path: Union[str, Path]) -> dict[str, Any]:
    """Read a config; unknown sections or keys of ``data`` / ``loss`` / ``online`` /
    ``elimination`` are one-line errors naming the file (``pairs`` and ``train`` are checked when
    they are built). ``elimination`` is returned as a ``KeepRatioRamp`` (or None)."""
    from stpn.droptrack.candidate_elimination import KeepRatioRamp
    from stpn.droptrack.objective import DropTrackObjective
    from stpn.tracking.kinds import pop_tracker
    from stpn.tracking.online import check_online_settings

    data = read_sections(path, SECTIONS, required=("model", "train"))
    data["model"] = pop_tracker(data["model"], str(path), "droptrack")
    for section in SECTIONS:
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise ValueError(f"{path}: section `{section}` must be a mapping")
    known = {"data": {"root", "split", "samples_per_epoch", "num_workers"},
             "loss": set(inspect.signature(DropTrackObjective).parameters) - {"tracker", "keep_ramp"}}
    for section, keys in known.items():
        unknown = sorted(set(data.get(section) or {}) - keys)
        if unknown:
            raise ValueError(f"{path}: unknown keys {unknown} in `{section}`; known: {', '.join(sorted(keys))}")
    check_online_settings(data.get("online"), str(path))
    if data.get("elimination") is not None:
        data["elimination"] = from_dict(KeepRatioRamp, data["elimination"], str(path), section="elimination")
    return data

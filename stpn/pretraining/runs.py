"""A finished pre-training run directory back in memory: the whole pair MAE (encoder and
decoder) from ``pretrain.json`` and the engine's ``model.safetensors``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Union

from stpn.pretraining.model import PairMAE, build_pair_mae


def load_pair_mae(run_dir: Union[str, Path]) -> PairMAE:
    """Rebuild and load the pair MAE of ``run_dir``; a folder that is not a finished run is a
    one-line error naming the missing file."""
    from stpn.engine import load_safetensors

    run = Path(run_dir)
    for name in ("pretrain.json", "model.safetensors"):
        if not (run / name).is_file():
            raise FileNotFoundError(f"{run} is not a finished pre-training run: no {name}")
    summary = json.loads((run / "pretrain.json").read_text())
    kwargs = {k: v for k, v in summary["model"].items() if k != "drop_ratio"}
    drop = summary["drop_ratio"] if summary["method"] == "dropmae" else None
    model = build_pair_mae(summary["method"], drop_ratio=drop, **kwargs)
    return load_safetensors(model, run / "model.safetensors")

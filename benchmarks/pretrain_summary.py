"""Table of finished pre-training runs: the training loss over the last 10 % of the logged
iterations (the engine's ``scalars.jsonl``) and the between-frame share of the attention per
decoder layer (``pretrain.json``), mean ± half the range over the runs of each method.

    python benchmarks/pretrain_summary.py RUN_DIR [RUN_DIR ...]
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def _mean_spread(values: list[float]) -> str:
    mean = sum(values) / len(values)
    return f"{mean:.4f} ± {(max(values) - min(values)) / 2:.4f}"


def late_loss(run: Path) -> float:
    """Mean logged ``train/loss`` over the last 10 % of the log entries of ``run``."""
    entries = [json.loads(line) for line in (run / "scalars.jsonl").read_text().splitlines() if line.strip()]
    losses = [e["train/loss"] for e in entries if "train/loss" in e]
    if not losses:
        raise ValueError(f"{run}/scalars.jsonl holds no train/loss")
    tail = losses[-max(1, len(losses) // 10):]
    return sum(tail) / len(tail)


def summarise(run_dirs: list[str]) -> str:
    """Markdown table, one row per method (runs grouped by ``pretrain.json`` ``method``)."""
    runs = defaultdict(list)
    for run in run_dirs:
        path = Path(run) / "pretrain.json"
        if not path.is_file():
            raise FileNotFoundError(f"{run} is not a finished pre-training run: no pretrain.json")
        summary = json.loads(path.read_text())
        summary["late_loss"] = late_loss(Path(run))
        runs[summary["method"]].append(summary)
    layers = max(len(s["attention_within_between"]) for group in runs.values() for s in group)
    head = ["method", "runs", "loss, last 10 %"] + [f"layer {i} between-frame" for i in range(layers)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, group in sorted(runs.items()):
        cells = [method, str(len(group)), _mean_spread([s["late_loss"] for s in group])]
        cells += [_mean_spread([s["attention_within_between"][i][1] for s in group]) for i in range(layers)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(summarise(sys.argv[1:]))

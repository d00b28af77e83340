"""PSPNet18 vs PSPNet18 + STT (boundary and random queries) on the built-in benchmark, several
seeds, same data and budget: trains each config once per seed, evaluates on the configs'
``eval_data`` and prints a table with mean ± half the range over seeds.

    python benchmarks/vss_compare.py configs/vss_synthetic_pspnet18.yaml configs/vss_synthetic_stt.yaml \
        configs/vss_synthetic_stt_random.yaml --seeds 0 1 --out runs/vss_compare

Results (one JSON per run and ``summary.json``) go to ``--out``; finished runs are reused.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path

from stpn.engine.rng import seed_everything
from stpn.vss.evaluate import evaluate_videos
from stpn.vss.model import build_segmenter
from stpn.vss.run import NUM_CLASSES, load_run, load_vss_config
from stpn.vss.train import train_segmenter

KEYS = ("miou", "miou_degraded", "tc", "tc_visible", "fps")


def run_one(config_path: Path, seed: int, out: Path, data_cache: dict) -> dict:
    result_file = out / f"{config_path.stem}_seed{seed}.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    cfg = load_vss_config(config_path)
    key = repr(cfg["data"])
    if key not in data_cache:
        data_cache[key] = cfg["data"].load()
    eval_key = repr(cfg["eval_data"])
    if eval_key not in data_cache:
        data_cache[eval_key] = cfg["eval_data"].load()
    config = replace(cfg["train"], seed=seed)
    kwargs = {**cfg["model"], "num_classes": NUM_CLASSES}
    seed_everything(seed)
    model = build_segmenter(**kwargs)
    run_dir = out / f"{config_path.stem}_seed{seed}"
    start = time.perf_counter()
    history = train_segmenter(model, kwargs, data_cache[key], config, run_dir, cfg["eval_data"])
    train_seconds = time.perf_counter() - start
    model, _ = load_run(run_dir)
    metrics = evaluate_videos(model, data_cache[eval_key])
    result = {"config": config_path.stem, "seed": seed, "iterations": history.end_iteration,
              "train_seconds": train_seconds, "final_loss": history.losses[-1], **metrics}
    result_file.write_text(json.dumps(result, indent=2))
    print(json.dumps(result), flush=True)
    return result


def summary_table(results: list[dict]) -> str:
    rows = ["| config | seeds | " + " | ".join(KEYS) + " | train s/run |", "|---" * (len(KEYS) + 3) + "|"]
    for name in dict.fromkeys(r["config"] for r in results):
        runs = [r for r in results if r["config"] == name]
        cells = []
        for key in (*KEYS, "train_seconds"):
            values = [r[key] for r in runs if r[key] is not None and not math.isnan(r[key])]
            mean = sum(values) / len(values) if values else math.nan
            spread = (max(values) - min(values)) / 2 if values else math.nan
            digits = 0 if key == "train_seconds" else (1 if key == "fps" else 3)
            cells.append(f"{mean:.{digits}f} ± {spread:.{digits}f}")
        rows.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--out", type=Path, default=Path("runs/vss_compare"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache: dict = {}
    results = [run_one(c, s, args.out, cache) for s in args.seeds for c in args.configs]
    (args.out / "summary.json").write_text(json.dumps(results, indent=2))
    print(summary_table(results))


if __name__ == "__main__":
    main()

"""DropTrack on the built-in tracking benchmark, on the CPU (issue 15, §3): a tiny ViT
pre-trained for the same budget with TwinMAE and with DropMAE on the benchmark's training
videos, then fine-tuned as DropTrack, against the same tracker from a random initialisation.
AO / SR0.5 / SR0.75 on the validation split, mean ± spread (half the range) over the seeds.

The pre-training uses ``configs/pretrain_tiny.yaml``'s model (ViT 96 wide, 4 blocks, patch 8,
64 px) with base lr 1.5e-3 and one warm-up epoch (the config warms up for five); the tracker is ``build_droptrack("tiny")`` with 32 px templates and
64 px search crops, so the search grid is the pre-training grid. A toy: numbers from it say
whether the pieces connect and which way the initialisation pushes, not what DropTrack reaches.

Run: ``python -m benchmarks.droptrack_synthetic [--seeds 0 1] [--pretrain-iters 300] [--iters 300]``;
seeds run one after another, so on two cores run one seed per process (``--out`` apart,
``OMP_NUM_THREADS=1`` each) and join their tables with
``python -m benchmarks.droptrack_synthetic --merge OUT_A OUT_B``.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from benchmarks.track_synthetic import BenchSettings, preload, training_sequences, write_benchmark
from stpn.droptrack.build import TINY, build_droptrack
from stpn.droptrack.train import droptrack_pair_settings, train_droptrack
from stpn.engine import TrainConfig
from stpn.metrics.seeds import mean_and_spread
from stpn.pretraining.pairs import PairSettings as MAEPairs
from stpn.pretraining.settings import Recipe
from stpn.pretraining.sources import read_sources
from stpn.pretraining.train import run_pretraining
from stpn.tracking.evaluate import evaluate_tracker

INITS = ("scratch", "twinmae", "dropmae")
METRICS = ("AO", "SR50", "SR75")


@dataclass
class DropTrackBench:
    out_dir: str = "runs/droptrack_synthetic"
    seeds: Sequence[int] = (0, 1)
    inits: Sequence[str] = INITS
    train_videos: int = 16
    val_videos: int = 8
    frames: int = 24
    size: int = 128
    pretrain_iters: int = 300
    pretrain_batch: int = 16
    iters: int = 300
    batch_size: int = 8
    lr: float = 1e-3
    progress: bool = False


def pretrain(method: str, root: Path, out: Path, s: DropTrackBench, seed: int) -> Path:
    if (out / "encoder.safetensors").is_file():
        return out
    model = {k: v for k, v in TINY.items()} | {"decoder_dim": 64, "decoder_depth": 2, "decoder_heads": 4}
    train = {"batch_size": s.pretrain_batch, "max_iters": s.pretrain_iters, "seed": seed, "progress": s.progress,
             "log_every": 50, "checkpoint_each_epoch": False, "weight_decay": 0.05, "betas": [0.9, 0.95],
             "eval_every_epochs": 0, "device": "cpu"}
    run_pretraining(method, read_sources(str(root)), out, model, MAEPairs(img_size=TINY["img_size"]), train,
                    Recipe(base_lr=1.5e-3, warmup_epochs=1))
    return out


def fine_tune(init: str, sequences, root: Path, s: DropTrackBench, seed: int, pretrained: Optional[Path]) -> dict:
    kwargs = dict(variant="tiny", template_size=32, search_size=64, head_channels=32)
    if pretrained is not None:
        kwargs = {k: v for k, v in kwargs.items() if k != "variant"} | {"pretrained": str(pretrained)}
    torch.manual_seed(seed)
    tracker = build_droptrack(**kwargs)
    config = TrainConfig(lr=s.lr, weight_decay=1e-4, max_iters=s.iters, batch_size=s.batch_size, seed=seed,
                         warmup_iters=min(50, s.iters // 5), milestones=(int(0.8 * s.iters),), milestone_unit="iter",
                         clip_grad_norm=1.0, lr_multipliers={"vit": 0.1} if pretrained else {},
                         log_every=50, checkpoint_each_epoch=False, progress=s.progress, device="cpu")
    run_dir = Path(s.out_dir) / f"seed{seed}" / init
    start = time.perf_counter()
    history = train_droptrack(tracker, kwargs, sequences, droptrack_pair_settings(), config, run_dir)
    train_seconds = time.perf_counter() - start
    report = evaluate_tracker(tracker.eval(), root, "val", progress=False, template_factor=2.0, search_factor=4.0,
                              device="cpu")
    return {"init": init, "seed": seed, "train_seconds": round(train_seconds, 1),
            "losses": [round(x, 4) for x in history.losses], **{m: report[m] for m in METRICS}}


def summarise(runs: list[dict]) -> dict:
    table = {}
    for init in dict.fromkeys(r["init"] for r in runs):
        rows = [r for r in runs if r["init"] == init]
        table[init] = {m: mean_and_spread(r[m] for r in rows) for m in METRICS}
    return table


def format_table(table: dict, seeds: int) -> str:
    lines = [f"| initialisation | AO | SR0.5 | SR0.75 |  (mean ± half-range over {seeds} seeds)", "|---|---|---|---|"]
    for init, row in table.items():
        lines.append(f"| {init} | " + " | ".join(f"{row[m][0]:.3f} ± {row[m][1]:.3f}" for m in METRICS) + " |")
    return "\n".join(lines)


def run(s: DropTrackBench) -> dict:
    out = Path(s.out_dir)
    root = out / "data"
    write_benchmark(root, BenchSettings(train_videos=s.train_videos, val_videos=s.val_videos, frames=s.frames,
                                        size=s.size))
    sequences = training_sequences(root)
    preload(sequences)
    start, runs = time.perf_counter(), []
    for seed in s.seeds:
        for init in s.inits:
            t0 = time.perf_counter()
            pre = None if init == "scratch" else pretrain(init, root, out / f"seed{seed}" / f"pretrain_{init}", s, seed)
            pre_seconds = time.perf_counter() - t0
            result = fine_tune(init, sequences, root, s, seed, pre) | {"pretrain_seconds": round(pre_seconds, 1)}
            runs.append(result)
            print(f"seed {seed} {init}: AO {result['AO']:.3f} (pre-train {pre_seconds:.0f} s, "
                  f"fine-tune {result['train_seconds']:.0f} s)", flush=True)
    table = summarise(runs)
    results = {"settings": asdict(s), "runs": runs, "table": table, "wall_seconds": round(time.perf_counter() - start, 1)}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(format_table(table, len(s.seeds)))
    return results


def merge(out_dirs: Sequence[str]) -> dict:
    """One table from the ``results.json`` of several finished runs (one seed each, say), which
    must share every setting but the seeds and the output folder."""
    results = []
    for out in out_dirs:
        path = Path(out) / "results.json"
        if not path.is_file():
            raise FileNotFoundError(f"{out} is not a finished run of this benchmark: no results.json")
        results.append(json.loads(path.read_text()))
    def shared(r: dict) -> dict:
        return {k: v for k, v in r["settings"].items() if k not in ("out_dir", "seeds", "progress")}
    for out, r in zip(out_dirs[1:], results[1:]):
        if shared(r) != shared(results[0]):
            diff = sorted(k for k in shared(r) if shared(r)[k] != shared(results[0]).get(k))
            raise ValueError(f"{out}/results.json has other settings than {out_dirs[0]}: {', '.join(diff)}")
    runs = [run for r in results for run in r["runs"]]
    seeds = sorted({run["seed"] for run in runs})
    if len(seeds) != sum(len(r["settings"]["seeds"]) for r in results):
        raise ValueError("the runs repeat a seed; merge runs of different seeds")
    table = summarise(runs)
    print(format_table(table, len(seeds)))
    return {"runs": runs, "table": table, "seeds": seeds}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = DropTrackBench()
    p.add_argument("--out", default=d.out_dir)
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds))
    p.add_argument("--inits", nargs="+", choices=INITS, default=list(d.inits))
    for name in ("train_videos", "val_videos", "frames", "pretrain_iters", "iters", "batch_size"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--merge", nargs="+", metavar="OUT", help="print one table from finished runs' folders, run nothing")
    a = p.parse_args(argv)
    if a.merge:
        merge(a.merge)
        return 0
    run(DropTrackBench(out_dir=a.out, seeds=tuple(a.seeds), inits=tuple(a.inits), train_videos=a.train_videos,
                       val_videos=a.val_videos, frames=a.frames, pretrain_iters=a.pretrain_iters, iters=a.iters,
                       batch_size=a.batch_size, lr=a.lr))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

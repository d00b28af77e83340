"""Video instance segmentation on the built-in benchmark, on the CPU (issue 12 §5): the per-frame
MinVIS-style segmenter against the same segmenter with STPN, same data, initial weights, budget
and seeds; mask AP / AP50 on the validation videos, overall and on the degraded frames, mean ±
half the range over the seeds.

The recipe is the detection demo's (:mod:`stpn.demo.run`), carried over unchanged where it
applies, so nothing here was tuned on the reported videos:

* data: the demo's three generator seeds for ``data_seed`` (:func:`stpn.demo.run.data_seeds`):
  600 fresh single-class training videos of 8 frames, 16 validation videos of 24 frames, 128 px;
* backbone: a 4-stage Swin of width 32 (the Mask2Former pixel decoder takes four maps, strides
  4 to 32), pre-trained once on clean object crops (:mod:`stpn.demo.pretrain`: one last-stage
  token per crop), cached under ``OUT/pretrain``; both models start from it. STPN's predictor
  reads the last stage, 4 × 4 tokens on a 128-pixel frame, where the detection demo reads
  stride 16 (8 × 8); patch size 2 would give this Swin stride 16 too, but a training step then
  costs 2.5 times as much (0.78 s against 0.32 s per-frame, 1.16 s against 0.43 s with STPN, one
  thread), more than this benchmark's budget;
* training: AdamW at 5e-4 (the tiny VIS config's rate) with the backbone at 0.1×, 50 warm-up
  steps, ×0.1 at 80 %, batch 8, bf16 autocast (the pixel decoder stays fp32), four support frames
  per key frame within ±9 under STPN (the demo's);
* head: Mask2Former of width 64, 10 queries, 3 decoder layers, 1 pixel-decoder encoder layer,
  loss on 1024 points;
* test: per-video mode with 14 support frames (the released test mode), MinVIS association.

On two cores the four runs of two seeds go two at a time, one thread each.

Run: ``python -m benchmarks.vis_synthetic [--seeds 0 1] [--iters 2000] [--out runs/vis_synthetic]``
"""
from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Optional, Sequence

import torch

from stpn.data import synthetic
from stpn.data.types import VideoDataset
from stpn.demo import jobs
from stpn.demo.pretrain import PretrainSettings
from stpn.demo.run import cached_backbone, data_seeds
from stpn.engine import TrainConfig
from stpn.metrics.seeds import mean_and_spread
from stpn.prompts.settings import InferenceSettings
from stpn.vis.config import SegmenterConfig, build_from_config
from stpn.vis.evaluate import evaluate_vis
from stpn.vis.sections import VisDataConfig
from stpn.vis.train import train_segmenter

MODELS = {"per-frame": None, "STPN": "relation"}
METRICS = ("AP", "AP50", "AP_degraded", "AP50_degraded")


@dataclass
class VisBench:
    out_dir: str = "runs/vis_synthetic"
    seeds: Sequence[int] = (0, 1)
    data_seed: int = 0
    train_videos: int = 600
    train_frames: int = 8
    val_videos: int = 16
    frames: int = 24
    size: int = 128
    patch_size: int = 4
    iters: int = 2000
    batch_size: int = 8
    lr: float = 5e-4
    backbone_lr_multiplier: float = 0.1
    train_support: int = 4
    num_support: int = 14
    amp: Optional[str] = "bf16"
    jobs: int = 0
    progress: bool = True
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)


def segmenter_config(s: VisBench, predictor: Optional[str]) -> SegmenterConfig:
    """The small segmenter both models share; only ``predictor`` differs."""
    return SegmenterConfig(
        class_names=list(synthetic.CATEGORIES), predictor=predictor, num_prompts=5,
        swin_kwargs=dict(embed_dim=32, depths=(1, 1, 3, 1), num_heads=(1, 2, 4, 8), window_size=4,
                         img_size=s.size, patch_size=s.patch_size, drop_path_rate=0.0),
        head_kwargs=dict(hidden_dim=64, num_queries=10, num_heads=4, dim_feedforward=256, decoder_layers=3,
                         encoder_layers=1, encoder_feedforward_dim=256, train_num_points=1024),
    )


def data_config(s: VisBench) -> VisDataConfig:
    return VisDataConfig(train_sizes=(s.size,), max_size=s.size, max_offset=9, support_per_side=s.train_support // 2,
                         key_frames="all")


def train_config(s: VisBench, seed: int) -> TrainConfig:
    return TrainConfig(lr=s.lr, weight_decay=0.05, warmup_iters=50, max_iters=s.iters,
                       milestones=(int(s.iters * 0.8),), milestone_unit="iter",
                       lr_multipliers={"backbone": s.backbone_lr_multiplier}, batch_size=s.batch_size, seed=seed,
                       clip_grad_norm=1.0, amp=s.amp, log_every=10, checkpoint_every=0,
                       checkpoint_each_epoch=False, progress=False, device="cpu")


def pretrained_backbone(s: VisBench, pool, progress: bool) -> Path:
    """The cached crop-classification weights of the segmenter's Swin (made first if missing)."""
    config = segmenter_config(s, None)
    weights, _ = cached_backbone(Path(s.out_dir) / "pretrain", s.pretrain, config.variant, config.swin_kwargs,
                                 list(synthetic.CATEGORIES), s.size, True,
                                 data_seeds(s.data_seed)["pretrain"], pool, torch.get_num_threads(), progress)
    return weights


def train_and_evaluate(state: dict, name: str, seed: int, s: VisBench) -> dict:
    """One model of one seed, trained from the pre-trained backbone, evaluated on the validation videos."""
    config = segmenter_config(s, MODELS[name])
    torch.manual_seed(seed)
    model = build_from_config(config, backbone_weights=str(state["weights"]))
    run_dir = Path(s.out_dir) / f"data{s.data_seed}" / f"seed{seed}" / name
    start = time.perf_counter()
    history = train_segmenter(model, config, state["train_set"], data_config(s), train_config(s, seed), run_dir)
    train_seconds = time.perf_counter() - start
    report, _ = evaluate_vis(model.eval(), state["val_set"], InferenceSettings(mode="per-video", num_support=s.num_support),
                             progress=False)
    result = {"model": name, "seed": seed, "train_seconds": round(train_seconds, 1),
              "losses": [round(x, 4) for x in history.losses], **{m: report[m] for m in METRICS}}
    (run_dir / "result.json").write_text(json.dumps(result, indent=1))
    return result


def summarise(runs: list[dict]) -> dict:
    table = {}
    for name in dict.fromkeys(r["model"] for r in runs):
        rows = [r for r in runs if r["model"] == name]
        table[name] = {m: mean_and_spread(100 * r[m] for r in rows) for m in METRICS}
    return table


def format_table(table: dict, seeds: int) -> str:
    lines = [f"| model | mask AP | AP50 | AP, degraded frames | AP50, degraded frames |  (×100, mean ± half-range "
             f"over {seeds} seeds)", "|---|---|---|---|---|"]
    for name, row in table.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[m][0]:.1f} ± {row[m][1]:.1f}" for m in METRICS) + " |")
    return "\n".join(lines)


def run(s: VisBench) -> dict:
    out = Path(s.out_dir)
    seeds = data_seeds(s.data_seed)
    workers = jobs.worker_count(s.jobs)
    start = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        weights = pretrained_backbone(s, pool, s.progress)
        train_set = VideoDataset(list(synthetic.CATEGORIES), jobs.generate_videos(
            s.train_videos, s.train_frames, s.size, seeds["train"], synthetic.SEVERITY_DEFAULT, True, pool,
            "training videos", s.progress))
        val_set = VideoDataset(list(synthetic.CATEGORIES), jobs.generate_videos(
            s.val_videos, s.frames, s.size, seeds["val"], synthetic.SEVERITY_DEFAULT, True, pool,
            "validation videos", s.progress))
    job_list = [(f"{name} seed {seed}", train_and_evaluate, (name, seed, s)) for seed in s.seeds for name in MODELS]
    runs = jobs.run_jobs(job_list, {"train_set": train_set, "val_set": val_set, "weights": weights}, workers, 1,
                         s.progress)
    table = summarise(runs)
    results = {"settings": asdict(s), "runs": runs, "table": table, "wall_seconds": round(time.perf_counter() - start, 1)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(format_table(table, len(s.seeds)))
    return results


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = VisBench()
    p.add_argument("--out", default=d.out_dir)
    p.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds))
    for name in ("data_seed", "train_videos", "train_frames", "val_videos", "frames", "iters", "batch_size", "jobs"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--amp", choices=("bf16", "none"), default="bf16")
    a = p.parse_args(argv)
    for name in ("train_videos", "train_frames", "val_videos", "frames", "iters", "batch_size"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    run(VisBench(out_dir=a.out, seeds=tuple(a.seeds), data_seed=a.data_seed, train_videos=a.train_videos,
                 train_frames=a.train_frames, val_videos=a.val_videos, frames=a.frames, iters=a.iters,
                 batch_size=a.batch_size, jobs=a.jobs, amp=None if a.amp == "none" else a.amp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``stpn demo``: train a per-frame baseline and the same detector with STPN on the built-in
degraded-video benchmark (same data, budget and seed), evaluate both, print one table and write
``report.html``.

Small enough for a 2-core CPU: a 4-stage Swin of width 32 at 128 × 128, FPN width 64, trained
from scratch. The numbers are about this toy setting, not ImageNet VID; what carries over is the
comparison: the two detectors differ only in the prompts.
"""
from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from stpn.data import synthetic
from stpn.detection.config import DetectorConfig, build_from_config
from stpn.detection.run import predict_dataset, train_detector
from stpn.engine import TrainConfig
from stpn.metrics.coco_detection import detection_report

MODELS = {"per-frame": None, "STPN": "relation"}


@dataclass
class DemoSettings:
    """Everything the demo's result depends on (CLI flags of ``stpn demo``)."""

    out_dir: str = "runs/demo"
    seeds: Sequence[int] = (0,)
    train_videos: int = 48
    train_frames: int = 24
    val_videos: int = 16
    frames: int = 24  # of each validation video
    size: int = 128
    iters: int = 600
    batch_size: int = 8
    lr: float = 1e-3
    severity: float = synthetic.SEVERITY_DEFAULT
    num_support: int = 14
    progress: bool = True
    models: dict = field(default_factory=lambda: dict(MODELS))


def demo_detector_config(class_names: list[str], predictor, size: int) -> DetectorConfig:
    """The small detector both models share; only ``predictor`` differs."""
    return DetectorConfig(
        class_names=class_names,
        predictor=predictor,
        num_prompts=5,
        fpn_channels=64,
        swin_kwargs=dict(embed_dim=32, depths=(1, 1, 2, 1), num_heads=(1, 2, 4, 8), window_size=4, img_size=size,
                         drop_path_rate=0.0),
        head_kwargs=dict(anchor_sizes=(16, 32, 64, 128, 256), representation_size=256,
                         rpn_batch_size_per_image=64, box_batch_size_per_image=64,
                         rpn_pre_nms_top_n=(300, 300), rpn_post_nms_top_n=(100, 100), box_score_thresh=0.01),
    )


def train_and_evaluate(name, predictor, train_set, val_set, settings: DemoSettings, seed: int) -> dict:
    torch.manual_seed(seed)
    config = demo_detector_config(train_set.categories, predictor, settings.size)
    model = build_from_config(config)
    train_cfg = TrainConfig(lr=settings.lr, weight_decay=0.05, warmup_iters=50, max_iters=settings.iters,
                            milestones=(int(settings.iters * 0.8),), milestone_unit="iter",
                            batch_size=settings.batch_size, seed=seed, clip_grad_norm=10.0,
                            log_every=10, checkpoint_every=0, progress=settings.progress)
    run_dir = Path(settings.out_dir) / f"seed{seed}" / name
    start = time.perf_counter()
    history = train_detector(model, config, train_set, train_cfg, run_dir)
    train_seconds = time.perf_counter() - start
    detections, fps = predict_dataset(model, val_set, "per-video", settings.num_support, progress=settings.progress)
    report = detection_report(val_set, detections)
    return {
        "model": name, "seed": seed, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "fps": fps, "train_seconds": train_seconds, "losses": history.losses, "metrics": report,
        "detections": detections,
    }


# columns of the demo table: (header, metric key in detection_report, scale)
COLUMNS = (
    ("AP", "AP", 100), ("AP50", "AP50", 100), ("AP50 degraded", "AP50_degraded", 100),
    ("AP50 clean", "AP50_clean", 100), ("AP50 fast", "AP50_fast", 100),
    ("AP50 medium", "AP50_medium", 100), ("AP50 slow", "AP50_slow", 100),
)


def summarise(runs: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per model, per column: (mean, half the max–min spread over seeds)."""
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for name in dict.fromkeys(r["model"] for r in runs):
        mine = [r for r in runs if r["model"] == name]
        row = {}
        for header, key, scale in COLUMNS:
            values = [scale * r["metrics"][key] for r in mine]
            row[header] = (statistics.fmean(values), (max(values) - min(values)) / 2)
        row["params (M)"] = (mine[0]["params_m"], 0.0)
        fps = [r["fps"] for r in mine]
        row["frames/s"] = (statistics.fmean(fps), (max(fps) - min(fps)) / 2)
        table[name] = row
    return table


def format_summary(table: dict[str, dict[str, tuple[float, float]]], seeds: int) -> str:
    """Plain-text table; with several seeds each cell reads ``mean±spread``."""
    headers = list(next(iter(table.values())))
    cell = (lambda m, s: f"{m:.1f}±{s:.1f}") if seeds > 1 else (lambda m, s: f"{m:.2f}" if m < 10 else f"{m:.1f}")
    rows = [[name] + [cell(*row[h]) for h in headers] for name, row in table.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(["model"] + headers, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(["model"] + headers)] + [line(r) for r in rows])


def example_frames(val_set, runs: list[dict], count: int = 4, score_thresh: float = 0.5):
    """Degraded validation frames with each model's confident boxes (first seed)."""
    from stpn.data.types import load_frame
    from stpn.data.video import draw_boxes

    first = {r["model"]: r for r in runs if r["seed"] == runs[0]["seed"]}
    picks = [(v, t) for v, video in enumerate(val_set.videos) for t, ann in enumerate(video.annotations)
             if ann.instances and (ann.deteriorations or any(i.deteriorations for i in ann.instances))]
    picks = picks[:: max(1, len(picks) // count)][:count]
    examples = []
    for v, t in picks:
        video = val_set.videos[v]
        image = load_frame(video.frames[t])
        gt = [i.box for i in video.annotations[t].instances]
        panels = []
        for name, run in first.items():
            det = next(d for d in run["detections"] if d["video_index"] == v and d["frame_index"] == t)
            keep = det["scores"] >= score_thresh
            names = [val_set.categories[int(i) - 1] for i in det["labels"][keep]]
            panel = draw_boxes(image, gt, colors=[(255, 255, 255)] * len(gt))
            panels.append(draw_boxes(panel, det["boxes"][keep].numpy(), names, det["scores"][keep].numpy()))
        ann = video.annotations[t]
        hits = sorted(set(ann.deteriorations) | {d for i in ann.instances for d in i.deteriorations})
        examples.append((f"{video.name} frame {t}: {', '.join(hits)}", panels))
    return examples


def run_demo(settings: DemoSettings) -> dict:
    """The whole demo; returns the summary table and writes ``results.json`` + ``report.html``."""
    from stpn.demo.report import write_report

    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    print(f"generating the degraded-video benchmark: {settings.train_videos} training videos of "
          f"{settings.train_frames} frames and {settings.val_videos} validation videos of {settings.frames} frames "
          f"at {settings.size}x{settings.size}")
    train_set = synthetic.generate_dataset(settings.train_videos, settings.train_frames, settings.size, seed=1,
                                           severity=settings.severity, progress=settings.progress)
    val_set = synthetic.generate_dataset(settings.val_videos, settings.frames, settings.size, seed=2,
                                         severity=settings.severity, progress=settings.progress)
    runs = []
    for seed in settings.seeds:
        for name, predictor in settings.models.items():
            print(f"seed {seed}: training {name} for {settings.iters} iterations")
            runs.append(train_and_evaluate(name, predictor, train_set, val_set, settings, seed))
    table = summarise(runs)
    text = format_summary(table, len(settings.seeds))
    print(f"\nvalidation ({settings.val_videos} videos, {len(settings.seeds)} seed(s), per-video prompts from "
          f"{settings.num_support} frames):\n{text}")
    by_kind = {}
    for name in settings.models:
        mine = [r for r in runs if r["model"] == name]
        kinds = mine[0]["metrics"]["AP50_by_deterioration"]
        by_kind[name] = {k: statistics.fmean(r["metrics"]["AP50_by_deterioration"][k] for r in mine) for k in kinds}
    losses = {name: next(r["losses"] for r in runs if r["model"] == name) for name in settings.models}
    report = write_report(out / "report.html", "stpn demo: per-frame baseline vs STPN on degraded video",
                          f"<pre>{text}</pre>", losses, by_kind, example_frames(val_set, runs))
    (out / "results.json").write_text(json.dumps({
        "settings": {k: v for k, v in vars(settings).items() if k != "models"},
        "table": {m: {h: list(v) for h, v in row.items()} for m, row in table.items()},
        "runs": [{k: v for k, v in r.items() if k != "detections"} for r in runs],
    }, indent=1, default=float))
    print(f"\nreport: {report}   ({time.perf_counter() - start:.0f} s in all)")
    return table

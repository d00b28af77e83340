"""``stpn demo``: a per-frame baseline and the same detector with STPN on the built-in
degraded-video benchmark (same data, initial weights, budget and seed), evaluated the same way.

Steps, all on the CPU:

1. **Data.** Three unrelated sets of the benchmark (:mod:`stpn.data.synthetic`), drawn from
   generator seeds derived from ``data_seed``: many short clean videos for pre-training, many
   short training videos (fresh objects everywhere, so a small model cannot memorise them) and
   the validation videos of the table. Every object of a video has one class
   (``single_class``), as in most ImageNet VID videos.
2. **Pre-training** (:mod:`stpn.demo.pretrain`, cached under ``runs/demo/pretrain``): the small
   Swin learns to classify clean object crops, standing in for the paper's ImageNet weights;
   both detectors start from these weights.
3. **Training**: the two detectors at once in two one-thread worker processes
   (:mod:`stpn.demo.jobs`), 2000 steps under bf16 autocast (weights, optimiser state and loss
   sums in fp32; on a CPU with bf16 instructions a step takes 0.6–0.75 of the fp32 time:
   ``python -m benchmarks.bench_demo_step``),
   the pre-trained backbone at a tenth of the heads' learning rate (at the full rate the
   detector often learns to ignore even perfect prompts: ``docs/demo.md``); STPN sees four
   support frames per key frame, two on each side within ±9 (the released recipe has two in
   all; two made the detector read its prompts less, six did not fit the 15-minute budget:
   ``docs/demo.md``, fourth and eighth rounds).
4. **Evaluation** on the validation videos: the per-frame baseline; STPN with per-video prompts
   from 14 frames (the released test mode); STPN with a sliding window; and STPN with the
   prompts of *another* validation video, which shows how much of the gain comes from the
   video's own frames.

A 3-stage Swin of width 32 at 128 × 128 (last stage stride 16, the stage STPN's predictor
reads: at stride 32 a 128-pixel frame has 4 × 4 tokens, too few to hold the objects' class) and
an FPN of width 64: the numbers are about this toy setting, not ImageNet VID; what carries over
is the comparison, since the detectors differ only in the prompts.
"""
from __future__ import annotations

import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Optional, Sequence

import torch

from stpn.backbones.swin import build_swin
from stpn.data import synthetic
from stpn.data.types import VideoDataset
from stpn.demo import jobs
from stpn.demo.pretrain import (RECORD_FILE, WEIGHTS_FILE, PretrainSettings, cache_dir, pretrain_backbone,
                                save_pretrained)
from stpn.detection.config import DetectorConfig, build_from_config
from stpn.detection.run import predict_dataset, train_detector
from stpn.engine import TrainConfig
from stpn.engine.checkpoint import EXPORT_FILE
from stpn.metrics.coco_detection import detection_report
from stpn.metrics.seeds import mean_and_spread

MODELS = {"per-frame": None, "STPN": "relation"}
# table rows: (row name, model, test mode, prompts from another video)
ROWS = (
    ("per-frame", "per-frame", "per-video", False),
    ("STPN", "STPN", "per-video", False),
    ("STPN, sliding window", "STPN", "sliding", False),
    ("STPN, prompts from another video", "STPN", "per-video", True),
)


@dataclass
class DemoSettings:
    """Everything the demo's result depends on (CLI flags of ``stpn demo``)."""

    out_dir: str = "runs/demo"
    seeds: Sequence[int] = (0,)
    data_seed: int = 0
    train_videos: int = 600
    train_frames: int = 8
    val_videos: int = 16
    frames: int = 24  # of each validation video
    size: int = 128
    iters: int = 2000  # 1200 left STPN level with per-frame on degraded frames; 2400 does not fit 15 min (docs/demo.md)
    batch_size: int = 8
    lr: float = 1e-3
    backbone_lr_multiplier: float = 0.1  # the pre-trained backbone learns at lr × this (both detectors)
    severity: float = synthetic.SEVERITY_DEFAULT
    single_class: bool = True
    train_support: int = 4  # STPN's support frames per training key frame, half from each side (released: 2)
    support_grad: bool = False  # STPN: gradients through the support frames' pass too (released: off)
    amp: Optional[str] = "bf16"  # training under bf16 autocast (both detectors; docs/demo.md, eighth round); None: fp32
    num_support: int = 14  # per-video test mode
    sliding_support: int = 6  # K of the sliding test mode
    sliding_stride: int = 4  # S: ±4, ±8, ±12 stay inside the 24-frame validation videos
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)
    jobs: int = 0  # worker processes (0: one per core, at most 2)
    progress: bool = True
    models: dict = field(default_factory=lambda: dict(MODELS))


def data_seeds(data_seed: int) -> dict[str, int]:
    """Generator seeds of the three sets; different ``data_seed`` → unrelated videos."""
    return {"train": 3 * data_seed + 1, "val": 3 * data_seed + 2, "pretrain": 3 * data_seed + 3}


def demo_detector_config(class_names: list[str], predictor, size: int, support_grad: bool = False) -> DetectorConfig:
    """The small detector both models share; only ``predictor`` (and, under STPN,
    ``support_grad``) differ."""
    return DetectorConfig(
        class_names=class_names,
        predictor=predictor,
        support_grad=support_grad and predictor is not None,
        num_prompts=5,
        fpn_channels=64,
        swin_kwargs=dict(embed_dim=32, depths=(1, 1, 3), num_heads=(1, 2, 4), window_size=4, img_size=size,
                         drop_path_rate=0.0),
        head_kwargs=dict(anchor_sizes=(16, 32, 64, 128), representation_size=256,
                         rpn_batch_size_per_image=64, box_batch_size_per_image=64,
                         rpn_pre_nms_top_n=(300, 300), rpn_post_nms_top_n=(100, 100), box_score_thresh=0.01),
    )


def other_videos(count: int) -> list[int]:
    """For the ablation row: video ``v`` takes its prompts from video ``v + 1`` (the last from the first)."""
    return [(v + 1) % count for v in range(count)]


def pretrained_backbone(settings: DemoSettings, class_names: list[str], pool, threads: int) -> tuple[Path, dict]:
    """The demo's cached pre-trained backbone file and its record (:func:`cached_backbone`)."""
    config = demo_detector_config(class_names, None, settings.size)
    return cached_backbone(Path(settings.out_dir) / "pretrain", settings.pretrain, config.variant, config.swin_kwargs,
                           class_names, settings.size, settings.single_class, data_seeds(settings.data_seed)["pretrain"],
                           pool, threads, settings.progress)


def cached_backbone(root: Path, p: PretrainSettings, variant: str, swin_kwargs: dict, class_names: list[str],
                    size: int, single_class: bool, seed: int, pool, threads: int, progress: bool) -> tuple[Path, dict]:
    """The pre-trained weights of ``build_swin(variant, **swin_kwargs)`` cached under ``root`` and
    their record, made first if missing (:mod:`stpn.demo.pretrain`) on ``p.videos`` clean videos of
    generator seed ``seed``, with ``threads`` torch threads."""
    directory = cache_dir(root, p, swin_kwargs, {"seed": seed, "size": size, "single_class": single_class,
                                                 "generator": synthetic.GENERATOR_VERSION})
    weights = directory / WEIGHTS_FILE
    if weights.is_file():
        record = json.loads((directory / RECORD_FILE).read_text())
        print(f"pre-trained backbone: {weights} (cached; held-out crop accuracy {record['held_out_accuracy']:.3f})")
        return weights, record
    videos = jobs.generate_videos(p.videos, p.frames, size, seed, 0.0, single_class, pool,
                                  "pre-training videos (clean)", progress)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        backbone = build_swin(variant, **swin_kwargs)
        record = pretrain_backbone(backbone, VideoDataset(list(class_names), videos), p, seed=0, progress=progress)
    finally:
        torch.set_num_threads(previous)
    record["settings"] = asdict(p)
    save_pretrained(directory, backbone, record)
    print(f"pre-trained backbone: {weights} (held-out crop accuracy {record['held_out_accuracy']:.3f}, "
          f"{record['seconds']:.0f} s)")
    return weights, record


def demo_train_config(settings: DemoSettings, seed: int, backbone_prefix: str,
                      backbone_lr_multiplier: float | None = None) -> TrainConfig:
    """The demo's training recipe for one detector: AdamW at ``settings.lr`` (the backbone's
    parameters, named by ``backbone_prefix``, at ``backbone_lr_multiplier`` times it, default
    ``settings.backbone_lr_multiplier``), 50 warm-up steps, ×0.1 at 80 % of ``settings.iters``,
    under ``settings.amp`` autocast."""
    multiplier = settings.backbone_lr_multiplier if backbone_lr_multiplier is None else backbone_lr_multiplier
    return TrainConfig(lr=settings.lr, weight_decay=0.05, warmup_iters=50, max_iters=settings.iters,
                       milestones=(int(settings.iters * 0.8),), milestone_unit="iter",
                       lr_multipliers={backbone_prefix: multiplier},
                       batch_size=settings.batch_size, seed=seed, clip_grad_norm=10.0, amp=settings.amp,
                       log_every=10, checkpoint_every=0, progress=False)


def support_per_side(settings: DemoSettings, predictor) -> int:
    """Support frames per side of a training key frame: half of ``settings.train_support`` under
    STPN; one for the per-frame detector (its batches carry them unread)."""
    return settings.train_support // 2 if predictor else 1


def train_and_evaluate(state: dict, name: str, predictor, seed: int, settings: DemoSettings) -> dict:
    """Train one detector from the pre-trained backbone and evaluate it in every test mode of
    :data:`ROWS` that applies to it. ``state``: ``train_set``, ``val_set``, ``weights``."""
    train_set, val_set = state["train_set"], state["val_set"]
    torch.manual_seed(seed)
    config = demo_detector_config(train_set.categories, predictor, settings.size, settings.support_grad)
    model = build_from_config(config, weights=str(state["weights"]))
    train_cfg = demo_train_config(settings, seed, model.backbone_prefix)
    run_dir = Path(settings.out_dir) / f"data{settings.data_seed}" / f"seed{seed}" / name
    key = training_key(settings, name, seed, state["weights"])
    finished = finished_run(run_dir, key)
    if finished is not None:  # the same training was done before: evaluate it again
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(run_dir / EXPORT_FILE)))
        losses, train_seconds = finished["losses"], finished["train_seconds"]
    else:
        start = time.perf_counter()
        losses = train_detector(model, config, train_set, train_cfg, run_dir,
                                support_per_side=support_per_side(settings, predictor)).losses
        train_seconds = time.perf_counter() - start
        (run_dir / RUN_FILE).write_text(json.dumps({"key": key, "losses": losses, "train_seconds": train_seconds}))
    evaluations = []
    for row, model_name, mode, other in ROWS:
        if model_name != name:
            continue
        num_support = settings.sliding_support if mode == "sliding" else settings.num_support
        detections, fps = predict_dataset(
            model, val_set, mode, num_support, settings.sliding_stride, progress=False,
            prompt_videos=other_videos(len(val_set.videos)) if other else None)
        evaluations.append({"row": row, "metrics": detection_report(val_set, detections), "fps": fps,
                            "detections": detections})
    return {"model": name, "seed": seed, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "train_seconds": train_seconds, "losses": losses, "evaluations": evaluations,
            "reused": finished is not None, "run_dir": str(run_dir)}


RUN_FILE = "demo_run.json"
NOT_TRAINING = ("out_dir", "seeds", "progress", "jobs", "val_videos", "frames", "num_support", "sliding_support",
                "sliding_stride", "models")
STPN_ONLY = ("train_support", "support_grad")  # settings a per-frame detector's training never reads


def training_key(settings: DemoSettings, name: str, seed: int, weights: Path) -> str:
    """Everything a trained demo detector depends on, as one string (its run's identity)."""
    ignored = NOT_TRAINING + (() if settings.models[name] else STPN_ONLY)
    fields = {k: v for k, v in asdict(settings).items() if k not in ignored}
    return json.dumps({"settings": fields, "model": name, "predictor": settings.models[name], "seed": seed,
                       "weights": weights.parent.name, "generator": synthetic.GENERATOR_VERSION},
                      sort_keys=True, default=list)


def finished_run(run_dir: Path, key: str):
    """The record of a finished training in ``run_dir`` with this ``key``, or None."""
    record_file = run_dir / RUN_FILE
    if not (record_file.is_file() and (run_dir / EXPORT_FILE).is_file()):
        return None
    try:
        record = json.loads(record_file.read_text())
    except ValueError:
        return None
    return record if record.get("key") == key else None


# columns of the demo table: (header, metric key in detection_report, scale)
COLUMNS = (
    ("AP", "AP", 100), ("AP50", "AP50", 100), ("AP50 degraded", "AP50_degraded", 100),
    ("AP50 clean", "AP50_clean", 100), ("AP50 fast", "AP50_fast", 100),
    ("AP50 medium", "AP50_medium", 100), ("AP50 slow", "AP50_slow", 100),
)


def table_rows(runs: list[dict]) -> list[dict]:
    """One record per (table row, seed): ``row``, ``seed``, ``metrics``, ``fps``, ``params_m``."""
    return [{"row": e["row"], "seed": r["seed"], "metrics": e["metrics"], "fps": e["fps"], "params_m": r["params_m"]}
            for r in runs for e in r["evaluations"]]


def summarise(records: list[dict]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per table row, per column: (mean, half the max–min spread over seeds)."""
    table: dict[str, dict[str, tuple[float, float]]] = {}
    for name in dict.fromkeys(r["row"] for r in records):
        mine = [r for r in records if r["row"] == name]
        row = {}
        for header, key, scale in COLUMNS:
            row[header] = mean_and_spread(scale * r["metrics"][key] for r in mine)
        row["params (M)"] = (mine[0]["params_m"], 0.0)
        row["frames/s"] = mean_and_spread(r["fps"] for r in mine)
        table[name] = row
    return table


def format_summary(table: dict[str, dict[str, tuple[float, float]]], seeds: int) -> str:
    """Plain-text table; with several seeds each cell reads ``mean±spread``."""
    headers = list(next(iter(table.values())))
    cell = (lambda m, s: f"{m:.1f}±{s:.1f}") if seeds > 1 else (lambda m, s: f"{m:.2f}" if m < 10 else f"{m:.1f}")
    rows = [[name] + [f"{row[h][0]:.2f}" if h == "params (M)" else cell(*row[h]) for h in headers]
            for name, row in table.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(["model"] + headers, *rows)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(["model"] + headers)] + [line(r) for r in rows])


def gains_by_seed(records: list[dict], row: str = "STPN", baseline: str = "per-frame") -> list[str]:
    """One line per seed: ``row`` minus ``baseline`` in AP50 overall / degraded / clean."""
    lines = []
    for seed in dict.fromkeys(r["seed"] for r in records):
        mine = {r["row"]: r["metrics"] for r in records if r["seed"] == seed}
        if row in mine and baseline in mine:
            d = {k: 100 * (mine[row][k] - mine[baseline][k]) for k in ("AP50", "AP50_degraded", "AP50_clean")}
            lines.append(f"seed {seed}: {row} - {baseline}: AP50 {d['AP50']:+.1f}, degraded "
                         f"{d['AP50_degraded']:+.1f}, clean {d['AP50_clean']:+.1f}")
    return lines


def run_demo(settings: DemoSettings) -> dict:
    """The whole demo; returns the summary table and writes ``results.json`` + ``report.html``."""
    from stpn.analysis.demo_section import analysis_section
    from stpn.demo.examples import example_frames
    from stpn.demo.report import write_report

    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    workers = jobs.worker_count(settings.jobs)
    threads = max(1, (os.cpu_count() or 1) // workers)
    seeds = data_seeds(settings.data_seed)
    classes = list(synthetic.CATEGORIES)
    print(f"data seed {settings.data_seed}: {settings.train_videos} training videos of {settings.train_frames} "
          f"frames, {settings.val_videos} validation videos of {settings.frames} frames, "
          f"{settings.size}x{settings.size}; {workers} worker process(es)")
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else None
    try:
        def generate(count, frames, seed, desc):
            return VideoDataset(classes, jobs.generate_videos(count, frames, settings.size, seed, settings.severity,
                                                               settings.single_class, pool, desc, settings.progress))

        train_set = generate(settings.train_videos, settings.train_frames, seeds["train"], "training videos")
        val_set = generate(settings.val_videos, settings.frames, seeds["val"], "validation videos")
        weights, pretrain_record = pretrained_backbone(settings, classes, pool, torch.get_num_threads())
    finally:
        if pool is not None:
            pool.shutdown()
    job_list = [(f"{name} (seed {seed})", train_and_evaluate, (name, predictor, seed, settings))
                for seed in settings.seeds for name, predictor in settings.models.items()]
    print(f"training {len(job_list)} detector(s) for {settings.iters} iterations each (a finished run with the "
          f"same settings is evaluated again, not retrained)")
    runs = jobs.run_jobs(job_list, {"train_set": train_set, "val_set": val_set, "weights": weights},
                         workers, threads, settings.progress)
    records = table_rows(runs)
    table = summarise(records)
    text = format_summary(table, len(settings.seeds))
    gains = gains_by_seed(records)
    heading = (f"validation (data seed {settings.data_seed}: {settings.val_videos} videos, {len(settings.seeds)} "
               f"training seed(s); per-video prompts from {settings.num_support} frames, sliding window "
               f"K={settings.sliding_support}, S={settings.sliding_stride}):")
    print(f"\n{heading}\n{text}\n" + "\n".join(gains))
    by_kind = {}
    for row in table:
        mine = [r for r in records if r["row"] == row]
        kinds = mine[0]["metrics"]["AP50_by_deterioration"]
        by_kind[row] = {k: statistics.fmean(r["metrics"]["AP50_by_deterioration"][k] for r in mine) for k in kinds}
    losses = {r["model"]: r["losses"] for r in runs if r["seed"] == settings.seeds[0]}
    first = {e["row"]: e["detections"] for r in runs if r["seed"] == settings.seeds[0] for e in r["evaluations"]}
    notes = (f"<p>Pre-trained backbone: held-out crop accuracy {pretrain_record['held_out_accuracy']:.3f} "
             f"({pretrain_record['train_crops']} training crops). Training: {settings.iters} steps of "
             f"{settings.batch_size} clips from {settings.train_videos} videos, {settings.amp or 'fp32'}; STPN with "
             f"{settings.train_support} support frames per key frame.</p>")
    report = write_report(out / "report.html", "stpn demo: per-frame baseline vs STPN on degraded video",
                          f"<pre>{heading}\n{text}\n" + "\n".join(gains) + "</pre>", losses, by_kind,
                          *example_frames(val_set, {row: first[row] for row in ("per-frame", "STPN")}), notes=notes,
                          sections=analysis_section({r["model"]: r["run_dir"] for r in runs
                                                     if r["seed"] == settings.seeds[0]}, val_set))
    elapsed = time.perf_counter() - start
    (out / "results.json").write_text(json.dumps({
        "settings": {k: v for k, v in asdict(settings).items() if k != "models"},
        "generator_seeds": seeds,
        "pretrain": pretrain_record,
        "table": {m: {h: list(v) for h, v in row.items()} for m, row in table.items()},
        "gains": gains,
        "runs": [{k: v for k, v in r.items() if k != "evaluations"} | {
            "evaluations": [{k: v for k, v in e.items() if k != "detections"} for e in r["evaluations"]]}
            for r in runs],
        "seconds": elapsed,
    }, indent=1, default=float))
    print(f"\nreport: {report}   ({elapsed:.0f} s in all)")
    return table

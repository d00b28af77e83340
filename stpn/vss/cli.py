"""``stpn train-vss`` / ``stpn eval-vss`` / ``stpn segment-semantic``: video semantic segmentation
from the command line.

``--checkpoint`` is a ``train-vss`` run directory or one of its weight files (:mod:`stpn.vss.run`).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np

from stpn.device_flags import add_device_flags

PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128],
                    [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195],
                    [128, 128, 0], [255, 215, 180], [0, 0, 128], [128, 128, 128]], np.uint8)


def overlay(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5, background: Optional[int] = 0) -> np.ndarray:
    """RGB ``(H, W, 3)`` uint8 with class colours blended in; pixels of class ``background``
    (the benchmark's 0) are left as they are, every class is coloured with ``None`` (Cityscapes,
    CamVid: class 0 is road / sky)."""
    colours = PALETTE[(labels + (background is None)) % len(PALETTE)].astype(np.float32)
    mixed = frame.astype(np.float32) * (1 - alpha) + colours * alpha
    painted = np.ones(labels.shape, bool) if background is None else labels != background
    return np.where(painted[..., None], mixed, frame).round().astype(np.uint8)


def run_train_vss(args: argparse.Namespace) -> int:
    from stpn.engine.rng import seed_everything
    from stpn.outputs import check_run_directory
    from stpn.vss.model import build_segmenter
    from stpn.vss.run import load_vss_config
    from stpn.vss.sources import RecordedVideos
    from stpn.vss.train import train_segmenter

    cfg = load_vss_config(args.config)
    num_classes = cfg["data"].num_classes
    if cfg["eval_data"].num_classes != num_classes:
        raise ValueError(f"{args.config}: `data` has {num_classes} classes but `eval_data` "
                         f"{cfg['eval_data'].num_classes}: train and evaluate on one label set")
    overrides = {"max_iters": args.max_iters, "epochs": None, "milestones": ()} if args.max_iters else {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.device:
        overrides["device"] = args.device
    config = replace(cfg["train"], **overrides)
    out = check_run_directory(args.out or Path("runs") / Path(args.config).stem, args.resume, args.overwrite)
    start = time.perf_counter()
    videos = cfg["data"].load()
    model_kwargs = {**cfg["model"], "num_classes": num_classes}
    seed_everything(config.seed)  # the initialisation repeats with the seed too
    model = build_segmenter(**model_kwargs, weights=cfg["pretrained"])
    print(f"{len(videos)} training videos; run directory {out}", flush=True)
    recorded = cfg["data"] if isinstance(cfg["data"], RecordedVideos) else None
    history = train_segmenter(model, model_kwargs, videos, config, out, cfg["eval_data"],
                              resume="auto" if args.resume else None, num_workers=args.workers, recorded=recorded)
    print(f"{history.end_iteration} iterations in {time.perf_counter() - start:.1f} s; "
          f"evaluate with: stpn eval-vss --checkpoint {out}")
    return 0


def format_metrics(name: str, metrics: dict) -> str:
    """One table row: mIoU, mIoU on degraded frames, TC, TC on visible pixels, frames/s."""
    columns = [("mIoU", "miou"), ("mIoU degr.", "miou_degraded"), ("TC", "tc"), ("TC visible", "tc_visible"),
               ("FPS", "fps")]
    width = max(len(name), len("model"))
    header = f"{'model':<{width}}  " + "  ".join(f"{title:>10}" for title, _ in columns)
    cells = [f"{metrics[key]:>10.2f}" if key == "fps" else f"{metrics[key]:>10.3f}" for _, key in columns]
    return f"{header}\n{name:<{width}}  " + "  ".join(cells) + f"\n{int(metrics['frames'])} frames"


def eval_data_with_overrides(data, args: argparse.Namespace):
    """The run's evaluation videos with ``--videos`` / ``--seed`` (benchmark) or ``--videos`` /
    ``--root`` / ``--split`` (recorded datasets) applied."""
    from stpn.vss.sources import SyntheticVideos

    if isinstance(data, SyntheticVideos):
        if args.root or args.split:
            raise ValueError("--root and --split apply to Cityscapes / CamVid runs; this run evaluates on the "
                             "benchmark")
        changes = {"num_videos": args.videos, "seed": args.seed}
    else:
        if args.seed is not None:
            raise ValueError(f"--seed applies to the benchmark; this run evaluates on {data.format}")
        changes = {"max_sequences": args.videos, "root": args.root, "split": args.split}
    return replace(data, **{k: v for k, v in changes.items() if v is not None})


def flow_function(args: argparse.Namespace, data, device):
    """None for the benchmark's exact flow (or no TC), else a :class:`~stpn.vss.raft_flow.RaftFlow`."""
    from stpn.vss.raft_flow import RaftFlow
    from stpn.vss.sources import SyntheticVideos

    flow = args.flow or ("exact" if isinstance(data, SyntheticVideos) else "none")
    if flow == "exact" and not isinstance(data, SyntheticVideos):
        raise ValueError(f"--flow exact exists only for the benchmark; for {data.format} use --flow raft")
    if flow == "none" and isinstance(data, SyntheticVideos):
        raise ValueError("--flow none: the benchmark's TC always has its exact flow (leave --flow out, or --flow raft)")
    if flow == "raft":
        if not args.flow_weights:
            raise ValueError("--flow raft needs --flow-weights PATH (a local RAFT state dict; nothing is downloaded)")
        return RaftFlow(args.flow_weights, args.flow_model, device)
    if args.flow_weights:
        raise ValueError("--flow-weights is used only with --flow raft")
    return None


def run_eval_vss(args: argparse.Namespace) -> int:
    from stpn.engine.checkpoint import run_directory
    from stpn.engine.device import pick_device
    from stpn.outputs import atomic_write
    from stpn.vss.evaluate import evaluate_videos
    from stpn.vss.evaluate_recorded import evaluate_sequences
    from stpn.vss.run import load_run
    from stpn.vss.sources import SyntheticVideos

    model, info = load_run(args.checkpoint)
    data = eval_data_with_overrides(info["eval_data"], args)
    device = pick_device(args.device)
    flow = flow_function(args, data, device)
    if isinstance(data, SyntheticVideos):
        metrics = evaluate_videos(model, data.load(), device, flow)
    else:
        metrics = evaluate_sequences(model, data.load(), data.context, device, flow)
    run_dir = run_directory(args.checkpoint)
    print(format_metrics(run_dir.name, metrics))
    if args.json:
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(json.dumps(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}, indent=2)))
        print(f"metrics written to {args.json}")
    return 0


def run_segment_semantic(args: argparse.Namespace) -> int:
    from PIL import Image

    from stpn.data.video import VideoReader, VideoWriter
    from stpn.engine.device import pick_device
    from stpn.outputs import atomic_output, check_outputs, input_files
    from stpn.vss.inference import StreamingSegmenter
    from stpn.vss.run import load_run
    from stpn.vss.sources import SyntheticVideos

    if not Path(args.video).is_file():
        raise FileNotFoundError(f"video not found: {args.video}")
    check_outputs([("the input video", args.video), *input_files("--checkpoint", args.checkpoint)], {"--out": args.out})
    model, info = load_run(args.checkpoint)
    background = 0 if isinstance(info["eval_data"], SyntheticVideos) else None
    segmenter = StreamingSegmenter(model, pick_device(args.device))
    reader = VideoReader(args.video)
    frames, seconds = 0, 0.0
    with atomic_output(args.out, keep_suffix=True) as tmp, \
            VideoWriter(tmp, reader.fps or 25.0, (reader.width, reader.height)) as writer:
        for frame in reader:
            small = frame if args.size is None else np.asarray(Image.fromarray(frame).resize((args.size, args.size)))
            start = time.perf_counter()
            labels = segmenter.step(small).numpy().astype(np.uint8)
            seconds += time.perf_counter() - start
            if args.size is not None:
                labels = np.asarray(Image.fromarray(labels).resize((frame.shape[1], frame.shape[0]), Image.NEAREST))
            writer.write(overlay(frame, labels, background=background))
            frames += 1
        if frames == 0:  # (inside: the empty output is removed)
            raise ValueError(f"{args.video}: no frames could be decoded")
    reader.close()
    print(f"annotated video written to {args.out}; {frames} frames, model {frames / max(seconds, 1e-9):.2f} frames/s")
    return 0


def add_vss_commands(commands) -> None:
    train = commands.add_parser("train-vss", help="train PSPNet18 (+ STT) for video semantic segmentation")
    train.add_argument("--config", required=True, help="configs/vss_*.yaml")
    train.add_argument("--out", default=None, help="run directory (default runs/<config name>)")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--max-iters", type=int, default=None, help="override the length (smoke tests)")
    train.add_argument("--seed", type=int, default=None, help="override train.seed (initialisation and data order)")
    train.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    train.add_argument("--workers", type=int, default=0,
                       help="data-loading processes (Cityscapes: ~1.2 s per 8-frame sample on one core, docs/vss.md)")
    ev = commands.add_parser("eval-vss",
                             help="mIoU, temporal consistency and frames/s (benchmark, Cityscapes or CamVid)")
    ev.add_argument("--checkpoint", required=True, help="train-vss run directory or weight file")
    ev.add_argument("--videos", type=int, default=None,
                    help="number of evaluation videos (Cityscapes / CamVid: the first N sequences; default: the run's)")
    ev.add_argument("--seed", type=int, default=None,
                    help="benchmark seed of the evaluation videos (default: the run's)")
    ev.add_argument("--root", default=None, help="Cityscapes / CamVid runs: dataset root (default: the run's)")
    ev.add_argument("--split", default=None, help="Cityscapes / CamVid runs: split (default: the run's, e.g. val)")
    ev.add_argument("--flow", choices=("exact", "raft", "none"), default=None,
                    help="flow for TC: the benchmark's exact flow (its default), RAFT, or none (TC not measured; "
                         "the default on Cityscapes / CamVid)")
    ev.add_argument("--flow-weights", default=None, help="local RAFT state dict for --flow raft (never downloaded)")
    ev.add_argument("--flow-model", choices=("raft_small", "raft_large"), default="raft_small",
                    help="RAFT variant the --flow-weights belong to")
    ev.add_argument("--json", default=None, help="also write the metrics here")
    add_device_flags(ev)
    seg = commands.add_parser("segment-semantic", help="colour each pixel of a video by its predicted class")
    seg.add_argument("video", help="any file PyAV can decode")
    seg.add_argument("--checkpoint", required=True, help="train-vss run directory or weight file")
    seg.add_argument("--out", required=True, help="annotated mp4 to write")
    seg.add_argument("--size", type=int, default=None, help="resize frames to SIZE x SIZE for the model")
    add_device_flags(seg)


COMMANDS = {"train-vss": run_train_vss, "eval-vss": run_eval_vss, "segment-semantic": run_segment_semantic}


def run_vss_command(args: argparse.Namespace) -> int:
    from stpn.cli_errors import run_reporting_errors

    return run_reporting_errors(args.command, COMMANDS[args.command], args)

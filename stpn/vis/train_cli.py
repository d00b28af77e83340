"""``stpn train-vis``: train the video instance segmenter (MinVIS-style Mask2Former, with or
without STPN) from a YAML config; the run directory is what :func:`stpn.vis.checkpoint.load_vis_run`,
``stpn eval-vis`` and ``stpn segment`` read."""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path


def run_train_vis(args: argparse.Namespace) -> int:
    from stpn.engine.rng import seed_everything
    from stpn.outputs import check_run_directory
    from stpn.vis.coco_weights import load_coco_mask2former
    from stpn.vis.config import build_from_config
    from stpn.vis.sections import read_vis_config
    from stpn.vis.train import train_segmenter

    cfg = read_vis_config(args.config)
    overrides = {"max_iters": args.iters, "epochs": None} if args.iters else {}
    if args.iters:  # the recipe's milestones past the shortened run are dropped
        overrides["milestones"] = tuple(m for m in cfg.train.milestones
                                        if cfg.train.milestone_unit != "iter" or m < args.iters)
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.device:
        overrides["device"] = args.device
    train = replace(cfg.train, **overrides)
    out = check_run_directory(args.out or Path("runs") / Path(args.config).stem, args.resume, args.overwrite)
    start = time.perf_counter()
    dataset = cfg.data.load()
    if not dataset.videos:
        raise ValueError(f"{args.config}: the training data has no videos")
    names = cfg.model.class_names or list(dataset.categories)
    model_config = replace(cfg.model, class_names=names)
    seed_everything(train.seed)  # the initialisation repeats with the seed
    model = build_from_config(model_config, backbone_weights=cfg.backbone_weights)
    if cfg.coco_weights:
        kept = load_coco_mask2former(model, cfg.coco_weights)
        print(f"initialised from {cfg.coco_weights}; {len(kept)} tensors keep their initialisation", flush=True)
    frames = sum(len(v) for v in dataset.videos)
    print(f"{len(dataset.videos)} training videos ({frames} frames, {len(names)} classes); run directory {out}",
          flush=True)
    history = train_segmenter(model, model_config, dataset, cfg.data, train, out, cfg.inference,
                              resume="auto" if args.resume else None, num_workers=args.workers)
    losses = history.losses
    summary = f"; loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else ""
    print(f"{history.end_iteration} iterations in {time.perf_counter() - start:.1f} s{summary}; "
          f"run directory {out}")
    return 0


def add_train_vis_command(commands) -> None:
    cmd = commands.add_parser("train-vis", help="train the video instance segmenter (Mask2Former + STPN)")
    cmd.add_argument("--config", required=True, help="configs/ytvis19_*.yaml or configs/vis_synthetic_tiny.yaml")
    cmd.add_argument("--out", default=None, help="run directory (default runs/<config name>)")
    cmd.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    cmd.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    cmd.add_argument("--max-iters", "--iters", dest="iters", type=int, default=None,
                     help="override the length in iterations (smoke tests)")
    cmd.add_argument("--workers", type=int, default=0, help="data-loading processes (default 0: in the main process)")
    cmd.add_argument("--seed", type=int, default=None, help="override train.seed (initialisation and data order)")
    cmd.add_argument("--device", default=None, help="default: CUDA when available, else CPU")


def run_train_vis_command(args: argparse.Namespace) -> int:
    from stpn.cli_errors import run_reporting_errors

    return run_reporting_errors("train-vis", run_train_vis, args)

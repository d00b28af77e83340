"""``stpn pretrain --method dropmae|twinmae --data DIR --out R``: DropMAE / TwinMAE pre-training.

``--config`` is an optional YAML of the sections in :mod:`stpn.pretraining.settings` (the
defaults are the ViT-B/16 preset: decoder 512 wide, 8 blocks, 16 heads, batch 64, 400 epochs);
the flags override its ``train`` / ``pairs`` values. The command prints the final loss, the
within- / between-frame attention per decoder layer and the exported files.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from stpn.pretraining.model import METHODS


def add_pretrain_commands(commands) -> None:
    """Add ``pretrain`` to ``commands`` (an argparse subparsers object)."""
    cmd = commands.add_parser("pretrain", help="DropMAE / TwinMAE masked pre-training of a ViT on frame pairs",
                              description="Pre-train a ViT encoder on frame pairs of videos (DropMAE or TwinMAE) and "
                                          "export it in timm's layout for build_vit(weights=...).")
    cmd.add_argument("--method", choices=sorted(METHODS), default="dropmae")
    cmd.add_argument("--data", required=True,
                     help="a folder of video files, a GOT-10k root, or 'builtin' / 'builtin:N' (the synthetic benchmark)")
    cmd.add_argument("--out", required=True, help="run directory")
    cmd.add_argument("--config", default=None, help="YAML with model / pairs / train / recipe sections")
    cmd.add_argument("--epochs", type=int, default=None)
    cmd.add_argument("--max-iters", type=int, default=None, help="stop after this many iterations (replaces --epochs)")
    cmd.add_argument("--batch-size", type=int, default=None)
    cmd.add_argument("--samples-per-epoch", type=int, default=None, help="frame pairs per epoch (default: one per video)")
    cmd.add_argument("--drop-ratio", type=float, default=None, help="ASAD's P (dropmae only; default 0.1)")
    cmd.add_argument("--seed", type=int, default=None)
    cmd.add_argument("--num-workers", type=int, default=0)
    cmd.add_argument("--device", default=None, help="e.g. cpu, cuda (default: CUDA when available)")
    cmd.add_argument("--resume", action="store_true", help="continue the run in --out")
    cmd.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")


def _apply_flags(cfg: dict, args: argparse.Namespace) -> None:
    train = cfg["train"]
    if args.max_iters is not None:
        train.update(max_iters=args.max_iters, epochs=None)
    elif args.epochs is not None:
        train.update(epochs=args.epochs, max_iters=None)
    for key in ("batch_size", "seed", "device"):
        if getattr(args, key) is not None:
            train[key] = getattr(args, key)
    if args.samples_per_epoch is not None:
        cfg["pairs"].samples_per_epoch = args.samples_per_epoch
    if args.drop_ratio is not None:
        cfg["model"]["drop_ratio"] = args.drop_ratio


def run_pretrain_command(args: argparse.Namespace) -> int:
    """Run ``pretrain``; returns the exit code."""
    from stpn.outputs import check_run_directory
    from stpn.pretraining.settings import read_pretrain_config
    from stpn.pretraining.sources import read_sources
    from stpn.pretraining.train import format_attention_split, run_pretraining

    cfg = read_pretrain_config(args.config)
    _apply_flags(cfg, args)
    if args.method == "twinmae" and cfg["model"].get("drop_ratio"):
        raise ValueError("--method twinmae has no ASAD: drop --drop-ratio (or the config's model.drop_ratio)")
    out = check_run_directory(Path(args.out), args.resume, args.overwrite)
    videos = read_sources(args.data)
    print(f"{args.method}: {len(videos)} videos from {args.data}; run directory {out}", flush=True)
    start = time.perf_counter()
    summary = run_pretraining(args.method, videos, out, cfg["model"], cfg["pairs"], cfg["train"], cfg["recipe"],
                              num_workers=args.num_workers, resume=args.resume)
    print(f"{summary['iterations']} iterations in {time.perf_counter() - start:.1f} s; "
          f"final loss {summary['final_loss']:.4f}")
    print(format_attention_split(summary["attention_within_between"]))
    print(f"encoder: {summary['files']['encoder']} (build_vit(weights=...)); "
          f"temporal embeddings: {summary['files']['temporal']}")
    return 0

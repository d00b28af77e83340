"""``stpn demo``: the main job (``make demo``)."""
from __future__ import annotations

import argparse
import dataclasses
import sys


def add_demo_command(sub) -> None:
    from stpn.demo.run import DemoSettings

    d = DemoSettings()
    demo = sub.add_parser("demo", help="per-frame baseline vs STPN on the built-in degraded-video benchmark")
    demo.add_argument("--out", default=d.out_dir, help="where report.html, results.json and the runs go")
    demo.add_argument("--seeds", type=int, nargs="+", default=list(d.seeds), help="training seeds (mean ± spread)")
    demo.add_argument("--data-seed", type=int, default=d.data_seed,
                      help="selects unrelated pre-training / training / validation videos")
    demo.add_argument("--iters", type=int, default=d.iters, help="training iterations per detector")
    demo.add_argument("--backbone-lr", type=float, default=d.backbone_lr_multiplier,
                      help="learning-rate multiplier of the pre-trained backbone (both detectors)")
    demo.add_argument("--pretrain-iters", type=int, default=d.pretrain.iters, help="backbone pre-training iterations")
    demo.add_argument("--train-videos", type=int, default=d.train_videos)
    demo.add_argument("--train-frames", type=int, default=d.train_frames, help="frames per training video")
    demo.add_argument("--val-videos", type=int, default=d.val_videos)
    demo.add_argument("--frames", type=int, default=d.frames, help="frames per validation video")
    demo.add_argument("--severity", type=float, default=d.severity, help="deterioration severity (0 = clean)")
    demo.add_argument("--train-support", type=int, default=d.train_support,
                      help="STPN: support frames per training key frame, half from each side (even)")
    demo.add_argument("--support-grad", action="store_true",
                      help="STPN: gradients through the support frames' pass too (the released code: off)")
    demo.add_argument("--amp", choices=("bf16", "none"), default=d.amp or "none",
                      help="training precision of both detectors: bf16 autocast (default) or fp32 (none)")
    demo.add_argument("--jobs", type=int, default=d.jobs, help="worker processes (0: one per core, at most 2)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_demo_command(args: argparse.Namespace) -> int:
    from stpn.demo.run import DemoSettings, run_demo

    try:
        for name in ("iters", "pretrain_iters", "val_videos", "train_videos"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        if args.train_support < 2 or args.train_support % 2:
            raise ValueError(f"--train-support must be an even number >= 2, got {args.train_support}")
        if args.data_seed < 0 or args.jobs < 0 or not args.backbone_lr >= 0:
            raise ValueError("--data-seed, --jobs and --backbone-lr must be >= 0")
        defaults = DemoSettings()
        settings = DemoSettings(out_dir=args.out, seeds=tuple(args.seeds), data_seed=args.data_seed,
                                iters=args.iters, train_videos=args.train_videos, train_frames=args.train_frames,
                                val_videos=args.val_videos, frames=args.frames, severity=args.severity,
                                pretrain=dataclasses.replace(defaults.pretrain, iters=args.pretrain_iters),
                                backbone_lr_multiplier=args.backbone_lr, support_grad=args.support_grad,
                                train_support=args.train_support, amp=None if args.amp == "none" else args.amp,
                                jobs=args.jobs, progress=not args.no_progress)
        for name, value in (("frames", args.frames), ("train-frames", args.train_frames)):
            if value < 1:
                raise ValueError(f"num_frames must be a positive integer, got {value} (--{name})")
        run_demo(settings)
    except ValueError as exc:  # bad sizes / counts are reported before any training
        print(f"stpn demo: error: {exc}", file=sys.stderr)
        return 2
    return 0

"""``stpn train-droptrack`` and ``stpn eval-droptrack``: DropTrack from the command line.

``stpn train-track`` runs :func:`run_train_droptrack` for a config with ``model.tracker:
droptrack``, and ``stpn track`` / ``stpn eval-track`` load a run holding ``droptrack.json``
(:mod:`stpn.tracking.kinds`), so these two commands are DropTrack's names for the same work.

``add_droptrack_commands(commands)`` adds both to an argparse subparsers object;
``run_droptrack_command(args)`` runs the chosen one (expected errors → one line, exit 2).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def run_train_droptrack(args: argparse.Namespace) -> int:
    from stpn.droptrack.build import build_droptrack
    from stpn.droptrack.config import load_droptrack_config
    from stpn.droptrack.train import droptrack_pair_settings, train_droptrack
    from stpn.engine import TrainConfig
    from stpn.engine.rng import seed_everything
    from stpn.outputs import check_run_directory
    from stpn.tracking.train_cli import read_sequences

    cfg = load_droptrack_config(args.config)
    overrides = {"max_iters": args.max_iters, "epochs": None, "milestones": []} if args.max_iters else {}
    if args.device:
        overrides["device"] = args.device
    train = TrainConfig.from_dict({**cfg["train"], **overrides}, args.config, section="train")
    settings = droptrack_pair_settings(cfg.get("pairs"), str(args.config))
    data = cfg.get("data") or {}
    root = args.data or data.get("root")
    if root is None:
        raise ValueError(f"{args.config}: no data.root and no --data: where are the training sequences?")
    out = check_run_directory(args.out or Path("runs") / Path(args.config).stem, args.resume, args.overwrite)
    sequences = read_sequences(root, data.get("split", "train"))
    model_kwargs = dict(cfg["model"])
    if getattr(args, "pretrained", None):
        model_kwargs["pretrained"] = args.pretrained
    seed_everything(train.seed)
    try:
        tracker = build_droptrack(**model_kwargs)
    except TypeError as exc:
        raise ValueError(f"{args.config}: `model` does not match build_droptrack: {exc}") from exc
    print(f"{len(sequences)} training sequences; run directory {out}", flush=True)
    history = train_droptrack(tracker, model_kwargs, sequences, settings, train, out,
                              samples_per_epoch=data.get("samples_per_epoch"), num_workers=data.get("num_workers", 0),
                              resume="auto" if args.resume else None, online=cfg.get("online"), loss=cfg.get("loss"),
                              keep_ramp=cfg.get("elimination"))
    print(f"{history.end_iteration} iterations; tracker ready: stpn eval-track --checkpoint {out} --data DIR")
    return 0


def run_eval_droptrack(args: argparse.Namespace) -> int:
    from stpn.droptrack.checkpoint import load_droptrack
    from stpn.engine.device import pick_device
    from stpn.outputs import check_writable_dir
    from stpn.tracking.cli import format_report
    from stpn.tracking.evaluate import evaluate_tracker

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"dataset root not found: {args.data}")
    if args.results:
        check_writable_dir(args.results, "--results directory")
    model, online = load_droptrack(args.checkpoint)
    if args.search_factor is not None:
        online["search_factor"] = args.search_factor
    run_dir = Path(args.checkpoint) if Path(args.checkpoint).is_dir() else Path(args.checkpoint).parent
    name = args.name or run_dir.name
    report = evaluate_tracker(model, args.data, args.split, results_dir=args.results, tracker_name=name,
                              progress=False, device=pick_device(args.device), **online)
    print(format_report(name, report))
    return 0


def add_droptrack_commands(commands) -> None:
    """Add ``train-droptrack`` and ``eval-droptrack`` to ``commands`` (argparse subparsers)."""
    train = commands.add_parser("train-droptrack", help="train a DropTrack (one-stream ViT) tracker from a YAML config")
    train.add_argument("--config", required=True, help="configs/droptrack_*.yaml")
    train.add_argument("--data", default=None, help="GOT-10k root (overrides data.root)")
    train.add_argument("--pretrained", default=None, help="exported pre-training run (stpn pretrain --out)")
    train.add_argument("--out", default=None, help="run directory (default runs/<config name>)")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--max-iters", type=int, default=None, help="override the length (smoke tests)")
    train.add_argument("--device", default=None, help="e.g. cpu, cuda (default: CUDA when available)")
    ev = commands.add_parser("eval-droptrack", help="GOT-10k AO / SR / FPS of a DropTrack run on a GOT-10k-format split")
    ev.add_argument("--data", required=True, help="GOT-10k root (with <split>/list.txt)")
    ev.add_argument("--checkpoint", required=True, help="DropTrack run directory or weight file")
    ev.add_argument("--split", default="val")
    ev.add_argument("--results", default=None, help="write results here in the got10k toolkit layout")
    ev.add_argument("--name", default=None, help="tracker name (default: run directory name)")
    ev.add_argument("--search-factor", type=float, default=None, help="search crop side / target size (4)")
    ev.add_argument("--device", default=None)


COMMANDS = {"train-droptrack": run_train_droptrack, "eval-droptrack": run_eval_droptrack}


def run_droptrack_command(args: argparse.Namespace) -> int:
    from stpn.cli_errors import run_reporting_errors

    return run_reporting_errors(args.command, COMMANDS[args.command], args)

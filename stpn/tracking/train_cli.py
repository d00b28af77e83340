"""``stpn train-track``: train a MixFormer tracker (+ STPN) from a YAML config, both stages, or
a DropTrack when the config's ``model.tracker`` is ``droptrack`` (:mod:`stpn.tracking.kinds`;
the config is then a ``configs/droptrack_*.yaml``, :mod:`stpn.droptrack.config`).

A config (``configs/got10k_mixformer_*.yaml``) has these sections, each mapping one-to-one onto
the code:

* ``model``: :func:`stpn.tracking.build.build_mixformer` arguments (written to ``tracker.json``),
  optionally ``tracker: mixformer``;
* ``pretrained``: optional local CvT checkpoint for the backbone (``build_mixformer(weights=)``);
* ``data``: ``root`` (a GOT-10k root; ``--data`` overrides), ``split`` (or a list of splits),
  ``samples_per_epoch``, ``num_workers``;
* ``pairs``: :class:`stpn.tracking.pairs.PairSettings` (crop sizes come from ``model``);
* ``stage1`` / ``stage2``: :class:`stpn.engine.TrainConfig` of each stage (``stage2: null``
  skips the score stage);
* ``stage2_pairs``: pair settings changed for stage 2 (MixFormer: ``negative_prob: 0.5``);
* ``loss``: :class:`stpn.tracking.objective.TrackerObjective` weights (``giou_weight``,
  ``l1_weight``, ``corner_weight``; default MixFormer's 2 / 5 / 0);
* ``online``: :class:`stpn.tracking.online.OnlineTracker` settings stored in ``tracker.json``.

The run directory gets ``stage1/`` and ``stage2/``; ``stage2`` is the tracker to use with
``stpn track`` / ``stpn eval-track``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stpn.config_file import read_sections

SECTIONS = ("model", "pretrained", "data", "pairs", "stage1", "stage2", "stage2_pairs", "loss", "online")


def load_track_config(path: str | Path) -> dict[str, Any]:
    """Read and check a tracker training config: unknown sections, unknown keys and values of
    the wrong type are errors (:mod:`stpn.tracking.sections`)."""
    from stpn.tracking.kinds import pop_tracker
    from stpn.tracking.sections import check_track_config

    data = read_sections(path, SECTIONS, required=("model", "data", "stage1"))
    data["model"] = pop_tracker(data["model"], str(path), "mixformer")
    check_track_config(path, data)
    return data


def read_sequences(root: str | Path, splits: Any):
    """Training sequences of one or several GOT-10k splits."""
    from stpn.data.formats.got10k import read_got10k
    from stpn.tracking.sequences import sequences_from_dataset

    if not Path(root).is_dir():
        raise FileNotFoundError(f"GOT-10k root not found: {root} (set data.root or pass --data)")
    splits = [splits] if isinstance(splits, str) else list(splits)
    return [s for split in splits for s in sequences_from_dataset(read_got10k(root, split))]


def run_train_track(args: argparse.Namespace) -> int:
    from stpn.tracking.kinds import config_tracker

    if config_tracker(args.config) == "droptrack":
        from stpn.droptrack.cli import run_train_droptrack

        return run_train_droptrack(args)
    if getattr(args, "pretrained", None):
        raise ValueError(f"--pretrained is for DropTrack configs; {args.config} is a MixFormer config "
                         "(its backbone checkpoint goes in the `pretrained` section)")
    return run_train_mixformer(args)


def run_train_mixformer(args: argparse.Namespace) -> int:
    from stpn.engine import TrainConfig
    from stpn.engine.rng import seed_everything
    from stpn.outputs import check_run_directory
    from stpn.tracking.build import build_mixformer
    from stpn.tracking.online import check_online_settings
    from stpn.tracking.pairs import PairSettings
    from stpn.tracking.train import train_two_stages

    cfg = load_track_config(args.config)
    check_online_settings(cfg.get("online"), str(args.config))
    length = {"max_iters": args.max_iters, "epochs": None, "milestones": []} if args.max_iters else {}
    if args.device:
        length["device"] = args.device
    stage1 = TrainConfig.from_dict({**cfg["stage1"], **length}, args.config, section="stage1")
    stage2 = TrainConfig.from_dict({**cfg["stage2"], **length}, args.config, section="stage2") if cfg.get("stage2") else None
    data = cfg["data"]
    out = check_run_directory(args.out or Path("runs") / Path(args.config).stem, args.resume, args.overwrite)
    sequences = read_sequences(args.data or data["root"], data.get("split", "train"))
    model_kwargs = dict(cfg["model"])
    seed_everything(stage1.seed)  # the model's initialisation repeats with the seed too
    tracker = build_mixformer(**model_kwargs, weights=cfg.get("pretrained"))
    print(f"{len(sequences)} training sequences; run directory {out}", flush=True)
    histories = train_two_stages(
        tracker, model_kwargs, sequences, PairSettings.from_dict(cfg.get("pairs") or {}), stage1, stage2, out,
        stage2_settings=cfg.get("stage2_pairs"), samples_per_epoch=data.get("samples_per_epoch"),
        num_workers=data.get("num_workers", 0), resume=args.resume, online=cfg.get("online"),
        objective_options=cfg.get("loss"),
    )
    for stage, history in histories.items():
        print(f"stage {stage}: {history.end_iteration} iterations")
    final = out / ("stage2" if stage2 is not None else "stage1")
    print(f"tracker ready: stpn eval-track --checkpoint {final} --data DIR")
    return 0


def add_train_track_command(sub) -> None:
    cmd = sub.add_parser("train-track", help="train a MixFormer (both stages) or DropTrack tracker (+ STPN) from a YAML config")
    cmd.add_argument("--config", required=True, help="configs/got10k_mixformer_*.yaml or configs/droptrack*.yaml")
    cmd.add_argument("--data", default=None, help="GOT-10k root (overrides data.root)")
    cmd.add_argument("--out", default=None, help="run directory (default runs/<config name>)")
    cmd.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    cmd.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    cmd.add_argument("--max-iters", type=int, default=None, help="override each stage's length (smoke tests)")
    cmd.add_argument("--device", default=None, help="override each stage's device (default: CUDA when available, else CPU)")
    cmd.add_argument("--pretrained", default=None, help="DropTrack: exported pre-training run (stpn pretrain --out)")


def run_train_track_command(args: argparse.Namespace) -> int:
    from stpn.cli_errors import run_reporting_errors

    return run_reporting_errors("train-track", run_train_track, args)

"""``stpn data synth`` (write the synthetic degraded-video benchmark in any format) and
``stpn data check`` (statistics and every problem of a dataset on disk)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Iterable, Iterator

from stpn.data.formats import FORMATS, dataset_splits, write_dataset
from stpn.data.types import Video


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def add_data_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``data synth`` and ``data check`` on a top-level sub-parser collection."""
    data = subparsers.add_parser("data", help="write the synthetic benchmark, check datasets",
                                 description="Write the synthetic benchmark or check a dataset on disk.")
    commands = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True)
    synth = commands.add_parser("synth", help="write the synthetic degraded-video benchmark",
                                description="Generate synthetic videos with deteriorations and write them "
                                            "in a dataset format.")
    synth.add_argument("--out", type=Path, required=True, help="dataset root to write")
    synth.add_argument("--format", choices=FORMATS, default="vid", help="on-disk format (default: vid)")
    synth.add_argument("--videos", type=_positive_int, default=100, help="number of videos (default: 100)")
    synth.add_argument("--frames", type=_positive_int, default=32, help="frames per video (default: 32)")
    synth.add_argument("--size", type=_positive_int, default=256, help="frame height and width (default: 256)")
    synth.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    synth.add_argument("--severity", type=_non_negative_float, default=1.0,
                       help="deterioration strength (default: 1.0)")
    synth.add_argument("--split", default="train", help="split name (default: train)")
    synth.add_argument("--no-progress", action="store_true", help="no progress bar")
    check = commands.add_parser("check", help="statistics and every problem of a dataset",
                                description="Read a dataset (format detected), print statistics and every "
                                            "problem; exit 1 if there are problems.")
    check.add_argument("root", type=Path, help="dataset root")
    check.add_argument("--format", choices=FORMATS, default=None, help="skip format detection")
    check.add_argument("--quick", action="store_true",
                       help="read only each video's first frame header instead of decoding every frame")
    return data


def run_data_command(args: argparse.Namespace) -> int:
    """Run the parsed ``data`` command; returns the process exit code."""
    from stpn.cli_errors import run_reporting_errors

    commands = {"synth": _synth, "check": _check}
    if args.data_command not in commands:
        raise ValueError(f"unknown data command {args.data_command!r}")
    return run_reporting_errors(f"data {args.data_command}", commands[args.data_command], args)


def _counting(videos: Iterable[Video], bar) -> Iterator[Video]:
    for video in videos:
        yield video
        bar.update(1)


def _synth(args: argparse.Namespace) -> int:
    from stpn.outputs import check_writable_dir

    check_writable_dir(args.out, "dataset root --out")
    if args.out.is_dir() and args.split in dataset_splits(args.out, args.format):
        raise ValueError(f"{args.out} already holds a {args.format} split {args.split!r}; "
                         "choose another --out or --split")
    from tqdm import tqdm

    from stpn.data import synthetic

    start = time.perf_counter()
    videos = synthetic.iter_videos(args.videos, num_frames=args.frames, size=args.size, seed=args.seed,
                                   severity=args.severity)
    with tqdm(total=args.videos, unit="video", desc=f"writing {args.format}", disable=args.no_progress) as bar:
        stream = _counting(videos, bar)
        summary = write_dataset(stream, list(synthetic.CATEGORIES), args.out, args.format, args.split)
    elapsed = time.perf_counter() - start
    print(f"wrote {summary.videos} videos ({summary.frames} frames, {summary.objects} objects) as {args.format} "
          f"split {args.split!r} to {args.out} in {elapsed:.1f} s" + (f"; {summary.note}" if summary.note else ""))
    for path in summary.files:
        print(f"  {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from stpn.data.check import check_dataset

    report = check_dataset(args.root, args.format, quick=args.quick)
    print(report.format_table())
    return 0 if report.ok else 1

"""``stpn track`` / ``stpn eval-track``: a trained tracker from the command line.

``--checkpoint`` is a tracker run directory or one of its weight files
(:mod:`stpn.tracking.checkpoint`); its ``tracker.json`` may carry ``online`` settings, which
the flags here override.
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np

from stpn.device_flags import add_device_flags


def parse_box(text: str) -> list[float]:
    """``"x,y,w,h"`` → four finite floats, or a ``ValueError`` saying what is wrong."""
    parts = [p for p in text.replace(" ", "").split(",")]
    try:
        box = [float(p) for p in parts]
    except ValueError:
        box = []
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        raise ValueError(f"--box must be four numbers x,y,w,h (pixels, top-left corner and size); got {text!r}")
    return box


def runtime_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``device`` and ``bf16`` of the OnlineTracker from ``--device`` / ``--bf16``."""
    from stpn.engine.device import pick_device

    return {"device": pick_device(args.device), "bf16": args.bf16}


def online_settings(config_online: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``tracker.json``'s online section (checked) with the command-line overrides applied."""
    from stpn.tracking.sections import check_online

    settings = check_online(config_online, "tracker.json `online`")
    for key in ("search_factor", "update_interval", "num_support", "support_stride"):
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    return settings


def _first_frames(frames, video: str):
    """The frame iterator, after checking that it holds at least two frames."""
    head = list(itertools.islice(frames, 2))
    if len(head) < 2:
        raise ValueError(f"{video} has only one frame: nothing to track after the initial box")
    return itertools.chain(head, frames)


def run_track(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stpn.data.video import VideoReader, VideoWriter, draw_boxes
    from stpn.tracking.checkpoint import load_tracker
    from stpn.tracking.crops import check_box
    from stpn.tracking.online import OnlineTracker
    from stpn.tracking.sequence import follow

    box = parse_box(args.box)
    reader = VideoReader(args.video)
    check_box(box, reader.height, reader.width)
    model, config = load_tracker(args.checkpoint)
    tracker = OnlineTracker(model, **online_settings(config.online, args), **runtime_settings(args))
    frames = _first_frames(iter(reader), args.video)
    writer: Optional[VideoWriter] = VideoWriter(args.out, reader.fps or 25.0, (reader.width, reader.height)) if args.out else None
    boxes, tracker_seconds, start = [], 0.0, time.perf_counter()
    try:
        progress = tqdm(follow(tracker, frames, box), total=reader.frame_count or None, desc="track", unit="frame")
        for t, image, xywh, score, seconds in progress:
            boxes.append(xywh)
            tracker_seconds += seconds
            if writer:
                x, y, w, h = xywh
                writer.write(draw_boxes(image, [[x, y, x + w, y + h]], ["target"], None if score is None else [score]))
    finally:
        if writer:
            writer.close()
    wall = time.perf_counter() - start
    if args.out:
        print(f"annotated video written to {args.out}")
    if args.txt:
        Path(args.txt).parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(args.txt, np.stack(boxes), fmt="%.3f", delimiter=",")
        print(f"boxes (x,y,w,h per frame) written to {args.txt}")
    n = len(boxes)
    print(f"{n} frames in {wall:.1f} s: {n / max(wall, 1e-9):.2f} frames/s "
          f"(tracker alone {n / max(tracker_seconds, 1e-9):.2f} frames/s)")
    return 0


def format_report(name: str, report: dict[str, Any]) -> str:
    """A one-row table: AO, SR0.5, SR0.75, FPS (+ AO on degraded / clean frames when known)."""
    columns = [("AO", "AO"), ("SR0.5", "SR50"), ("SR0.75", "SR75"), ("FPS", "FPS")]
    if report.get("AO_degraded") is not None:
        columns += [("AO degraded", "AO_degraded"), ("AO clean", "AO_clean")]
    width = max(len(name), len("tracker"))
    header = f"{'tracker':<{width}}  " + "  ".join(f"{title:>11}" for title, _ in columns)

    def cell(key: str) -> str:
        value = report.get(key)
        if value is None:
            return f"{'-':>11}"
        return f"{value:>11.2f}" if key == "FPS" else f"{value:>11.3f}"

    row = f"{name:<{width}}  " + "  ".join(cell(key) for _, key in columns)
    frames = f"{report['num_sequences']} sequences, {report['num_frames']} frames scored"
    if report.get("AO_degraded") is not None:
        frames += f" ({report['num_frames_degraded']} degraded)"
    return "\n".join([header, row, frames])


def run_eval_track(args: argparse.Namespace) -> int:
    from stpn.tracking.checkpoint import load_tracker
    from stpn.tracking.evaluate import evaluate_tracker

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"dataset root not found: {args.data}")
    model, config = load_tracker(args.checkpoint)
    run_dir = Path(args.checkpoint) if Path(args.checkpoint).is_dir() else Path(args.checkpoint).parent
    # a training stage directory (run/stage2) is named after its run: run_stage2
    name = args.name or (f"{run_dir.parent.name}_{run_dir.name}" if run_dir.name.startswith("stage") else run_dir.name)
    report = evaluate_tracker(model, args.data, args.split, results_dir=args.results, tracker_name=name,
                              **online_settings(config.online, args), **runtime_settings(args))
    print(format_report(name, report))
    if args.results:
        print(f"results written to {Path(args.results) / name} (got10k toolkit layout)")
    return 0


def _add_online_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--search-factor", type=float, default=None, help="search crop side / target size (5)")
    parser.add_argument("--update-interval", type=int, default=None, help="frames between online-template updates (10)")
    parser.add_argument("--num-support", type=int, default=None, help="STPN: K past support frames")
    parser.add_argument("--support-stride", type=int, default=None, help="STPN: S frames between support frames")


def add_tracking_commands(sub) -> None:
    track = sub.add_parser("track", help="track one object through a video file")
    track.add_argument("video", help="any file PyAV can decode")
    track.add_argument("--box", required=True, help="initial box x,y,w,h in pixels (first frame)")
    track.add_argument("--checkpoint", required=True, help="tracker run directory or weight file")
    track.add_argument("--out", default=None, help="annotated mp4 to write")
    track.add_argument("--txt", default=None, help="write the boxes, one x,y,w,h line per frame")
    _add_online_flags(track)
    add_device_flags(track)
    ev = sub.add_parser("eval-track", help="GOT-10k AO / SR / FPS of a tracker on a GOT-10k-format split")
    ev.add_argument("--data", required=True, help="GOT-10k root (with <split>/list.txt)")
    ev.add_argument("--checkpoint", required=True, help="tracker run directory or weight file")
    ev.add_argument("--split", default="val")
    ev.add_argument("--results", default=None, help="write results here in the got10k toolkit layout")
    ev.add_argument("--name", default=None, help="tracker name in the results (default: run directory name)")
    _add_online_flags(ev)
    add_device_flags(ev)


COMMANDS = {"track": run_track, "eval-track": run_eval_track}


def run_tracking_command(args: argparse.Namespace) -> int:
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:  # DatasetFormatError is a ValueError
        print(f"stpn {args.command}: error: {exc}", file=sys.stderr)
        return 2

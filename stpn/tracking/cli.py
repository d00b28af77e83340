"""``stpn track`` / ``stpn eval-track``: a trained tracker from the command line.

``--checkpoint`` is a tracker run directory or one of its weight files: a MixFormer run
(``tracker.json``, :mod:`stpn.tracking.checkpoint`) or a DropTrack run (``droptrack.json``,
:mod:`stpn.droptrack.checkpoint`), told apart by :func:`stpn.tracking.kinds.run_tracker`. The
record's ``online`` settings apply, the flags here override them.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import sys
import time
from pathlib import Path
from typing import Any

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
    """The run record's online section (checked) with the command-line overrides applied."""
    from stpn.tracking.sections import check_online

    settings = check_online(config_online, "the run record's `online`")
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


def check_initial_box(box: list[float], height: int, width: int) -> None:
    """``--box`` must start a track on a ``width`` x ``height`` video: a box larger than the
    image is refused, one reaching past its border is clipped with a warning on stderr."""
    from stpn.tracking.crops import check_box

    check_box(box, height, width)
    x, y, w, h = box
    if w > width or h > height:
        raise ValueError(f"--box {x:g},{y:g},{w:g},{h:g} is larger than the {width}x{height} video frame")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        x1, y1 = max(x, 0.0), max(y, 0.0)
        x2, y2 = min(x + w, width), min(y + h, height)
        print(f"stpn track: warning: --box {x:g},{y:g},{w:g},{h:g} reaches past the {width}x{height} frame; "
              f"tracking starts from the clipped box {x1:g},{y1:g},{x2 - x1:g},{y2 - y1:g}", file=sys.stderr)


def _track_outputs(args: argparse.Namespace) -> None:
    """Refuse outputs that are an input (video, checkpoint files) or cannot be written."""
    from stpn.outputs import check_outputs, input_files

    inputs = [("the input video", args.video), *input_files("--checkpoint", args.checkpoint)]
    check_outputs(inputs, {"--out": args.out, "--txt": args.txt})


def _follow_and_draw(tracker, frames, box, writer, total) -> tuple[list, float]:
    """Track through ``frames``; draw each box on ``writer`` (if any). ``(boxes, tracker seconds)``."""
    from tqdm import tqdm

    from stpn.data.video import draw_boxes
    from stpn.tracking.sequence import follow

    boxes, tracker_seconds = [], 0.0
    for t, image, xywh, score, seconds in tqdm(follow(tracker, frames, box), total=total, desc="track", unit="frame"):
        boxes.append(xywh)
        tracker_seconds += seconds
        if writer:
            x, y, w, h = xywh
            writer.write(draw_boxes(image, [[x, y, x + w, y + h]], ["target"], None if score is None else [score]))
    return boxes, tracker_seconds


def run_track(args: argparse.Namespace) -> int:
    from stpn.data.video import VideoReader, VideoWriter
    from stpn.outputs import atomic_output, atomic_write
    from stpn.tracking.kinds import load_any_tracker
    from stpn.tracking.online import OnlineTracker

    box = parse_box(args.box)
    _track_outputs(args)
    reader = VideoReader(args.video)
    frames = _first_frames(iter(reader), args.video)
    check_initial_box(box, reader.height, reader.width)
    model, online = load_any_tracker(args.checkpoint)
    tracker = OnlineTracker(model, **online_settings(online, args), **runtime_settings(args))
    start = time.perf_counter()
    with contextlib.ExitStack() as outputs:  # the video is moved into place only once complete
        writer = None
        if args.out:
            tmp = outputs.enter_context(atomic_output(args.out, keep_suffix=True))
            writer = outputs.enter_context(VideoWriter(tmp, reader.fps or 25.0, (reader.width, reader.height)))
        boxes, tracker_seconds = _follow_and_draw(tracker, frames, box, writer, reader.frame_count or None)
    wall = time.perf_counter() - start
    if args.out:
        print(f"annotated video written to {args.out}")
    if args.txt:
        atomic_write(args.txt, lambda tmp: np.savetxt(tmp, np.stack(boxes), fmt="%.3f", delimiter=","))
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
    from stpn.tracking.evaluate import evaluate_tracker
    from stpn.tracking.kinds import load_any_tracker

    from stpn.engine.checkpoint import run_directory
    from stpn.outputs import check_writable_dir

    if not Path(args.data).is_dir():
        raise FileNotFoundError(f"dataset root not found: {args.data}")
    if args.results:
        check_writable_dir(args.results, "--results directory")
    model, online = load_any_tracker(args.checkpoint)
    run_dir = run_directory(args.checkpoint)
    # a training stage directory (run/stage2) is named after its run: run_stage2
    name = args.name or (f"{run_dir.parent.name}_{run_dir.name}" if run_dir.name.startswith("stage") else run_dir.name)
    report = evaluate_tracker(model, args.data, args.split, results_dir=args.results, tracker_name=name,
                              **online_settings(online, args), **runtime_settings(args))
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
    from stpn.cli_errors import run_reporting_errors

    return run_reporting_errors(args.command, COMMANDS[args.command], args)

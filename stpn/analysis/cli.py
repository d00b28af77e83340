"""``stpn explain`` (EigenCAM pictures of chosen frames) and ``stpn tsne`` (t-SNE plots and
silhouette scores of ground-truth RoI features by motion speed), for one detector run
(``--checkpoint``) or two side by side (``--compare``: typically the per-frame and the STPN
detector of ``stpn demo``).

Both read a dataset directory (format detected; ``--split``, default ``val``) or, with no
input, the built-in benchmark as ``stpn demo`` validates on (:mod:`stpn.analysis.sources`);
``stpn explain`` also takes a video file. Each detector runs with the test-time settings saved
with it, and the support-mode flags override them as in ``stpn eval``.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from stpn.analysis.sources import BenchmarkSettings
from stpn.detection.cli import score_threshold

DEFAULT_EXPLAINED = 4  # frames shown when --frames is not given


def _file_part(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _load_detectors(args: argparse.Namespace):
    from stpn.analysis.models import load_analysed_detector, model_name
    from stpn.engine.device import pick_device

    paths = [args.checkpoint] + ([args.compare] if args.compare else [])
    names = [model_name(p) if Path(p).exists() else str(p) for p in paths]
    if len(names) == 2 and names[0] == names[1]:
        names = [f"{names[0]} (checkpoint)", f"{names[1]} (compare)"]
    device = pick_device(args.device)
    overrides = dict(mode=args.mode, num_support=args.num_support, stride=args.stride, test_size=args.test_size,
                     batch_size=args.batch_size)
    return [load_analysed_detector(p, device, name=n, **overrides) for p, n in zip(paths, names)]


def _read_source(args: argparse.Namespace):
    from stpn.analysis.sources import read_source

    benchmark = BenchmarkSettings(args.synth_videos, args.synth_frames, args.synth_size, args.synth_seed)
    return read_source(args.source, args.format, args.split, benchmark, progress=not args.no_progress)


def _inputs(args: argparse.Namespace):
    from stpn.outputs import input_files

    return [("the input", args.source), *input_files("--checkpoint", args.checkpoint),
            *input_files("--compare", args.compare)]


def _write_png(path: Path, png: bytes) -> None:
    from stpn.outputs import atomic_write

    atomic_write(path, lambda tmp: Path(tmp).write_bytes(png))


def run_explain(args: argparse.Namespace) -> int:
    from stpn.analysis.explain import explain_frames
    from stpn.analysis.frames import most_degraded_frames, parse_frames, spread_frames
    from stpn.outputs import check_outputs, check_writable_dir

    out = check_writable_dir(args.out, "--out")
    detectors = _load_detectors(args)
    dataset = _read_source(args)
    annotated = any(a.instances for v in dataset.videos for a in v.annotations)
    if args.frames:
        frames = parse_frames(args.frames, dataset)
    elif annotated:
        frames = most_degraded_frames(dataset, len(dataset.videos))  # a ranking: walked down to --count pictures
    else:  # a video file: nothing says which frames are degraded
        frames = spread_frames(len(dataset.videos[0]), args.count)
    if not frames:
        raise ValueError("no degraded frame with objects in the videos: choose frames with --frames")
    paths = {(v, t): out / f"explain_{_file_part(dataset.videos[v].name)}_f{t:04d}.png" for v, t in frames}
    check_outputs(_inputs(args), {f"--out file {p.name}": p for p in paths.values()})
    pictures, skipped = explain_frames(dataset, detectors, frames, args.score_thresh, args.cam_level,
                                       skip_empty=not args.frames, progress=not args.no_progress,
                                       limit=None if args.frames else args.count)
    for note in skipped:
        print(f"skipped {note}")
    if not pictures:
        raise ValueError(f"no chosen frame has detections with score >= {args.score_thresh:g} from every model; "
                         "lower --score-thresh or choose frames with --frames")
    for picture in pictures:
        path = paths[(picture.video, picture.frame)]
        _write_png(path, picture.png)
        print(f"{path}  ({picture.caption})")
    return 0


def run_tsne(args: argparse.Namespace) -> int:
    from stpn.analysis.roi_features import ground_truth_features
    from stpn.analysis.tsne import format_silhouettes, silhouettes, tsne_figure
    from stpn.analysis.figures import png_bytes
    from stpn.outputs import check_outputs, check_writable_dir, write_text_atomic

    out = check_writable_dir(args.out, "--out")
    if args.source is not None and Path(args.source).is_file():
        raise ValueError(f"{args.source}: stpn tsne needs ground-truth boxes and classes: give a dataset directory "
                         "(or nothing, for the built-in benchmark)")
    detectors = _load_detectors(args)
    dataset = _read_source(args)
    pictures = {d.name: out / f"tsne_{_file_part(d.name)}.png" for d in detectors}
    scores_file = out / "silhouette.json"
    check_outputs(_inputs(args), {**{f"--out file {p.name}": p for p in pictures.values()},
                                  "--out file silhouette.json": scores_file})
    tables = {}
    for detector in detectors:
        objects = ground_truth_features(detector, dataset, progress=not args.no_progress)
        tables[detector.name] = silhouettes(objects)
        figure = tsne_figure(objects, dataset.categories, f"{detector.name}: box-head features of ground-truth "
                             "objects by class", args.max_points, args.seed)
        _write_png(pictures[detector.name], png_bytes(figure))
    write_text_atomic(scores_file, json.dumps(tables, indent=1, default=float))
    print("silhouette score by class in feature space (objects):")
    print(format_silhouettes(tables))
    for path in [*pictures.values(), scores_file]:
        print(f"  {path}")
    return 0


def _add_common(parser: argparse.ArgumentParser, video_ok: bool) -> None:
    from stpn.data.formats import FORMATS
    from stpn.detection.cli import add_settings_flags

    what = "video file or dataset directory" if video_ok else "dataset directory"
    parser.add_argument("source", nargs="?", default=None,
                        help=f"{what} (default: the built-in benchmark, as `stpn demo` validates on)")
    parser.add_argument("--checkpoint", required=True, help="detector run directory or weight file")
    parser.add_argument("--compare", default=None, help="a second detector run, shown beside the first")
    parser.add_argument("--out", required=True, help="directory for the pictures")
    parser.add_argument("--format", choices=FORMATS, default=None, help="dataset format (default: detected)")
    parser.add_argument("--split", default=None, help="dataset split (default: val, or the only split)")
    bench = BenchmarkSettings()
    parser.add_argument("--synth-videos", type=_positive_int, default=bench.videos,
                        help=f"built-in benchmark: videos (default {bench.videos})")
    parser.add_argument("--synth-frames", type=_positive_int, default=bench.frames,
                        help=f"built-in benchmark: frames per video (default {bench.frames})")
    parser.add_argument("--synth-size", type=_positive_int, default=bench.size,
                        help=f"built-in benchmark: frame size (default {bench.size})")
    parser.add_argument("--synth-seed", type=int, default=bench.seed,
                        help=f"built-in benchmark: generator seed (default {bench.seed}, the demo's validation videos)")
    add_settings_flags(parser)
    parser.add_argument("--device", default=None, help="e.g. cpu, cuda (default: CUDA when available, else CPU)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_analysis_commands(sub) -> None:
    from stpn.analysis.cam import CAM_LEVELS

    explain = sub.add_parser("explain", help="EigenCAM pictures of chosen frames for one or two detectors")
    _add_common(explain, video_ok=True)
    explain.add_argument("--frames", default=None,
                         help="comma-separated FRAME (one video) or VIDEO:FRAME, 0-based (default: the most "
                              "degraded frames, one per video; spread frames for a video file)")
    explain.add_argument("--count", type=_positive_int, default=DEFAULT_EXPLAINED,
                         help=f"frames to pick without --frames (default {DEFAULT_EXPLAINED})")
    explain.add_argument("--score-thresh", type=score_threshold, default=0.5,
                         help="detections shown and used as CAM targets (default 0.5)")
    explain.add_argument("--cam-level", choices=CAM_LEVELS, default="pool",
                         help="FPN level all levels are rescaled to (default pool, the coarsest)")
    tsne = sub.add_parser("tsne", help="t-SNE and silhouette scores of ground-truth RoI features by motion speed")
    _add_common(tsne, video_ok=False)
    tsne.add_argument("--max-points", type=_positive_int, default=300,
                      help="objects drawn per speed group (default 300; the scores use all)")
    tsne.add_argument("--seed", type=int, default=0, help="seed of the t-SNE and the drawn objects")


COMMANDS = {"explain": run_explain, "tsne": run_tsne}


def run_analysis_command(args: argparse.Namespace) -> int:
    from stpn.cli_errors import run_reporting_errors

    return run_reporting_errors(args.command, COMMANDS[args.command], args)

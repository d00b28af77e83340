"""``stpn eval-vis`` / ``stpn segment``: video instance segmentation from the command line.

``--checkpoint`` is a ``train-vis`` run directory or one of its weight files
(:func:`stpn.vis.checkpoint.load_vis_run`); the test-time settings saved with it
(:class:`~stpn.prompts.settings.InferenceSettings`) apply, flags override single fields.

* ``stpn eval-vis --checkpoint R --data ANN.json [--images DIR] [--out DIR]``: YouTube-VIS AP of
  the model on a YouTube-VIS file (frames in ``DIR``, default ``ANN's folder/<ANN name>/JPEGImages``
  as the official download; the built-in benchmark is written so by ``stpn data synth --format
  ytvis``), or ``--config C`` instead of ``--data`` / ``--images``: the file the config's ``eval``
  section names (:class:`~stpn.vis.sections.VisEvalConfig`); prints the metric table, writes
  ``DIR/metrics.json`` and ``DIR/results.json`` (``DIR`` default: ``R``'s run directory ``/eval``)
  (YouTube-VIS results, video ids as in ``ANN.json``). A file without ``annotations`` (the
  valid / test splits) gets only ``results.json``, for the evaluation server.
* ``stpn segment VIDEO --checkpoint R --out annotated.mp4 --json results.json``: any file PyAV
  decodes; the video's top instances drawn with class names and scores, and written as
  YouTube-VIS results (``video_id`` 1, plus ``category_name``).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from pathlib import Path
from typing import Optional

from stpn.device_flags import add_device_flags

TABLE = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AR1", "AR10", "AP_degraded", "AP50_degraded")


def format_vis_table(name: str, report: dict) -> str:
    """One aligned row: the metrics in percent (``-`` for NaN), then frames/s."""
    from stpn.metrics.coco_detection import format_table

    return format_table({name: report}, [c for c in TABLE if c in report] + (["fps"] if "fps" in report else []))


def _settings(run, args: argparse.Namespace):
    """The run's saved test-time settings with the flags on top."""
    from stpn.prompts.settings import DEFAULT_INFERENCE

    stored = getattr(run, "inference", None) or DEFAULT_INFERENCE
    return stored.override(mode=args.mode, num_support=args.num_support, stride=args.stride,
                           test_size=args.test_size, batch_size=args.batch_size)


def _json_safe(report: dict) -> dict:
    return {k: (_json_safe(v) if isinstance(v, dict) else None if isinstance(v, float) and math.isnan(v) else v)
            for k, v in report.items()}


def eval_inputs(args: argparse.Namespace) -> tuple[Path, Optional[Path], Path]:
    """(YouTube-VIS file, frame folder or None for the default, output folder) of ``eval-vis``:
    ``--data`` / ``--images`` if given, else the ``eval`` section of ``--config``."""
    from stpn.engine.checkpoint import run_directory

    data, images = args.data, args.images
    if args.config is not None:
        from stpn.vis.sections import read_vis_config

        evaluation = read_vis_config(args.config).eval
        if data is None and evaluation.data is None:
            raise ValueError(f"{args.config}: no `eval.data` (a YouTube-VIS JSON) to evaluate on; add it or pass --data")
        data = data or evaluation.data
        images = images or evaluation.images
    if data is None:
        raise ValueError("give --data ANN.json, or --config C whose `eval` section names `data`")
    out = Path(args.out) if args.out else run_directory(args.checkpoint) / "eval"
    return Path(data), Path(images) if images else None, out


def run_eval_vis(args: argparse.Namespace) -> int:
    from stpn.data.formats.ytvis import read_ytvis
    from stpn.data.formats.ytvis_results import write_ytvis_results
    from stpn.engine import init_distributed
    from stpn.engine.checkpoint import run_directory
    from stpn.engine.device import pick_device
    from stpn.outputs import OutputError, atomic_write, check_outputs, input_files, write_text_atomic
    from stpn.vis.checkpoint import load_vis_run
    from stpn.vis.evaluate import check_classes, predict_vis_dataset, vis_report

    data, images, out = eval_inputs(args)
    if not data.is_file():
        raise FileNotFoundError(f"YouTube-VIS file not found: {data}")
    metrics_path, results_path = out / "metrics.json", out / "results.json"
    existing = [p for p in (metrics_path, results_path) if p.exists()]
    if existing and not args.overwrite:
        raise OutputError(f"{existing[0]} exists; pass --overwrite to replace it")
    check_outputs([("the data file", data), *input_files("--checkpoint", args.checkpoint)],
                  {"--out (metrics.json)": metrics_path, "--out (results.json)": results_path})
    images = images or data.parent / data.stem / "JPEGImages"
    dataset = read_ytvis(data.parent, data.stem, ann_file=data, image_root=images)
    raw = json.loads(data.read_text())
    if not dataset.videos:
        raise ValueError(f"{data}: no videos to evaluate")
    video_ids = [int(v["id"]) for v in raw["videos"]]
    if len(video_ids) != len(dataset.videos):
        raise ValueError(f"{data}: {len(raw['videos'])} videos listed but {len(dataset.videos)} could be read")
    init_distributed()  # under torchrun: the videos are shared out, rank 0 reports
    model, run = load_vis_run(args.checkpoint, pick_device(args.device))
    check_classes(model, dataset, str(data))
    settings = _settings(run, args)
    results, fps = predict_vis_dataset(model, dataset, settings, args.bf16, video_ids)
    if results is None:
        return 0
    atomic_write(results_path, lambda tmp: write_ytvis_results(results, tmp))
    print(f"{len(results)} predicted tracks written to {results_path}")
    if "annotations" not in raw:
        metrics_path.unlink(missing_ok=True)  # (--overwrite) an old run's metrics would not match
        print(f"{data} has no annotations (a valid / test split): no metrics; {fps:.2f} frames/s")
        return 0
    report = {**vis_report(raw, results, dataset, video_ids), "fps": fps, "settings": settings.to_dict()}
    print(format_vis_table(run_directory(args.checkpoint).name, report))
    write_text_atomic(metrics_path, json.dumps(_json_safe(report), indent=2))
    print(f"metrics written to {metrics_path} ({settings.mode} mode)")
    return 0


def run_segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from stpn.data.clips import frame_to_tensor
    from stpn.data.formats.geometry import encode_mask
    from stpn.data.video import VideoReader, VideoWriter
    from stpn.detection.run import frame_resizer
    from stpn.engine.device import pick_device
    from stpn.outputs import atomic_output, check_outputs, input_files, write_text_atomic
    from stpn.vis.checkpoint import load_vis_run
    from stpn.vis.overlay import draw_instances
    from stpn.vis.video_inference import associate_frames

    if not Path(args.video).is_file():
        raise FileNotFoundError(f"video not found: {args.video}")
    if not args.out and not args.json:
        raise ValueError("nothing to write: give --out annotated.mp4 and/or --json results.json")
    check_outputs([("the input video", args.video), *input_files("--checkpoint", args.checkpoint)],
                  {"--out": args.out, "--json": args.json})
    model, run = load_vis_run(args.checkpoint, pick_device(args.device))
    settings = _settings(run, args)
    reader = VideoReader(args.video)
    resize, _ = frame_resizer(reader.height, reader.width, settings.test_size)
    tensors = (resize(frame_to_tensor(image)) for image in reader)
    frames = list(tensors) if settings.mode == "per-video" and model.stpn is not None else tensors
    bar = tqdm(total=reader.frame_count or None, desc="segment", unit="frame")
    start = time.perf_counter()
    video = associate_frames(model, frames, settings, bf16=args.bf16, progress=lambda t: bar.update(1))
    seconds = time.perf_counter() - start
    bar.close()
    queries, classes, scores = video.association.select(args.top_k)
    names = [model.class_names[int(c)] for c in classes]
    shown = [k for k, s in enumerate(scores.tolist()) if s >= args.score_thresh]
    per_frame: list = []  # each frame's K masks as RLE, encoded while the video is drawn
    with contextlib.ExitStack() as outputs:  # the video is moved into place only once complete
        writer = None
        if args.out:
            tmp = outputs.enter_context(atomic_output(args.out, keep_suffix=True))
            writer = outputs.enter_context(VideoWriter(tmp, reader.fps or 25.0, (reader.width, reader.height)))
        for t, image in enumerate(reader):  # a second decoding pass: the masks need the whole video
            if t >= len(video.association):
                break
            masks = video.frame_masks(queries, t, (reader.height, reader.width)).numpy()
            per_frame.append([encode_mask(m) for m in masks])
            if writer:
                writer.write(draw_instances(image, masks[shown], [names[k] for k in shown],
                                            [float(scores[k]) for k in shown]))
    reader.close()
    if args.out:
        print(f"annotated video written to {args.out} ({len(shown)} instances with score >= {args.score_thresh})")
    if args.json:
        results = [{"video_id": 1, "category_id": int(c) + 1, "category_name": name, "score": float(s),
                    "segmentations": [frame[k] for frame in per_frame]}
                   for k, (c, name, s) in enumerate(zip(classes, names, scores))]
        write_text_atomic(args.json, json.dumps(results))
        print(f"{len(results)} instance tracks written to {args.json} (YouTube-VIS results format)")
    frames_done = len(video.association)
    print(f"{frames_done} frames in {seconds:.1f} s: {frames_done / max(seconds, 1e-9):.2f} frames/s "
          f"({settings.mode} mode)")
    return 0


def _positive_int(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def add_vis_eval_commands(commands) -> None:
    from stpn.detection.cli import add_settings_flags, score_threshold

    ev = commands.add_parser("eval-vis", help="YouTube-VIS AP of a trained video instance segmenter")
    ev.add_argument("--checkpoint", required=True, help="train-vis run directory or weight file")
    ev.add_argument("--config", default=None, help="a train-vis config whose `eval` section names the data")
    ev.add_argument("--data", default=None, help="YouTube-VIS JSON (e.g. the benchmark written by "
                                                 "`stpn data synth --format ytvis`); default: the config's eval.data")
    ev.add_argument("--images", default=None, help="frame folder (default: <data folder>/<data name>/JPEGImages)")
    ev.add_argument("--out", default=None, help="folder for metrics.json and results.json (default: <run>/eval)")
    ev.add_argument("--overwrite", action="store_true", help="replace metrics.json / results.json in --out")
    add_settings_flags(ev)
    add_device_flags(ev)
    seg = commands.add_parser("segment", help="segment and track object instances in a video file")
    seg.add_argument("video", help="any file PyAV can decode")
    seg.add_argument("--checkpoint", required=True, help="train-vis run directory or weight file")
    seg.add_argument("--out", default=None, help="annotated mp4 to write")
    seg.add_argument("--json", default=None, help="instance tracks to write (YouTube-VIS results format)")
    seg.add_argument("--score-thresh", type=score_threshold, default=0.5,
                     help="draw instances scoring at least this, in [0, 1] (default 0.5; the JSON has all)")
    seg.add_argument("--top-k", type=_positive_int, default=10, help="instances kept per video (default 10, MinVIS)")
    add_settings_flags(seg)
    add_device_flags(seg)


COMMANDS = {"eval-vis": run_eval_vis, "segment": run_segment}


def run_vis_eval_command(args: argparse.Namespace) -> int:
    from stpn.cli_errors import run_reporting_errors

    return run_reporting_errors(args.command, COMMANDS[args.command], args)

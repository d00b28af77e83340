"""``stpn train`` / ``stpn eval`` / ``stpn detect``: the video detector from the command line.

A YAML config (``configs/*.yaml``) has four sections that map one-to-one onto the code:
``detector`` (:class:`~stpn.detection.config.DetectorConfig`), ``train``
(:class:`~stpn.engine.TrainConfig`), ``data`` (:class:`~stpn.detection.sections.DataConfig`:
where the dataset is, which frames are key frames of training clips — see
:mod:`stpn.data.splits` — and how clips are made) and ``eval``
(:class:`~stpn.detection.sections.EvalConfig`: how the detector runs at test time); plus an
optional ``pretrained`` backbone checkpoint (a local timm Swin file). Every section is checked.

Test-time settings (:class:`~stpn.prompts.settings.InferenceSettings`): ``stpn train`` saves the
defaults changed by the ``eval`` section with the model; ``stpn eval`` and ``stpn detect`` read
them back, ``stpn eval`` applies its config's ``eval`` section on top, and the flags
(``--mode``, ``--num-support``, ``--stride``, ``--test-size``, ``--batch-size``) come last.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

from stpn.detection.sections import read_run_config, read_run_sections
from stpn.device_flags import add_device_flags
from stpn.prompts.settings import MODES


def load_run_config(path: str | Path) -> dict[str, Any]:
    """Read and check a YAML run config (unknown sections, unknown keys and wrong types are
    errors); returns its sections as read."""
    raw = read_run_sections(path)
    read_run_config(path, raw)
    return raw


def _read_splits(data_cfg, which: str):
    """The ``which`` (``"train"`` / ``"val"``) splits of the ``data`` section, concatenated, and
    their key frames (``key_frames`` applies to training only; see :mod:`stpn.data.splits`)."""
    from stpn.data.splits import read_splits

    key_frames = data_cfg.key_frames if which == "train" else None
    return read_splits(data_cfg.root, data_cfg.format, data_cfg.splits(which), key_frames)


def _settings(stored, args: argparse.Namespace, eval_cfg=None):
    """The test-time settings: ``stored`` with the config's ``eval`` section, then the flags."""
    settings = stored if eval_cfg is None else eval_cfg.apply(stored)
    return settings.override(mode=args.mode, num_support=args.num_support, stride=args.stride,
                             test_size=args.test_size, batch_size=args.batch_size)


def run_train(args: argparse.Namespace) -> int:
    from stpn.data.transforms import build_clip_transform
    from stpn.detection.config import build_from_config
    from stpn.detection.run import train_detector
    from stpn.engine import TrainConfig
    from stpn.engine.rng import seed_everything
    from stpn.outputs import check_run_directory
    from stpn.prompts.settings import DEFAULT_INFERENCE

    raw = read_run_sections(args.config)
    cfg = read_run_config(args.config, raw)
    overrides = {**({"max_iters": args.max_iters, "epochs": None} if args.max_iters else {}),
                 **({"device": args.device} if args.device else {})}
    train_cfg = TrainConfig.from_dict({**(raw.get("train") or {}), **overrides}, args.config, section="train")
    check_run_directory(args.out, resume=args.resume is not None, overwrite=args.overwrite)
    data_cfg = cfg.data
    dataset, key_frames = _read_splits(data_cfg, "train")
    transform = build_clip_transform(True, data_cfg.train_sizes, max_size=data_cfg.max_size)
    seed_everything(train_cfg.seed)  # the model's initialisation repeats with the seed too
    model = build_from_config(cfg.detector, weights=args.pretrained or cfg.pretrained)
    history = train_detector(model, cfg.detector, dataset, train_cfg, args.out, transform,
                             max_offset=data_cfg.max_offset, resume=args.resume, key_frames=key_frames,
                             inference=cfg.eval.apply(DEFAULT_INFERENCE))
    print(f"trained {history.end_iteration} iterations; run directory {args.out}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from stpn.detection.run import load_detector, predict_dataset
    from stpn.detection.run_files import load_inference_settings
    from stpn.engine import init_distributed
    from stpn.engine.device import pick_device
    from stpn.metrics.coco_detection import detection_report, format_table, save_coco_results
    from stpn.outputs import atomic_write, check_outputs, input_files

    cfg = read_run_config(args.config)
    check_outputs([("the config", args.config), *input_files("--checkpoint", args.checkpoint)], {"--json": args.json})
    dataset, _ = _read_splits(cfg.data, "val")
    init_distributed()  # under torchrun: the videos are shared out, rank 0 reports
    model, _ = load_detector(args.checkpoint, pick_device(args.device))
    settings = _settings(load_inference_settings(args.checkpoint), args, cfg.eval)
    detections, fps = predict_dataset(model, dataset, settings=settings, bf16=args.bf16)
    if detections is None:
        return 0
    report = detection_report(dataset, detections)
    print(format_table({Path(args.checkpoint).name: {**report, "fps": fps}}))
    if args.json:
        atomic_write(args.json, lambda tmp: save_coco_results(tmp, dataset, detections))
        print(f"detections written to {args.json}")
    return 0


def _detection_records(detections, images: dict, config, score_thresh: float, scale: float, writer,
                       total=None) -> list[dict]:
    """One JSON record per frame (boxes over ``score_thresh``, divided by ``scale`` to the
    video's pixels), drawing each frame on ``writer``."""
    from tqdm import tqdm

    from stpn.data.video import draw_boxes

    records = []
    for t, det in tqdm(detections, total=total, desc="detect", unit="frame"):
        image = images.pop(t)
        keep = det["scores"] >= score_thresh
        boxes, scores, labels = det["boxes"][keep] / scale, det["scores"][keep], det["labels"][keep]
        names = [config.class_names[int(i) - 1] for i in labels]
        records.append({"frame": t, "boxes": boxes.tolist(), "scores": scores.tolist(), "labels": names})
        if writer:
            writer.write(draw_boxes(image, boxes.numpy(), names, scores.numpy()))
    return records


def run_detect(args: argparse.Namespace) -> int:
    from stpn.data.clips import frame_to_tensor
    from stpn.data.video import VideoReader, VideoWriter
    from stpn.detection.inference import detect_video
    from stpn.detection.run import frame_resizer, load_detector
    from stpn.detection.run_files import load_inference_settings
    from stpn.engine.device import pick_device
    from stpn.outputs import atomic_output, check_outputs, input_files, write_text_atomic

    check_outputs([("the input video", args.video), *input_files("--checkpoint", args.checkpoint)],
                  {"--out": args.out, "--json": args.json})
    model, config = load_detector(args.checkpoint, pick_device(args.device))
    settings = _settings(load_inference_settings(args.checkpoint), args)
    reader = VideoReader(args.video)
    resize, scale = frame_resizer(reader.height, reader.width, settings.test_size)
    images: dict[int, Any] = {}  # frames read but not yet drawn (bounded by the mode's look-ahead)

    def tensors():
        for i, image in enumerate(reader):
            images[i] = image
            yield resize(frame_to_tensor(image))

    # per-video prompts come from frames spread over the whole video: read it all first
    frames = list(tensors()) if settings.mode == "per-video" else tensors()
    start = time.perf_counter()
    with contextlib.ExitStack() as outputs:  # the video is moved into place only once complete
        writer = None
        if args.out:
            tmp = outputs.enter_context(atomic_output(args.out, keep_suffix=True))
            writer = outputs.enter_context(VideoWriter(tmp, reader.fps, (reader.width, reader.height)))
        detections = detect_video(model, frames, settings.mode, settings.num_support, settings.stride,
                                  settings.batch_size, bf16=args.bf16)
        records = _detection_records(detections, images, config, args.score_thresh, scale, writer,
                                     reader.frame_count or None)
    seconds = time.perf_counter() - start
    if args.out:
        print(f"annotated video written to {args.out}")
    if args.json:
        write_text_atomic(args.json, json.dumps({"video": str(args.video), "frames": records}))
        print(f"detections written to {args.json}")
    print(f"{len(records)} frames in {seconds:.1f} s: {len(records) / max(seconds, 1e-9):.2f} frames/s ({settings.mode} mode)")
    return 0


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """Flags overriding the test-time settings saved with the model (unset: the saved value)."""
    parser.add_argument("--mode", choices=MODES, default=None, help="support-frame mode (default: as saved with the model)")
    parser.add_argument("--num-support", type=int, default=None, help="K support frames")
    parser.add_argument("--stride", type=int, default=None, help="S frames between support frames")
    parser.add_argument("--test-size", type=int, default=None, help="short side to resize to (0: as read)")
    parser.add_argument("--batch-size", type=int, default=None, help="key frames run together")


def score_threshold(text: str) -> float:
    """``--score-thresh``: a number in [0, 1] (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value


def add_detection_commands(sub) -> None:
    train = sub.add_parser("train", help="train a video detector from a YAML config")
    train.add_argument("--config", required=True, help="configs/*.yaml")
    train.add_argument("--out", required=True, help="run directory (checkpoints, scalars, model)")
    train.add_argument("--resume", default=None, help="checkpoint file, run directory or 'auto'")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--pretrained", default=None, help="local timm Swin checkpoint for the backbone")
    train.add_argument("--max-iters", type=int, default=None, help="override the schedule length")
    train.add_argument("--device", default=None, help="override train.device (default: CUDA when available, else CPU)")
    ev = sub.add_parser("eval", help="COCO AP, motion-speed and deterioration splits of a trained detector")
    ev.add_argument("--config", required=True)
    ev.add_argument("--checkpoint", required=True, help="run directory or checkpoint file")
    add_settings_flags(ev)
    ev.add_argument("--json", default=None, help="write detections as COCO result JSON")
    add_device_flags(ev)
    det = sub.add_parser("detect", help="detect objects in a video file")
    det.add_argument("video", help="any file PyAV can decode")
    det.add_argument("--checkpoint", required=True, help="run directory or checkpoint file")
    add_settings_flags(det)
    det.add_argument("--score-thresh", type=score_threshold, default=0.5, help="in [0, 1] (default 0.5)")
    det.add_argument("--out", default=None, help="annotated mp4 to write")
    det.add_argument("--json", default=None, help="detections JSON to write")
    add_device_flags(det)


COMMANDS = {"train": run_train, "eval": run_eval, "detect": run_detect}


def run_detection_command(args: argparse.Namespace) -> int:
    from stpn.cli_errors import run_reporting_errors

    return run_reporting_errors(args.command, COMMANDS[args.command], args)

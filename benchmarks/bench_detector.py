"""Whole-detector cost of STPN: per-video STPN / per-frame Faster R-CNN throughput, one run.

Both detectors are the project's Faster R-CNN + FPN on Swin-T (random weights; speed does not
depend on them) and share every module: the per-frame baseline is the STPN detector's own
backbone, neck, RPN and RoI heads without the prompt predictor. Each video (random frames,
``--lengths`` frames long, ``--size`` square) goes through :func:`stpn.detection.inference.detect_video`:

* ``per-frame``: the baseline, one frame at a time;
* ``per-video``: STPN with prompts predicted once per video from ``K = 14`` frames spread over
  it (that support pass is part of the time).

Also printed: the prompted / plain backbone cost (``forward_features`` with and without 5
prompts, :mod:`benchmarks.bench_swin_prompts`).

Time is this process's CPU time on one thread (``--threads``), best of ``--repeats`` rounds,
configurations interleaved within each round. Per-frame cost is the same for every frame of a
video in both configurations, so by default only the first ``--timed-frames`` frames of each
video are timed and the video's time is ``first + (L - 1) × mean(rest)``, where ``first`` is the
time to the first detections (for STPN: the support pass and the first frame).
``--timed-frames 0`` times every frame (``--lengths 60 300 --timed-frames 0 --repeats 3``: the
full measurement, about 15 minutes per round on one core).

Run: ``python -m benchmarks.bench_detector [--lengths 60 300] [--timed-frames 8] [--size 224]``.
"""
from __future__ import annotations

import argparse
import itertools
import time
from typing import Optional, Sequence

import torch

from benchmarks.bench_swin_prompts import best_times, configurations
from stpn.detection.build import build_vid_detector
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.inference import detect_video

PER_VIDEO_SUPPORT = 14  # K of the released per-video test mode


def build_detectors(swin_kwargs: Optional[dict] = None) -> tuple[VideoFasterRCNN, VideoFasterRCNN]:
    """``(per-frame baseline, STPN)`` Swin-T detectors sharing backbone and heads (eval mode);
    ``swin_kwargs`` change the backbone (the tests' tiny models)."""
    torch.manual_seed(0)
    stpn = build_vid_detector(predictor="relation", swin_kwargs=swin_kwargs).eval()
    plain = VideoFasterRCNN(stpn.extractor.backbone, stpn.neck, stpn.rpn, stpn.roi_heads).eval()
    return plain, stpn


def time_video(model: VideoFasterRCNN, frames: torch.Tensor, timed: int) -> tuple[float, float]:
    """CPU seconds ``(to the first detections, per later frame)`` of per-video detection on
    ``frames (L, 3, H, W)``, timing the first ``timed`` frames (all when ``timed`` is 0)."""
    count = len(frames) if timed <= 0 else min(timed, len(frames))
    stream = detect_video(model, frames, mode="per-video", num_support=PER_VIDEO_SUPPORT, batch_size=1)
    start = time.process_time()
    next(stream)
    first = time.process_time() - start
    start = time.process_time()
    for _ in itertools.islice(stream, count - 1):
        pass
    rest = (time.process_time() - start) / max(count - 1, 1)
    return first, rest


def video_seconds(first: float, rest: float, length: int) -> float:
    return first + (length - 1) * rest


def detector_ratios(lengths: Sequence[int], size: int, timed: int, repeats: int,
                    swin_kwargs: Optional[dict] = None) -> dict[int, dict[str, float]]:
    """Seconds per video (``per-frame`` / ``per-video``) and their throughput ratio per length."""
    plain, stpn = build_detectors(swin_kwargs)
    gen = torch.Generator().manual_seed(1)
    videos = {n: torch.rand(n, 3, size, size, generator=gen) for n in lengths}
    models = {"per-frame": plain, "per-video": stpn}
    for model in models.values():  # warm-up
        time_video(model, videos[min(lengths)], 2)
    best = {(n, name): (float("inf"), float("inf")) for n in lengths for name in models}
    for _ in range(repeats):
        for n in lengths:
            for name, model in models.items():
                first, rest = time_video(model, videos[n], timed)
                old = best[n, name]
                best[n, name] = (min(old[0], first), min(old[1], rest))
    out = {}
    for n in lengths:
        seconds = {name: video_seconds(*best[n, name], n) for name in models}
        out[n] = {**seconds, "ratio": seconds["per-frame"] / seconds["per-video"]}
    return out


def backbone_ratio(size: int, repeats: int) -> float:
    """Prompted (5 shallow prompts) / plain Swin-T ``forward_features`` CPU time."""
    plain, _ = build_detectors()
    images = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    runs = configurations(plain.extractor, images, 5)
    times = best_times({name: runs[name] for name in ("plain", "shallow")}, repeats)
    return times["shallow"] / times["plain"]


def main(argv: Optional[Sequence[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[60, 300], help="video lengths (frames)")
    parser.add_argument("--timed-frames", type=int, default=8, help="frames timed per video; 0: all")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--backbone-repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's default")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if min(args.lengths) < 1:
        raise SystemExit("bench_detector: --lengths must be positive")
    with torch.no_grad():
        results = detector_ratios(args.lengths, args.size, args.timed_frames, args.repeats)
    timed = "all" if args.timed_frames <= 0 else f"first {args.timed_frames}"
    print(f"Faster R-CNN + FPN, Swin-T {args.size}x{args.size}, {torch.get_num_threads()} threads, "
          f"best of {args.repeats}, {timed} frames of each video timed")
    ratios = {}
    for n, r in results.items():
        print(f"  {n:4d} frames: per-frame {n / r['per-frame']:6.2f} frames/s, "
              f"per-video STPN (K={PER_VIDEO_SUPPORT}) {n / r['per-video']:6.2f} frames/s, "
              f"STPN / baseline throughput {r['ratio']:.3f}  (target >= 0.95 at 300)")
        ratios[f"detector_{n}"] = r["ratio"]
    ratios["backbone_cost"] = backbone_ratio(args.size, args.backbone_repeats)
    print(f"prompted / plain backbone cost (5 prompts): {ratios['backbone_cost']:.3f}  (target <= 1.06)")
    return ratios


if __name__ == "__main__":
    main()

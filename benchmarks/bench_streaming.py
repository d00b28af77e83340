"""STPN inference cost against the plain backbone, measured in one run on the same input.

Prints, for Swin-T (random weights; speed does not depend on them) on a clip of random frames:

* per-video STPN throughput / plain backbone throughput (prompts predicted once per video from
  ``K = 14`` frames spread over it, the one-time support pass included);
* sliding-window STPN cost / plain cost (``K = 6``, cached support embeddings);
* cached / naive speed-up in sliding mode at ``K = 6`` (naive = recompute the ``K`` support
  embeddings for every frame);
* the peak resident memory each configuration adds, measured in a fresh process per
  configuration (``ru_maxrss`` after minus before the run).

Run: ``python -m benchmarks.bench_streaming [--frames 300] [--size 224] [--naive-frames 60]``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import torch

from stpn.backbones.swin import build_swin
from stpn.prompts.build import build_predictor
from stpn.prompts.streaming import StreamingExtractor, extract_naive
from stpn.prompts.stpn import STPN


def _build(size: int) -> STPN:
    torch.manual_seed(0)
    backbone = build_swin("swin_tiny_patch4_window7_224", img_size=size)
    predictor = build_predictor("relation", support_dim=backbone.support_dim,
                                prompt_dim=backbone.prompt_dims[0], num_prompts=5)
    return STPN(backbone, predictor).eval()


def _frames(n: int, size: int) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(1))


def _run(config: str, model: STPN, frames: torch.Tensor, batch: int) -> None:
    if config == "plain":
        with torch.no_grad():
            for s in range(0, len(frames), batch):
                model.backbone.forward_features(frames[s:s + batch])
    elif config == "naive":
        extract_naive(model, frames, "sliding", num_support=6, stride=8)
    else:
        mode, k = {"per-video": ("per-video", 14), "sliding": ("sliding", 6)}[config]
        for _ in StreamingExtractor(model, mode, num_support=k, stride=8, batch_size=batch).run(frames):
            pass


def measure(config: str, frames: int, size: int, batch: int) -> tuple[float, float]:
    """(seconds per frame, added peak RSS in MiB) of one configuration, in this process."""
    model = _build(size)
    clip = _frames(frames, size)
    _run(config, model, clip[:2], batch)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    _run(config, model, clip, batch)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return seconds / frames, (after - before) / 1024


def _measure_args(args: tuple) -> tuple[float, float]:
    return measure(*args)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--frames", type=int, default=300, help="video length for plain/per-video/sliding")
    p.add_argument("--naive-frames", type=int, default=60, help="video length for the naive run")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=1)
    args = p.parse_args(argv)
    jobs = {
        "plain": (args.frames, args.batch),
        "per-video": (args.frames, args.batch),
        "sliding": (args.frames, args.batch),
        "sliding-short": (args.naive_frames, args.batch),
        "naive": (args.naive_frames, 1),
    }
    ctx = mp.get_context("spawn")
    results = {}
    for name, (n, b) in jobs.items():  # one fresh process each: clean peak-memory readings
        with ctx.Pool(1) as pool:
            results[name] = pool.apply(_measure_args, ((name.replace("-short", ""), n, args.size, b),))
        print(f"  {name:14s} {1 / results[name][0]:7.2f} frames/s  peak +{results[name][1]:7.1f} MiB", flush=True)
    plain = results["plain"][0]
    print(f"\nSwin-T {args.size}x{args.size}, {args.frames}-frame clip, batch {args.batch}, "
          f"{torch.get_num_threads()} threads")
    print(f"per-video STPN / plain throughput (K=14): {plain / results['per-video'][0]:.3f}  (target >= 0.97)")
    print(f"sliding STPN / plain cost (K=6, S=8):     {results['sliding'][0] / plain:.3f}  (target <= 2.1)")
    print(f"cached / naive speed-up (K=6, {args.naive_frames} frames): "
          f"{results['naive'][0] / results['sliding-short'][0]:.2f}x  (target >= 3.5)")


if __name__ == "__main__":
    main()

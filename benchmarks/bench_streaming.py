"""STPN inference cost against the plain backbone, measured in one run on the same input.

Prints, for Swin-T (random weights; speed does not depend on them) on a clip of random frames:

* per-video STPN throughput / plain backbone throughput (prompts predicted once per video from
  ``K = 14`` frames spread over it; that one-time support pass is included);
* sliding-window STPN cost / plain cost (``K = 6``, ``S = 8``, cached support embeddings);
* cached / naive speed-up in sliding mode at ``K = 6`` (naive = the ``K`` support embeddings
  recomputed for every frame);
* the peak resident memory each configuration adds, in a fresh process per configuration.

Timings are the best of ``--repeats`` rounds, the configurations interleaved within each round
so that a busy machine slows all of them alike.

Run: ``python -m benchmarks.bench_streaming [--frames 120] [--naive-frames 24] [--size 224]``.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import threading
import time

import torch

from stpn.backbones.swin import build_swin
from stpn.prompts.build import build_predictor
from stpn.prompts.streaming import StreamingExtractor, extract_naive
from stpn.prompts.stpn import STPN

CONFIGS = ("plain", "per-video", "sliding", "naive")


def build_model(size: int) -> STPN:
    torch.manual_seed(0)
    backbone = build_swin("swin_tiny_patch4_window7_224", img_size=size)
    predictor = build_predictor("relation", support_dim=backbone.support_dim,
                                prompt_dim=backbone.prompt_dims[0], num_prompts=5)
    return STPN(backbone, predictor).eval()


def run_config(config: str, model: STPN, frames: torch.Tensor, batch: int) -> None:
    if config == "plain":
        with torch.no_grad():
            for s in range(0, len(frames), batch):
                model.backbone.forward_features(frames[s:s + batch])
    elif config == "naive":
        extract_naive(model, frames, "sliding", num_support=6, stride=8)
    else:
        k = 14 if config == "per-video" else 6
        for _ in StreamingExtractor(model, config, num_support=k, stride=8, batch_size=batch).run(frames):
            pass


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def peak_memory_mib(config: str, frames: int, size: int, batch: int) -> float:
    """Peak resident memory the configuration adds over the process before it runs (RSS
    sampled every 2 ms in a thread; ``ru_maxrss`` cannot tell, model building peaks higher)."""
    model = build_model(size)
    clip = torch.rand(frames, 3, size, size)
    run_config(config, model, clip[:2], batch)  # warm-up allocations are not the config's
    baseline, peak, done = _rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.002)

    thread = threading.Thread(target=sample)
    thread.start()
    run_config(config, model, clip, batch)
    done.set()
    thread.join()
    return max(peak[0] - baseline, 0) / 2**20


def _memory_job(args: tuple) -> float:
    return peak_memory_mib(*args)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description="STPN streaming inference vs the plain backbone")
    p.add_argument("--frames", type=int, default=120, help="video length (plain, per-video, sliding)")
    p.add_argument("--naive-frames", type=int, default=24, help="video length of the naive-vs-cached pair")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    model = build_model(args.size)
    clip = torch.rand(args.frames, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    short = clip[: args.naive_frames]
    jobs = {"plain": clip, "per-video": clip, "sliding": clip, "sliding-short": short, "naive": short}
    run_config("per-video", model, clip[:4], args.batch)  # warm-up
    best = {name: float("inf") for name in jobs}
    for _ in range(args.repeats):
        for name, frames in jobs.items():
            start = time.perf_counter()
            run_config(name.replace("-short", ""), model, frames, args.batch)
            best[name] = min(best[name], (time.perf_counter() - start) / len(frames))
    ctx = mp.get_context("spawn")
    print(f"Swin-T {args.size}x{args.size}, batch {args.batch}, {torch.get_num_threads()} threads, best of {args.repeats}")
    for name in CONFIGS:
        with ctx.Pool(1) as pool:  # fresh process: a clean peak-memory reading
            mem = pool.apply(_memory_job, ((name, min(args.frames, 40), args.size, args.batch),))
        print(f"  {name:10s} {1 / best[name]:7.2f} frames/s   peak memory +{mem:6.0f} MiB")
    ratios = {
        "per_video_throughput": best["plain"] / best["per-video"],
        "sliding_cost": best["sliding"] / best["plain"],
        "cached_speedup": best["naive"] / best["sliding-short"],
    }
    print(f"per-video STPN / plain throughput ({args.frames} frames, K=14): {ratios['per_video_throughput']:.3f}  (target >= 0.97)")
    print(f"sliding STPN / plain cost (K=6, S=8):                  {ratios['sliding_cost']:.3f}  (target <= 2.1)")
    print(f"cached / naive speed-up (K=6, {args.naive_frames} frames):              {ratios['cached_speedup']:.2f}x  (target >= 3.5)")
    return ratios


if __name__ == "__main__":
    main()

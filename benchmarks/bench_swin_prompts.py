"""What prompts cost in Swin: prompted / plain ``forward_features`` time, one run, same input.

Swin-T (random weights; speed does not depend on them) on a random ``--size`` image batch,
``--prompts`` prompts. Configurations, timed in interleaved rounds, best of ``--repeats``:

* ``plain``: no prompts (timm's own blocks);
* ``shallow``: STPN prompts before the first block (the paper's default);
* ``deep``: one prompt set per block;
* ``naive``: the prompts materialised in every window inside timm's own block code, as the
  released implementation does (the test suite's reference; skipped when ``tests`` is not
  importable); its output is also compared with ``shallow`` (they must agree).

Time is this process's CPU time (``time.process_time``) on one thread by default: other load on a
shared machine stretches wall time but hardly CPU time, so the ratios hold to a few per cent
(``--threads 0`` keeps torch's thread count; CPU time then adds up over the threads).

Run: ``python -m benchmarks.bench_swin_prompts [--size 224] [--batch 1] [--prompts 5]``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Optional, Sequence

import torch

from stpn.backbones.swin import build_swin


def configurations(model, images: torch.Tensor, num_prompts: int) -> dict[str, Callable[[], object]]:
    """One no-argument forward per configuration, on the same ``images (B, 3, H, W)``."""
    b = images.shape[0]
    shallow = torch.randn(b, num_prompts, model.prompt_dims[0])
    deep = [torch.randn(b, num_prompts, d) for d in model.prompt_dims]
    runs = {
        "plain": lambda: model.forward_features(images),
        "shallow": lambda: model.forward_features(images, shallow),
        "deep": lambda: model.forward_features(images, deep),
    }
    try:
        from tests.test_backbone_swin import reference_forward
    except ImportError as exc:
        print(f"(naive reference not available: {exc})")
    else:
        runs["naive"] = lambda: reference_forward(model, images, shallow)
    return runs


def best_times(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best CPU time (s) per configuration over ``repeats`` interleaved rounds (one warm-up)."""
    best = {name: float("inf") for name in runs}
    with torch.no_grad():
        for run in runs.values():
            run()
        for _ in range(repeats):
            for name, run in runs.items():
                start = time.process_time()
                run()
                best[name] = min(best[name], time.process_time() - start)
    return best


def main(argv: Optional[Sequence[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--prompts", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0: torch's default")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_swin("swin_tiny_patch4_window7_224").eval()
    images = torch.randn(args.batch, 3, args.size, args.size)
    runs = configurations(model, images, args.prompts)
    times = best_times(runs, args.repeats)
    print(f"Swin-T, {args.batch}x3x{args.size}x{args.size}, {args.prompts} prompts, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}")
    ratios = {name: t / times["plain"] for name, t in times.items()}
    for name, t in times.items():
        print(f"  {name:8s} {t * 1e3:8.1f} ms   {ratios[name]:.3f}x plain")
    if "naive" in runs:
        with torch.no_grad():
            gap = max((a - b).abs().max().item() for a, b in zip(runs["shallow"](), runs["naive"]()))
        print(f"  shallow vs naive outputs: max abs difference {gap:.1e}")
    return ratios


if __name__ == "__main__":
    main()

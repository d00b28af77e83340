"""Cost of one training step of the demo's two detectors, fp32 against bf16 autocast, one run.

The detectors, batch size, support frames and optimiser are ``stpn demo``'s
(:func:`stpn.demo.run.demo_detector_config`, :func:`stpn.demo.run.demo_train_config`), from
random weights, on ``--videos`` benchmark videos of the demo's training set. Every configuration
trains on the same batches (drawn once); the time is this process's CPU time for ``--steps``
steps, best of ``--repeats`` rounds, configurations interleaved within each round (one warm-up
step each first). Printed: seconds per step and bf16 / fp32 per detector, STPN / per-frame per
precision.

Run: ``python -m benchmarks.bench_demo_step [--steps 10] [--repeats 3] [--threads 1]``.
"""
from __future__ import annotations

import argparse
import itertools
import time
from typing import Optional, Sequence

import torch

from stpn.data import synthetic
from stpn.data.types import VideoDataset
from stpn.demo.run import MODELS, DemoSettings, demo_detector_config, demo_train_config, support_per_side
from stpn.detection.config import build_from_config
from stpn.detection.run import training_loader
from stpn.engine import build_optimizer
from stpn.engine.step import train_step


def step_runner(name: str, amp: Optional[str], batches: list, settings: DemoSettings):
    """A function that runs one training step of detector ``name`` on the next batch."""
    torch.manual_seed(0)
    config = demo_detector_config(list(synthetic.CATEGORIES), MODELS[name], settings.size)
    model = build_from_config(config).train()
    optimizer = build_optimizer(model, demo_train_config(settings, 0, model.backbone_prefix))
    cycle = itertools.cycle(batches)
    return lambda: train_step(model, next(cycle), optimizer, None, iteration=0, amp=amp)


def main(argv: Optional[Sequence[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per configuration and round")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--videos", type=int, default=16, help="training videos the batches come from")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    for name in ("steps", "repeats", "videos", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    torch.set_num_threads(args.threads)
    settings = DemoSettings()
    videos = [synthetic.generate_video(i, settings.train_frames, settings.size, 1, settings.severity,
                                       settings.single_class) for i in range(args.videos)]
    dataset, train_config = VideoDataset(list(synthetic.CATEGORIES), videos), demo_train_config(settings, 0, "")
    batches = {name: list(itertools.islice(iter(training_loader(
        dataset, train_config, support_per_side=support_per_side(settings, predictor))), args.steps))
        for name, predictor in MODELS.items()}
    runs = {(name, amp): step_runner(name, amp, batches[name], settings)
            for name in MODELS for amp in (None, "bf16")}
    best = {key: float("inf") for key in runs}
    for run in runs.values():
        run()
    for _ in range(args.repeats):
        for key, run in runs.items():
            start = time.process_time()
            for _ in range(args.steps):
                run()
            best[key] = min(best[key], (time.process_time() - start) / args.steps)
    print(f"CPU time per training step ({args.threads} thread(s), batch {settings.batch_size}, "
          f"STPN with {settings.train_support} support frames; best of {args.repeats} x {args.steps} steps):")
    for (name, amp), seconds in best.items():
        print(f"  {name:>9} {amp or 'fp32':>4}: {seconds:.3f} s")
    for name in MODELS:
        print(f"  {name}: bf16 / fp32 = {best[(name, 'bf16')] / best[(name, None)]:.2f}")
    for amp in (None, "bf16"):
        print(f"  {amp or 'fp32'}: STPN / per-frame = {best[('STPN', amp)] / best[('per-frame', amp)]:.2f}")
    return {f"{name} {amp or 'fp32'}": s for (name, amp), s in best.items()}


if __name__ == "__main__":
    main()

"""Cost of real-size VSS data: one Cityscapes training sample and one RAFT flow pair, on the CPU.

Writes a fake 30-frame Cityscapes snippet at 2048 × 1024 (a horizontal ramp plus noise, PNG
with fast compression) under ``--root`` unless it exists, then times
``RecordedClips(clip_length=8, crop=768)[0]`` (scale 0.5–2.0 + flip; median of ``--repeats``)
and prints the process's peak RSS, then one ``raft_small`` flow (randomly initialised, saved to
``--root``; 12 iterations) between two frames resized to ``--flow-size``.

    OMP_NUM_THREADS=1 python benchmarks/vss_recorded_speed.py --root /tmp/vss_fullsize_cs
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stpn.data.formats.cityscapes import read_cityscapes
from stpn.vss.raft_flow import RaftFlow
from stpn.vss.recorded_data import RecordedClips


def write_snippet(root: Path, width: int = 2048, height: int = 1024) -> None:
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None].repeat(height, 0).repeat(3, 2)
    folder = root / "leftImg8bit_sequence/train/aachen"
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(30):
        image = (ramp + rng.normal(0, 8, ramp.shape)).clip(0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"aachen_000000_{k:06d}_leftImg8bit.png", compress_level=1)
    labels = np.full((height, width), 7, np.uint8)
    labels[height // 2:] = 26
    (root / "gtFine/train/aachen").mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels).save(root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--flow-size", type=int, nargs=2, default=(1024, 512), metavar=("W", "H"))
    args = parser.parse_args()
    if not (args.root / "gtFine").is_dir():
        write_snippet(args.root)
    sequences = read_cityscapes(args.root)
    clips = RecordedClips(sequences, clip_length=8, crop=768, scale=(0.5, 2.0))
    torch.manual_seed(0)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        clip, _ = clips[0]
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sample {tuple(clip.shape)}: median {sorted(times)[len(times) // 2]:.2f} s, peak RSS {peak:.0f} MB")
    from torchvision.models.optical_flow import raft_small

    weights = args.root / "raft_small_random.pth"
    torch.save(raft_small(weights=None, progress=False).state_dict(), weights)
    flow_fn = RaftFlow(weights, "raft_small")
    size = tuple(args.flow_size)
    first, second = (np.asarray(Image.open(sequences[0].frames[k]).resize(size)) for k in (0, 1))
    start = time.perf_counter()
    flow = flow_fn(first, second)
    seconds = time.perf_counter() - start
    print(f"raft_small, 12 iterations, {size[0]}x{size[1]}: {seconds:.2f} s, flow {tuple(flow.shape)}")


if __name__ == "__main__":
    main()

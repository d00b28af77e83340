"""Is the synthetic benchmark's severity calibrated? A per-frame classifier should know the class
of an object on clean frames and lose it on degraded ones.

A small CNN is trained on grey-level object crops from the clean frames of one set of videos
(every 4th frame of 160 videos: many different objects rather than many views of few) and
tested on all frames of another set (other seed) at several severities. It prints, per severity, the accuracy on clean
crops, on degraded crops (any deterioration on the object), per deterioration kind, and on the
clean crops of the same objects within ±8 frames of a degraded one (what STPN's support frames
would show). Chance is 1 / 6. It also times the generation of the default set (100 videos of
32 frames at 256 × 256).

Run: ``python -m benchmarks.check_synthetic_calibration [--train-videos 160] [--test-videos 40]
[--severities 0.5 1.0 1.5] [--epochs 20] [--single-class]`` (``--single-class``: the demo's videos); takes 1–6 minutes on 2 CPU cores, depending on what else runs.
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

import numpy as np
import torch
from PIL import Image
from torch import nn

from stpn.data import synthetic
from stpn.data.types import VideoDataset

CROP = 32  # crop side fed to the classifier
NEIGHBOURHOOD = 8  # STPN's default support stride


def crops(dataset: VideoDataset) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]], np.ndarray]:
    """Square crops (N, CROP, CROP, 3) uint8 around every object (1.2× its box), labels (N,), the
    deteriorations on each and whether a clean crop has a degraded frame of its track within
    ±``NEIGHBOURHOOD`` frames (N,) bool."""
    images, labels, hits, near = [], [], [], []
    for video in dataset.videos:
        degraded_at = defaultdict(set)
        for t, annotation in enumerate(video.annotations):
            for inst in annotation.instances:
                if inst.deteriorations:
                    degraded_at[inst.track_id].add(t)
        for t, (frame, annotation) in enumerate(zip(video.frames, video.annotations)):
            image = Image.fromarray(frame)
            for inst in annotation.instances:
                x1, y1, x2, y2 = inst.box.tolist()
                half = 0.6 * max(x2 - x1, y2 - y1)
                cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                box = tuple(round(c) for c in (cx - half, cy - half, cx + half, cy + half))  # black outside
                images.append(np.asarray(image.crop(box).resize((CROP, CROP), Image.BILINEAR)))
                labels.append(inst.category_id)
                hits.append(inst.deteriorations)
                near.append(any(abs(u - t) <= NEIGHBOURHOOD for u in degraded_at[inst.track_id]))
    return np.stack(images), np.array(labels), hits, np.array(near)


def build_classifier(num_classes: int) -> nn.Module:
    def block(cin: int, cout: int) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(block(1, 32), block(32, 64), block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(128, num_classes))


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 → (N, 1, H, W) grey levels standardised per crop. Colours are random per
    object, so they carry no class information; dropping them (and standardising away brightness
    and contrast) keeps the small classifier from memorising the training objects' colours."""
    grey = torch.from_numpy(images).float() @ torch.tensor([0.299, 0.587, 0.114])
    x = grey[:, None]
    mean, std = x.mean(dim=(1, 2, 3), keepdim=True), x.std(dim=(1, 2, 3), keepdim=True)
    return (x - mean) / (std + 1.0)


def train(images: np.ndarray, labels: np.ndarray, num_classes: int, epochs: int, seed: int = 0) -> nn.Module:
    """Adam with a one-cycle schedule, batch 64; random flips, quarter turns and grey-level
    inversion (which of an object's two colours is the darker is random, and the classes do not
    depend on the others either)."""
    torch.manual_seed(seed)
    model = build_classifier(num_classes)
    x, y = to_tensor(images), torch.from_numpy(labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=epochs * -(-len(x) // 64))
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(x)).split(64):
            xb = x[batch]
            if torch.rand(()) < 0.5:
                xb = xb.flip(-1)
            xb = torch.rot90(xb, int(torch.randint(4, ())), (-2, -1))
            xb = xb * (torch.randint(2, (len(xb), 1, 1, 1)) * 2 - 1)
            loss = nn.functional.cross_entropy(model(xb), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray) -> np.ndarray:
    x = to_tensor(images)
    return torch.cat([model(chunk).argmax(1) for chunk in x.split(512)]).numpy()


def evaluate(model: nn.Module, dataset: VideoDataset) -> dict[str, tuple[float, int]]:
    """Accuracy and crop count: ``clean``, ``degraded``, ``clean near degraded`` and per kind."""
    images, labels, hits, near = crops(dataset)
    correct = predict(model, images) == labels
    degraded = np.array([bool(h) for h in hits])
    groups = {"clean": ~degraded, "clean near degraded": ~degraded & near, "degraded": degraded}
    for kind in sorted({k for h in hits for k in h}):
        groups[kind] = np.array([kind in h for h in hits])
    return {name: (float(correct[m].mean()) if m.any() else float("nan"), int(m.sum())) for name, m in groups.items()}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description="per-frame classifier accuracy on clean vs degraded synthetic frames")
    p.add_argument("--train-videos", type=int, default=160)
    p.add_argument("--frame-step", type=int, default=4, help="use every n-th frame of the training videos")
    p.add_argument("--test-videos", type=int, default=40)
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--severities", type=float, nargs="+", default=[0.5, synthetic.SEVERITY_DEFAULT, 1.5])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--timing-videos", type=int, default=100, help="videos in the generation timing (0: skip)")
    p.add_argument("--single-class", action="store_true", help="one class per video (the demo's videos)")
    args = p.parse_args(argv)
    torch.set_num_threads(2)
    results: dict = {}
    if args.timing_videos:
        start = time.perf_counter()
        synthetic.generate_dataset(args.timing_videos, args.frames, args.size, seed=0)
        results["generation_seconds"] = time.perf_counter() - start
        print(f"generated {args.timing_videos} videos x {args.frames} frames at {args.size}x{args.size} "
              f"in {results['generation_seconds']:.1f} s")
    train_videos = []
    for video in synthetic.iter_videos(args.train_videos, args.frames, args.size, seed=100,
                                       single_class=args.single_class):
        video.frames, video.annotations = video.frames[::args.frame_step], video.annotations[::args.frame_step]
        train_videos.append(video)
    train_set = VideoDataset(list(synthetic.CATEGORIES), train_videos)
    images, labels, hits, _ = crops(train_set)
    clean = np.array([not h for h in hits])
    start = time.perf_counter()
    model = train(images[clean], labels[clean], len(synthetic.CATEGORIES), args.epochs)
    print(f"trained on {int(clean.sum())} clean crops of {args.train_videos} videos "
          f"in {time.perf_counter() - start:.1f} s; chance = {1 / len(synthetic.CATEGORIES):.3f}")
    for severity in args.severities:
        test_set = synthetic.generate_dataset(args.test_videos, args.frames, args.size, seed=200, severity=severity,
                                              single_class=args.single_class)
        report = evaluate(model, test_set)
        results[f"severity_{severity:g}"] = report
        print(f"severity {severity:g} ({args.test_videos} test videos):")
        for name, (accuracy, count) in report.items():
            print(f"  {name:22s} accuracy {accuracy:6.3f}   ({count} crops)")
    return results


if __name__ == "__main__":
    main()

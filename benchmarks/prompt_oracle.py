"""Can the demo's detector read its prompts at all? STPN with an oracle for support frames.

The demo's STPN detector is trained as ``stpn demo`` trains it, except that every clip's support
frames are replaced by a flat frame whose colour names the class of the video's objects (the
built-in demo videos have one class each): the predictor then sees exactly the information real
support frames would have to provide, in a form the backbone's embedding keeps apart. The trained
detector is evaluated on the validation videos with the flat frame of the right class and with
the flat frame of a wrong class (the next class). If the two give the same AP, the detector
ignores its prompts whatever they say; if the wrong class wrecks the AP, it reads them.

This is a diagnostic of the prompt path (predictor → prompted backbone → heads), not a result of
STPN: the oracle carries label information that real support frames only show. What it measured
(data seed 7, the tuning split; one seed each) is in ``docs/demo.md``.

Run: ``python -m benchmarks.prompt_oracle [--backbone-lr 1.0 0.1] [--data-seed 7] [--iters 600]``
(about 8 minutes per setting on two CPU cores; the demo's pre-training is cached under ``--out``).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from stpn.data import synthetic
from stpn.data.normalisation import normalise
from stpn.data.types import VideoDataset
from stpn.demo.run import DemoSettings, data_seeds, demo_detector_config, demo_train_config, pretrained_backbone
from stpn.detection.clip_batch import ClipBatch
from stpn.detection.config import build_from_config
from stpn.detection.detector import VideoFasterRCNN
from stpn.detection.inference import detect_video
from stpn.detection.run import train_detector, video_tensors
from stpn.metrics.coco_detection import detection_report

# one flat colour per class (RGB in [0, 1]); classes beyond these reuse them cyclically
CLASS_COLOURS = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 1.0))
NO_CLASS = (0.5, 0.5, 0.5)  # a key frame with no object


def class_frames(category: int | None, count: int, height: int, width: int) -> Tensor:
    """``count`` flat frames ``(count, 3, height, width)`` in [0, 1] naming ``category``
    (0-based; ``None``: no object)."""
    colour = NO_CLASS if category is None else CLASS_COLOURS[category % len(CLASS_COLOURS)]
    return torch.tensor(colour)[None, :, None, None].expand(count, 3, height, width).clone()


class OracleSupport(nn.Module):
    """Training wrapper: replaces each clip's support frames ``(B, K, 3, H, W)`` by flat frames
    naming the class of its key frame's first target (labels are 1-based), normalised as the
    clip batch normalises frames, then runs the detector."""

    def __init__(self, detector: VideoFasterRCNN) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, batch: ClipBatch, targets: list[dict[str, Tensor]]):
        k, _, h, w = batch.support.shape[1:]
        support = torch.stack([
            normalise(class_frames(int(t["labels"][0]) - 1 if len(t["labels"]) else None, k, h, w))
            for t in targets]).to(batch.support)
        return self.detector(dataclasses.replace(batch, support=support), targets)


def video_class(video) -> int:
    """The class of a single-class video's objects (0-based)."""
    return next(inst.category_id for a in video.annotations for inst in a.instances)


@torch.no_grad()
def evaluate(model: VideoFasterRCNN, dataset: VideoDataset, shift: int, num_support: int = 14) -> dict:
    """COCO report of per-video STPN whose prompts come from flat frames naming class
    ``(true class + shift) mod C`` (``shift=0``: the right class)."""
    model.eval()
    detections = []
    classes = len(dataset.categories)
    for v, video in enumerate(dataset.videos):
        frames, scale = video_tensors(video)
        flat = list(class_frames((video_class(video) + shift) % classes, len(frames), *frames[0].shape[-2:]))
        for t, det in detect_video(model, frames, "per-video", num_support, prompt_frames=flat):
            det["boxes"] = det["boxes"] / scale
            detections.append({"video_index": v, "frame_index": t, **det})
    return detection_report(dataset, detections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backbone-lr", type=float, nargs="+", default=[1.0, 0.1],
                        help="backbone learning-rate multipliers to compare")
    parser.add_argument("--data-seed", type=int, default=7, help="7: the demo's tuning split")
    parser.add_argument("--iters", type=int, default=DemoSettings.iters)
    parser.add_argument("--out", default="runs/prompt_oracle")
    args = parser.parse_args()
    settings = DemoSettings(out_dir=args.out, data_seed=args.data_seed, iters=args.iters, progress=False)
    seeds = data_seeds(args.data_seed)
    classes = list(synthetic.CATEGORIES)
    train_set = synthetic.generate_dataset(settings.train_videos, settings.train_frames, settings.size,
                                           seed=seeds["train"], single_class=True)
    val_set = synthetic.generate_dataset(settings.val_videos, settings.frames, settings.size, seed=seeds["val"],
                                         single_class=True)
    weights, _ = pretrained_backbone(settings, classes, None, torch.get_num_threads())
    for multiplier in args.backbone_lr:
        torch.manual_seed(0)
        config = demo_detector_config(classes, "relation", settings.size)
        model = build_from_config(config, weights=str(weights))
        train_config = demo_train_config(settings, 0, model.backbone_prefix, multiplier)
        start = time.perf_counter()
        train_detector(OracleSupport(model), config, train_set, train_config,
                       Path(args.out) / f"backbone_lr_{multiplier:g}")
        right, wrong = evaluate(model, val_set, 0), evaluate(model, val_set, 1)
        print(f"backbone lr x{multiplier:g} ({time.perf_counter() - start:.0f} s): "
              + "; ".join(f"{name} class: AP50 {100 * r['AP50']:.1f}, degraded {100 * r['AP50_degraded']:.1f}, "
                          f"clean {100 * r['AP50_clean']:.1f}" for name, r in (("right", right), ("wrong", wrong))),
              flush=True)


if __name__ == "__main__":
    main()

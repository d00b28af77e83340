"""Tiny files and run directories for the reliability tests (issue 14) and the bad-input sweep:
a clip, a detector and a tracker run directory (untrained, exported), datasets, bad checkpoints."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import torch
import yaml

from stpn.data.formats import write_dataset
from stpn.data.formats.got10k import write_got10k
from stpn.data.synthetic import CATEGORIES, iter_videos
from stpn.data.video import VideoWriter, read_video, shipped_clip_path

SWIN = dict(embed_dim=16, depths=[1, 1, 2, 1], num_heads=[1, 2, 2, 4], window_size=4, img_size=64)
HEADS = dict(anchor_sizes=[8, 16, 32, 64, 128], representation_size=32, rpn_batch_size_per_image=16,
             box_batch_size_per_image=16, rpn_pre_nms_top_n=[50, 50], rpn_post_nms_top_n=[20, 20])
DETECTOR = {"class_names": list(CATEGORIES), "predictor": "relation", "fpn_channels": 16,
            "swin_kwargs": SWIN, "head_kwargs": HEADS}
TRACKER = dict(variant="tiny", stpn=True, template_size=32, search_size=64)


def write_clip(path: Path, frames: int = 4, size=(64, 48)) -> Path:
    """A short real clip (the shipped bikes clip, resized)."""
    with VideoWriter(path, 10, size) as writer:
        for frame in read_video(shipped_clip_path("bikes.mp4"), max_frames=frames, resize=size):
            writer.write(frame)
    return path


def detector_run(path: Path) -> Path:
    """An untrained tiny detector run directory (``detector.json`` + ``model.safetensors``)."""
    from stpn.detection.config import DetectorConfig, build_from_config
    from stpn.engine import export_safetensors

    torch.manual_seed(0)
    path.mkdir(parents=True, exist_ok=True)
    config = DetectorConfig.from_dict(DETECTOR)
    (path / "detector.json").write_text(json.dumps(config.to_dict()))
    export_safetensors(build_from_config(config), path / "model.safetensors")
    return path


def tracker_run(path: Path) -> Path:
    """An untrained tiny tracker run directory (``tracker.json`` + ``model.safetensors``)."""
    from stpn.tracking.build import build_mixformer
    from stpn.tracking.checkpoint import save_tracker

    torch.manual_seed(0)
    return save_tracker(path, build_mixformer(**TRACKER), TRACKER, {"num_support": 2, "support_stride": 3})


def cocovid_data(root: Path, videos: int = 2) -> Path:
    """A tiny CocoVID dataset with ``train`` and ``val`` splits (64 px frames)."""
    write_dataset(iter_videos(videos, num_frames=6, size=64, seed=0), CATEGORIES, root, "cocovid", "train")
    write_dataset(iter_videos(1, num_frames=6, size=64, seed=1), CATEGORIES, root, "cocovid", "val")
    return root


def detector_config(path: Path, root: Path, **train) -> Path:
    """A ``stpn train`` / ``stpn eval`` config for the tiny detector on ``root``."""
    config = {
        "detector": DETECTOR,
        "train": {"lr": 1e-4, "max_iters": 2, "batch_size": 2, "progress": False, "log_every": 1, **train},
        "data": {"root": str(root), "format": "cocovid", "train_splits": ["train"], "val_splits": ["val"],
                 "train_sizes": [64], "max_size": 64},
        "eval": {"mode": "per-video", "num_support": 3},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def got10k_data(root: Path, split: str = "train") -> Path:
    """A tiny GOT-10k split of two square sequences."""
    from tests.tracking_fake import square_video

    write_got10k([square_video("a"), square_video("b", 10)], ["square"], root, split)
    return root


def track_config(path: Path, root: Path, **online) -> Path:
    """A ``stpn train-track`` config for a tiny STPN tracker on ``root`` (two steps per stage)."""
    stage = {"lr": 1e-4, "max_iters": 2, "batch_size": 2, "progress": False, "log_every": 1}
    config = {
        "model": dict(TRACKER), "data": {"root": str(root), "split": "train", "samples_per_epoch": 4},
        "pairs": {"num_support": 2}, "stage1": stage, "stage2": dict(stage), "online": dict(online),
    }
    path.write_text(yaml.safe_dump(config))
    return path


class _Evil:
    """Pickles to a call of ``print``: what a weights-only load must refuse to run."""

    def __reduce__(self):
        return (print, ("pickle code ran",))


def bad_checkpoints(folder: Path) -> dict[str, Path]:
    """Files that are not usable checkpoints, by case name."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ("random.pt", "random.safetensors", "truncated.safetensors", "wrong_keys.pt", "evil.pt")
    files = {name: folder / name for name in names}
    noise = torch.randint(0, 256, (2048,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    files["random.pt"].write_bytes(noise.numpy().tobytes())
    files["random.safetensors"].write_bytes(noise.numpy().tobytes())
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    files["truncated.safetensors"].write_bytes(len(header).to_bytes(8, "little") + header + b"\x13" * 7)
    torch.save({"model": {"nothing.weight": torch.zeros(2)}}, files["wrong_keys.pt"])
    with open(files["evil.pt"], "wb") as f:
        pickle.dump({"model": _Evil()}, f)
    return files

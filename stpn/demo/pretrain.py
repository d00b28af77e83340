"""Pre-training of the demo's small Swin: classify clean object crops of the built-in benchmark.

The paper's backbones start from ImageNet classification; the demo has no such weights (nothing
is downloaded), so it makes its own, ImageNet-style: object-centred crops (1.2× the box, resized
to 32 × 32) of the clean, mostly visible objects of videos drawn from a seed of their own. The
crops are laid out in mosaics of 4 × 4 (128 × 128, the detector's frame size, so no window is
padded) and a linear classifier on each token of the last stage (stride 32: one token per crop)
names its crop's class; these last-stage tokens are what STPN's predictor reads.

The crops are scale-normalised because classifying objects at the frames' native scale inside
64-pixel windows did not learn in this budget (loss at chance after 300 steps), neither with
this Swin nor with a small CNN; the normalised crops train in a few hundred steps. Both
detectors then start from the same weights, as both start from ImageNet in the paper.

The result is a timm-format state dict (``backbone.safetensors``), read like any other local
weights file (:func:`stpn.backbones.swin.build_swin` ``weights=``), and cached: a directory named
after a hash of everything the weights depend on, with ``pretrain.json`` beside them (settings,
loss curve, accuracy on held-out crops).
"""
from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from PIL import Image
from tqdm import tqdm

from stpn.data.types import VideoDataset, load_frame
from stpn.detection.clip_batch import IMAGENET_MEAN, IMAGENET_STD
from stpn.engine import TrainConfig
from stpn.engine.optim import build_optimizer

WEIGHTS_FILE = "backbone.safetensors"
RECORD_FILE = "pretrain.json"
CROP = 32  # crop side: one last-stage token per crop at stride 32, 2 × 2 at stride 16


@dataclass(frozen=True)
class PretrainSettings:
    """What the pre-trained weights depend on (besides the backbone's architecture)."""

    videos: int = 600
    frames: int = 4
    grid: int = 4  # mosaics of grid × grid crops: 128-pixel images, the detector's frame size
    context: float = 1.2  # window side / the box's longer side
    iters: int = 1500
    batch_size: int = 4  # mosaics per step (64 crops)
    lr: float = 1e-3  # one-cycle peak; 2e-3 stalls the small Swin on the texture classes
    weight_decay: float = 0.05
    held_out: float = 0.1  # share of the videos kept out of training to measure the accuracy
    min_visible: float = 0.6
    jitter: float = 0.05  # share of the window side the centre moves off the object's centre


def object_crops(dataset: VideoDataset, crop: int, context: float, min_visible: float, jitter: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Square windows of ``context`` times the box's longer side around every clean object at
    least ``min_visible`` visible (centre moved by up to ``jitter`` of that side; black outside
    the frame), resized to ``crop × crop``: images ``(N, crop, crop, 3)`` uint8, labels ``(N,)``
    (0-based classes), video index ``(N,)``."""
    images, labels, videos = [], [], []
    for v, video in enumerate(dataset.videos):
        for frame_ref, annotation in zip(video.frames, video.annotations):
            if annotation.deteriorations:
                continue
            frame = Image.fromarray(load_frame(frame_ref))
            for inst in annotation.instances:
                if inst.deteriorations or inst.visible_fraction < min_visible:
                    continue
                x1, y1, x2, y2 = inst.box.tolist()
                side = context * max(x2 - x1, y2 - y1)
                cx, cy = np.array([x1 + x2, y1 + y2]) / 2 + rng.uniform(-jitter, jitter, 2) * side
                box = tuple(round(c) for c in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
                images.append(np.asarray(frame.crop(box).resize((crop, crop), Image.BILINEAR)))
                labels.append(inst.category_id)
                videos.append(v)
    if not images:
        raise ValueError("no clean object in the pre-training videos")
    return np.stack(images), np.array(labels), np.array(videos)


def augment(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal flips and quarter turns of ``(N, h, w, 3)`` crops (the objects spin in
    the videos, so a turned object is still an object of its class)."""
    out = images.copy()
    flip = rng.random(len(out)) < 0.5
    out[flip] = out[flip, :, ::-1]
    turns = rng.integers(0, 4, len(out))
    for k in (1, 2, 3):
        out[turns == k] = np.rot90(out[turns == k], k, axes=(1, 2))
    return out


def _to_input(images: np.ndarray) -> torch.Tensor:
    """``(N, h, w, 3)`` uint8 → normalised ``(N, 3, h, w)`` float (as the detector's frames)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (x - mean) / std


def mosaic(crops: np.ndarray, grid: int) -> np.ndarray:
    """``(grid² · M, c, c, 3)`` crops → ``(M, grid · c, grid · c, 3)`` images, tiles row by row."""
    m = len(crops) // (grid * grid)
    c = crops.shape[1]
    tiles = crops[: m * grid * grid].reshape(m, grid, grid, c, c, 3)
    return tiles.transpose(0, 1, 3, 2, 4, 5).reshape(m, grid * c, grid * c, 3)


class TileClassifier(nn.Module):
    """Backbone + a linear layer on every token of its last stage (``embed``): on a mosaic of
    ``CROP``-pixel crops each crop covers ``r × r`` last-stage tokens (``r = CROP / stride``: 1 at
    stride 32, 2 at stride 16), and every one of them names its crop's class."""

    def __init__(self, backbone: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.support_dim, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(M, 3, g·CROP, g·CROP)`` mosaics → per-token logits ``(M, g·r, g·r, num_classes)``."""
        return self.head(self.backbone.embed(images).permute(0, 2, 3, 1))

    def crop_logits(self, images: torch.Tensor) -> torch.Tensor:
        """``(M, 3, g·CROP, g·CROP)`` mosaics → logits ``(M · g², num_classes)`` per crop (its
        tokens' logits averaged), crops row by row."""
        tokens = self(images).permute(0, 3, 1, 2)  # (M, C, g·r, g·r)
        r = tokens.shape[-1] * CROP // images.shape[-1]
        return F.avg_pool2d(tokens, r).flatten(2).transpose(1, 2).flatten(0, 1)


def token_labels(labels: np.ndarray, grid: int, tokens_per_side: int) -> torch.Tensor:
    """Crop labels ``(M · g²,)`` (row by row) → the label under every last-stage token
    ``(M, g·r, g·r)`` of the mosaics (``r = tokens_per_side // grid`` tokens per crop side)."""
    r = tokens_per_side // grid
    y = torch.from_numpy(labels).long().view(-1, grid, grid)
    return y.repeat_interleave(r, 1).repeat_interleave(r, 2)


def accuracy(model: TileClassifier, crops: np.ndarray, labels: np.ndarray, grid: int, batch: int = 16) -> float:
    """Share of ``crops`` (in mosaics of ``grid × grid``; a last incomplete mosaic is left out)
    classified as ``labels`` (:meth:`TileClassifier.crop_logits`)."""
    model.eval()
    images = mosaic(crops, grid)
    right = 0
    with torch.no_grad():
        for i in range(0, len(images), batch):
            predicted = model.crop_logits(_to_input(images[i:i + batch])).argmax(1).numpy()
            right += int((predicted == labels[i * grid * grid: i * grid * grid + len(predicted)]).sum())
    model.train()
    return right / max(len(images) * grid * grid, 1)


def pretrain_backbone(backbone: nn.Module, dataset: VideoDataset, settings: PretrainSettings, seed: int = 0,
                      progress: bool = True) -> dict:
    """Train ``backbone`` in place on crops of ``dataset`` laid out in mosaics of
    ``settings.grid × settings.grid`` (:class:`TileClassifier`); returns the record (loss per
    iteration, held-out accuracy, crop counts, seconds). AdamW (the engine's parameter groups: no decay on norms, biases, position tables) with a
    one-cycle schedule;
    random flips and quarter turns of every crop (:func:`augment`)."""
    rng = np.random.default_rng(seed)
    images, labels, videos = object_crops(dataset, CROP, settings.context, settings.min_visible,
                                          settings.jitter, rng)
    held = videos >= math.ceil(len(dataset.videos) * (1 - settings.held_out))
    train_x, train_y, test_x, test_y = images[~held], labels[~held], images[held], labels[held]
    torch.manual_seed(seed)
    model = TileClassifier(backbone, len(dataset.categories)).train()
    optimizer = build_optimizer(model, TrainConfig(lr=settings.lr, weight_decay=settings.weight_decay,
                                                        max_iters=settings.iters))
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.lr, total_steps=settings.iters)
    tiles = settings.batch_size * settings.grid ** 2
    losses, start = [], time.perf_counter()
    for _ in tqdm(range(settings.iters), desc="pre-training the backbone", unit="it", disable=not progress):
        pick = rng.integers(0, len(train_x), tiles)
        logits = model(_to_input(mosaic(augment(train_x[pick], rng), settings.grid)))  # (M, h, w, C)
        target = token_labels(train_y[pick], settings.grid, logits.shape[1])
        loss = F.cross_entropy(logits.flatten(0, 2), target.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    sample = min(len(test_x), len(train_x))
    return {"losses": losses, "train_crops": int(len(train_x)), "held_out_crops": int(len(test_x)),
            "held_out_accuracy": accuracy(model, test_x, test_y, settings.grid),
            "train_accuracy_sample": accuracy(model, train_x[:sample], train_y[:sample], settings.grid),
            "seconds": time.perf_counter() - start}


def cache_dir(root: str | Path, settings: PretrainSettings, backbone_kwargs: dict, data_key: dict) -> Path:
    """``root/<hash>``: one directory per (settings, architecture, data) combination."""
    key = json.dumps({"settings": asdict(settings), "backbone": backbone_kwargs, "data": data_key},
                     sort_keys=True, default=list)
    return Path(root) / hashlib.sha256(key.encode()).hexdigest()[:12]


def save_pretrained(directory: Path, backbone: nn.Module, record: dict) -> Path:
    """Write ``backbone.safetensors`` and ``pretrain.json`` (weights last renamed into place, so
    a killed run never leaves a half-written cache entry that looks complete)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    (directory / RECORD_FILE).write_text(json.dumps(record, indent=1))
    tmp = directory / (WEIGHTS_FILE + ".tmp")
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, str(tmp))
    tmp.replace(directory / WEIGHTS_FILE)
    return directory / WEIGHTS_FILE

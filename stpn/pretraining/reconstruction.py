"""Pictures of what a pair MAE reconstructs: per frame pair, each frame as given, as the encoder
saw it (masked patches grey) and reconstructed (the predictions of the masked patches turned
back into pixels with the target patch's mean and variance, as MAE's figures do; visible
patches shown as given)."""
from __future__ import annotations

from pathlib import Path
from typing import Union

import torch
from torch import Tensor

from stpn.data.normalisation import IMAGENET_MEAN, IMAGENET_STD
from stpn.pretraining.model import PairMAE


def unpatchify(tokens: Tensor, grid: tuple[int, int], patch: int) -> Tensor:
    """``(B, 2N, p*p*3)`` → ``(B, 2, 3, H, W)`` (inverse of :func:`~stpn.pretraining.model.patchify`)."""
    b, (h, w) = tokens.shape[0], grid
    x = tokens.reshape(b, 2, h, w, patch, patch, 3)
    return x.permute(0, 1, 6, 2, 4, 3, 5).reshape(b, 2, 3, h * patch, w * patch)


@torch.no_grad()
def reconstruct_pairs(model: PairMAE, frames: Tensor, seed: int = 0) -> dict[str, Tensor]:
    """``frames (B, 2, 3, H, W)`` (normalised) → ``masked`` and ``reconstructed`` of the same
    shape (normalised units; masked patches of ``masked`` are 0, i.e. the mean colour)."""
    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = model.reconstruct(frames)
    target, hidden = out["target"], out["masked"][..., None]
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
    pixels = out["pred"] * (var + 1e-6).sqrt() + mean
    grid, patch = model.grid, model.patch
    return {"masked": unpatchify(target * ~hidden, grid, patch),
            "reconstructed": unpatchify(torch.where(hidden, pixels, target), grid, patch)}


def _display(image: Tensor):
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return (image.cpu() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()


def save_reconstruction_figure(model: PairMAE, frames: Tensor, path: Union[str, Path], seed: int = 0) -> Path:
    """Write a PNG grid (one row per pair: frame 1 / masked / reconstructed, then frame 2's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    views = reconstruct_pairs(model, frames, seed)
    rows = frames.shape[0]
    fig, axes = plt.subplots(rows, 6, figsize=(9, 1.6 * rows), squeeze=False)
    titles = ("frame 1", "masked", "reconstructed", "frame 2", "masked", "reconstructed")
    for r in range(rows):
        for slot in range(2):
            images = (frames[r, slot], views["masked"][r, slot], views["reconstructed"][r, slot])
            for k, image in enumerate(images):
                ax = axes[r, 3 * slot + k]
                ax.imshow(_display(image))
                ax.set_xticks([]), ax.set_yticks([])
                if r == 0:
                    ax.set_title(titles[3 * slot + k], fontsize=8)
    path = Path(path)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path

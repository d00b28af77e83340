"""The DropMAE slides' statistic: per decoder layer, the mean share of a query's attention
that stays within its own frame and the share that goes to the other frame (averaged over
pairs, heads and queries; they sum to 1). Measured in eval mode (ASAD off), so TwinMAE and
DropMAE are compared on what they learned, not on the dropout."""
from __future__ import annotations

import torch
from torch import Tensor

from stpn.pretraining.model import PairMAE


@torch.no_grad()
def attention_split(model: PairMAE, frames: Tensor, seed: int = 0) -> list[tuple[float, float]]:
    """``frames (B, 2, 3, H, W)`` → ``[(within, between)]`` per decoder block; the mask is
    drawn with ``seed`` (the global RNG is restored afterwards)."""
    was_training = model.training
    model.eval()
    attentions = [block.attn for block in model.decoder.blocks]
    for attn in attentions:
        attn.record_attention = True
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.reconstruct(frames)
        return [attn.attention_split for attn in attentions]
    finally:
        for attn in attentions:
            attn.record_attention = False
        model.train(was_training)

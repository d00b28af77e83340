"""The two-frame masked autoencoder of DropMAE (and TwinMAE, the same with ASAD off).

A frame pair ``(B, 2, 3, H, W)`` is cut into ``2N`` patches; each gets the fixed 2-D sin-cos
embedding of its grid position plus the learned temporal embedding of its frame slot (in the
encoder and, separately, in the decoder); one random 75 % mask is drawn over the ``2N`` tokens
jointly (MAE's argsort of uniform noise, so a frame may keep more patches than the other); the
encoder (a :func:`stpn.backbones.vit.build_vit` ViT) sees the kept tokens and its prefix tokens;
the decoder (:class:`~stpn.pretraining.decoder.PairDecoder`) predicts every patch, and the loss
is the MSE on per-patch normalised pixels (MAE's ``norm_pix_loss``) of the masked patches of
both frames.

The encoder's own ``pos_embed`` holds the sin-cos table (zeros at prefix positions) and is frozen,
so exported weights load into ``build_vit`` with the same positions; its class token's output
is not decoded.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from stpn.backbones.vit import build_vit
from stpn.pretraining.decoder import PairDecoder
from stpn.pretraining.position import sincos_position_embedding

METHODS = {"dropmae": 0.1, "twinmae": 0.0}  # method → default ASAD drop ratio P


def patchify(frames: Tensor, patch: int) -> Tensor:
    """``(B, T, 3, H, W)`` → ``(B, T*N, p*p*3)``, tokens row-major per frame, frames in order."""
    b, t, c, h, w = frames.shape
    x = frames.reshape(b, t, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 1, 3, 5, 4, 6, 2).reshape(b, t * (h // patch) * (w // patch), patch * patch * c)


def masked_patch_loss(pred: Tensor, target: Tensor, masked: Tensor) -> Tensor:
    """MSE on per-patch normalised pixels, averaged over the masked patches only.

    ``pred, target (B, M, P)``, ``masked (B, M)`` bool (True = hidden from the encoder)."""
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
    per_patch = ((pred - (target - mean) / (var + 1e-6).sqrt()) ** 2).mean(-1)
    return (per_patch * masked).sum() / masked.sum().clamp_min(1)


class PairMAE(nn.Module):
    """Encoder + decoder; ``model(frames)`` returns ``{"loss_mse": ...}`` (the engine's contract).

    Args:
        encoder: a ``build_vit`` ViT (no register tokens); its image size is the pair's.
        decoder: the decoder over its patch grid.
        mask_ratio: share of the 2N tokens hidden from the encoder.
    """

    def __init__(self, encoder: nn.Module, decoder: PairDecoder, mask_ratio: float = 0.75) -> None:
        super().__init__()
        if not 0 <= mask_ratio < 1:
            raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
        self.encoder, self.decoder, self.mask_ratio = encoder, decoder, mask_ratio
        self.grid = tuple(encoder.patch_embed.grid_size)
        self.patch = encoder.patch_embed.patch_size[0]
        self.tokens_per_frame = self.grid[0] * self.grid[1]
        n, dim = self.tokens_per_frame, encoder.embed_dim
        table = torch.zeros_like(encoder.pos_embed.data)
        table[0, -n:] = sincos_position_embedding(self.grid, dim)
        encoder.pos_embed = nn.Parameter(table, requires_grad=False)
        self.temporal_embed = nn.Parameter(torch.zeros(2, dim))
        nn.init.normal_(self.temporal_embed, std=0.02)

    def _check(self, frames: Tensor) -> None:
        size = tuple(s * self.patch for s in self.grid)
        if frames.ndim != 5 or frames.shape[1:3] != (2, 3) or tuple(frames.shape[-2:]) != size:
            raise ValueError(f"expected frame pairs (B, 2, 3, {size[0]}, {size[1]}), got {tuple(frames.shape)}")

    def _prefix(self, batch: int) -> Tensor:
        enc = self.encoder
        parts = [t for t in (enc.cls_token, enc.reg_token) if t is not None]
        if not parts:
            return enc.pos_embed.new_zeros(batch, 0, enc.embed_dim)
        prefix = torch.cat(parts, 1)
        if enc.pos_embed.shape[1] > self.tokens_per_frame:
            prefix = prefix + enc.pos_embed[:, : prefix.shape[1]]
        return prefix.expand(batch, -1, -1)

    def encode(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """``frames (B, 2, 3, H, W)`` → kept tokens' encoder outputs ``(B, K, C)`` (final norm,
        prefix removed) and their indices ``keep (B, K)`` among the 2N tokens."""
        self._check(frames)
        enc, b, n = self.encoder, frames.shape[0], self.tokens_per_frame
        x = enc.patch_embed(frames.flatten(0, 1))
        x = x.reshape(b, 2 * n, -1)  # NHWC or NLC patch tokens, frames in order
        x = x + enc.pos_embed[:, -n:].repeat(1, 2, 1) + self.temporal_embed.repeat_interleave(n, 0)
        num_keep = int(2 * n * (1 - self.mask_ratio))
        keep = torch.rand(b, 2 * n, device=x.device).argsort(1)[:, :num_keep].sort(1).values
        x = torch.gather(x, 1, keep[..., None].expand(-1, -1, x.shape[-1]))
        prefix = self._prefix(b)
        x = enc.norm_pre(torch.cat([prefix, x], 1))
        for block in enc.blocks:
            x = block(x)
        return enc.norm(x)[:, prefix.shape[1]:], keep

    def reconstruct(self, frames: Tensor) -> dict[str, Tensor]:
        """``frames (B, 2, 3, H, W)`` → ``pred``, ``target`` ``(B, 2N, p*p*3)`` (target in
        pixels, pred in per-patch normalised units) and ``masked (B, 2N)`` bool."""
        visible, keep = self.encode(frames)
        pred = self.decoder(visible, keep, self.tokens_per_frame)
        masked = torch.ones(keep.shape[0], 2 * self.tokens_per_frame, dtype=torch.bool, device=keep.device)
        masked.scatter_(1, keep, False)
        return {"pred": pred, "target": patchify(frames, self.patch), "masked": masked}

    def forward(self, frames: Tensor) -> dict[str, Tensor]:
        out = self.reconstruct(frames)
        return {"loss_mse": masked_patch_loss(out["pred"], out["target"], out["masked"])}


def build_pair_mae(
    method: str = "dropmae",
    variant: str = "vit_base_patch16_224",
    img_size: int = 224,
    mask_ratio: float = 0.75,
    drop_ratio: float | None = None,
    decoder_dim: int = 512,
    decoder_depth: int = 8,
    decoder_heads: int = 16,
    **vit_kwargs: Any,
) -> PairMAE:
    """DropMAE (``method="dropmae"``, ASAD with P = ``drop_ratio``, default 0.1) or TwinMAE
    (``"twinmae"``, no ASAD) on a ``build_vit(variant, img_size=img_size, **vit_kwargs)`` encoder."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if method == "twinmae" and drop_ratio:
        raise ValueError("twinmae has no ASAD: leave drop_ratio unset (or 0)")
    p = METHODS[method] if drop_ratio is None else drop_ratio
    encoder = build_vit(variant, img_size=img_size, **vit_kwargs)
    if encoder.reg_token is not None:
        raise ValueError(f"{variant} has register tokens, which the pair MAE does not support")
    embed = encoder.patch_embed
    decoder = PairDecoder(encoder.embed_dim, embed.patch_size[0] * embed.patch_size[1] * 3, tuple(embed.grid_size),
                          dim=decoder_dim, depth=decoder_depth, num_heads=decoder_heads, drop_ratio=p)
    return PairMAE(encoder, decoder, mask_ratio)

"""RoIAlign as two small matrix products, for the CPU.

torchvision's CPU RoIAlign backward visits every (RoI, channel, sample point) in a scalar loop;
on the demo's detector (512 RoIs of 64 channels on a 32 × 32 map per step) it took about 0.15 s of
a 0.45 s training step on one thread. Bilinear sampling on a regular grid is separable: the
value of one output bin is ``A_y F A_x^T``, where ``A_y`` (P_h × H) holds, for each output row,
the mean over its sample rows of their two bilinear row weights, and ``A_x`` (P_w × W) the same
for columns. So RoIAlign of the RoIs of one image is two batched matrix products, and autograd
gives the backward as two more; outputs and gradients equal torchvision's to float rounding
(``tests/test_roi_align.py``).

The detectors of :mod:`stpn.detection.build` use it (through
:class:`SeparableMultiScaleRoIAlign`, on the CPU only). Measured on one thread, first 40 demo
steps under cProfile: per-frame 0.44 → 0.32 s/step, STPN 0.75 → 0.66 s/step.

Semantics are torchvision's ``roi_align`` with a fixed ``sampling_ratio > 0`` (the detector's 2),
both ``aligned`` modes: sample points below −1 or beyond the map's size contribute zero, the
others are clamped to the border; RoIs are at least one pixel wide unless ``aligned``.
"""
from __future__ import annotations

import torch
import torchvision
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign, roi_align
from torchvision.ops.poolers import _convert_to_roi_format, _filter_input, _setup_scales


def axis_weights(start: Tensor, end: Tensor, bins: int, samples: int, size: int, aligned: bool) -> Tensor:
    """Averaged bilinear weights along one axis.

    Args:
        start, end: (R,) RoI edges in feature-map pixels (already scaled; ``aligned`` shifts
            them by −0.5 here).
        bins: output bins along this axis; ``samples``: sample points per bin; ``size``: the
            map's length along the axis.

    Returns:
        (R, bins, size): row ``p`` is the mean over bin ``p``'s sample points of their bilinear
        weights on the ``size`` map positions.
    """
    if aligned:
        start, end = start - 0.5, end - 0.5
    length = end - start
    if not aligned:
        length = length.clamp(min=1.0)
    step = length / bins  # (R,)
    offsets = (torch.arange(bins * samples, dtype=start.dtype, device=start.device) + 0.5) / samples
    points = start[:, None] + offsets[None, :] * step[:, None]  # (R, bins*samples)
    inside = (points >= -1.0) & (points <= size)
    points = points.clamp(min=0.0)
    low = points.floor().clamp(max=size - 1)
    points = torch.where(low >= size - 1, low, points)
    frac = points - low
    low = low.long()
    high = (low + 1).clamp(max=size - 1)
    weights = torch.zeros(*points.shape, size, dtype=start.dtype, device=start.device)
    weights.scatter_add_(2, low[..., None], ((1 - frac) * inside)[..., None])
    weights.scatter_add_(2, high[..., None], (frac * inside)[..., None])
    return weights.unflatten(1, (bins, samples)).mean(2)


WINDOW_BUCKETS = (4, 8, 16, 32)  # RoIs are pooled in groups whose windows fit these lengths
# RoIs whose window is longer (large boxes on fine maps) go to torchvision's kernel: their crops
# would cost more memory than the scalar loop costs time


def separable_roi_align(features: Tensor, rois: Tensor, output_size, spatial_scale: float, sampling_ratio: int,
                        aligned: bool = False) -> Tensor:
    """torchvision's ``roi_align`` for ``sampling_ratio > 0`` by matrix products.

    Args:
        features: (B, C, H, W). rois: (R, 5) rows ``(batch index, x1, y1, x2, y2)`` in image
            pixels. output_size: ``P`` or ``(P_h, P_w)``.

    Returns:
        (R, C, P_h, P_w).
    """
    if sampling_ratio <= 0:
        raise ValueError(f"separable_roi_align needs a fixed sampling_ratio > 0, got {sampling_ratio}")
    ph, pw = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    _, channels, height, width = features.shape
    boxes = rois[:, 1:] * spatial_scale
    ay = axis_weights(boxes[:, 1], boxes[:, 3], ph, sampling_ratio, height, aligned).to(features.dtype)
    ax = axis_weights(boxes[:, 0], boxes[:, 2], pw, sampling_ratio, width, aligned).to(features.dtype)
    y0, y_len = support_window(ay)
    x0, x_len = support_window(ax)
    longest = torch.maximum(y_len, x_len)
    image_of = rois[:, 0].long()
    out = features.new_zeros(len(rois), channels, ph, pw)
    lower = 0
    for bucket in WINDOW_BUCKETS:
        idx = torch.nonzero((longest > lower) & (longest <= bucket)).flatten()
        lower = bucket
        if len(idx):
            m_h, m_w = min(bucket, height), min(bucket, width)
            rows = y0[idx].clamp(max=height - m_h)[:, None] + torch.arange(m_h, device=rois.device)  # (r, M_h)
            cols = x0[idx].clamp(max=width - m_w)[:, None] + torch.arange(m_w, device=rois.device)  # (r, M_w)
            out = out.index_copy(0, idx, pooled_windows(features, image_of[idx], ay[idx], ax[idx], rows, cols))
    idx = torch.nonzero(longest > lower).flatten()
    if len(idx):
        out = out.index_copy(0, idx, roi_align(features, rois[idx], (ph, pw), spatial_scale, sampling_ratio, aligned))
    return out


def support_window(weights: Tensor) -> tuple[Tensor, Tensor]:
    """(R, P, size) weights → each RoI's first used map index and the length of its window
    (last used index − first + 1; 1 for a RoI that uses none)."""
    used = weights.abs().sum(1) > 0  # (R, size)
    size = weights.shape[2]
    positions = torch.arange(size, device=weights.device)
    first = torch.where(used, positions, size).amin(1)
    last = torch.where(used, positions, -1).amax(1)
    return first.clamp(max=size - 1), (last - first).clamp(min=0) + 1


def pooled_windows(features: Tensor, image_of: Tensor, ay: Tensor, ax: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """``out[r, c] = ay[r] @ features[image_of[r], c] @ ax[r].T``, computed on each RoI's window
    of the map (rows ``rows[r]``, columns ``cols[r]``, outside which its weights are zero).

    Shapes: features (B, C, H, W); image_of (R,); ay (R, P_h, H); ax (R, P_w, W); rows (R, M_h);
    cols (R, M_w) → (R, C, P_h, P_w).
    """
    rois, ph, pw = len(image_of), ay.shape[1], ax.shape[1]
    m_h, m_w = rows.shape[1], cols.shape[1]
    _, channels, height, width = features.shape
    ay = ay.gather(2, rows[:, None].expand(rois, ph, m_h))
    ax = ax.gather(2, cols[:, None].expand(rois, pw, m_w))
    # whole C-vectors gathered from a (B·H·W, C) copy: the backward is one index_add of rows
    pixels = features.permute(0, 2, 3, 1).reshape(-1, channels)
    flat = (image_of[:, None, None] * height + rows[:, :, None]) * width + cols[:, None, :]  # (R, M_h, M_w)
    crops = pixels.index_select(0, flat.flatten()).view(rois, m_h, m_w * channels)
    over_rows = torch.bmm(ay, crops)  # (R, P_h, M_w·C)
    over_rows = over_rows.view(rois, ph, m_w, channels).transpose(2, 3).reshape(rois, ph * channels, m_w)
    out = torch.bmm(over_rows, ax.transpose(1, 2))  # (R, P_h·C, P_w)
    return out.view(rois, ph, channels, pw).permute(0, 2, 1, 3)


class SeparableMultiScaleRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` (same levels, scales and outputs) with
    :func:`separable_roi_align` per level on the CPU; on other devices, or while tracing, it
    is torchvision's own."""

    def forward(self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]) -> Tensor:
        levels_x = _filter_input(x, self.featmap_names)
        if levels_x[0].device.type != "cpu" or torchvision._is_tracing() or self.sampling_ratio <= 0:
            return super().forward(x, boxes, image_shapes)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(levels_x, image_shapes, self.canonical_scale,
                                                         self.canonical_level)
        rois = _convert_to_roi_format(boxes)
        if len(levels_x) == 1:
            return separable_roi_align(levels_x[0], rois, self.output_size, self.scales[0], self.sampling_ratio)
        level_of = self.map_levels(boxes)
        out = levels_x[0].new_zeros(len(rois), levels_x[0].shape[1], *self.output_size)
        for level, (features, scale) in enumerate(zip(levels_x, self.scales)):
            idx = torch.nonzero(level_of == level).flatten()
            if len(idx):
                pooled = separable_roi_align(features, rois[idx], self.output_size, scale, self.sampling_ratio)
                out = out.index_copy(0, idx, pooled.to(out.dtype))
        return out


__all__ = ["SeparableMultiScaleRoIAlign", "axis_weights", "separable_roi_align"]

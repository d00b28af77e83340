"""separable_roi_align equals torchvision's roi_align (outputs and gradients) and
SeparableMultiScaleRoIAlign equals MultiScaleRoIAlign, on boxes inside, across and outside the
map, tiny boxes, and windows too long for the buckets (torchvision's fallback)."""
from collections import OrderedDict

import pytest
import torch
from torchvision.ops import MultiScaleRoIAlign, roi_align

from stpn.detection.roi_align import SeparableMultiScaleRoIAlign, separable_roi_align


def _rois(count: int, batch: int, extent: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(count, 2, generator=g) * extent * 1.2 - 0.1 * extent
    wh = torch.rand(count, 2, generator=g) * extent * 0.8 + 0.2
    b = torch.randint(0, batch, (count, 1), generator=g).float()
    rois = torch.cat([b, xy, xy + wh], 1)
    rois[:5, 3:] = rois[:5, 1:3] + 0.3  # smaller than a map pixel
    rois[5:10, 1:3] -= extent  # partly left of / above the image
    return rois


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("extent,scale", [(64.0, 0.25), (640.0, 0.25)])  # the second: windows over 32 pixels
def test_equals_torchvision(aligned, extent, scale):
    torch.manual_seed(0)
    features = torch.randn(3, 5, int(extent * scale), int(extent * scale) + 3, requires_grad=True)
    rois = _rois(60, 3, extent)
    expected = roi_align(features, rois, (7, 6), scale, 2, aligned)
    upstream = torch.randn_like(expected)
    (expected_grad,) = torch.autograd.grad(expected, features, upstream)
    got = separable_roi_align(features, rois, (7, 6), scale, 2, aligned)
    (got_grad,) = torch.autograd.grad(got, features, upstream)
    # float32 sums in another order: the long windows add up to ~100 terms
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_grad, expected_grad, atol=1e-4, rtol=1e-4)


def test_multiscale_equals_torchvision():
    torch.manual_seed(1)
    maps = OrderedDict((str(i), torch.randn(2, 4, 32 >> i, 32 >> i)) for i in range(3))
    boxes = [_rois(40, 1, 128.0, seed=s)[:, 1:].clamp(0, 127) for s in (2, 3)]
    boxes = [torch.cat([b[:, :2], torch.maximum(b[:, 2:], b[:, :2] + 1)], 1) for b in boxes]
    shapes = [(128, 128), (128, 128)]
    expected = MultiScaleRoIAlign(["0", "1", "2"], 7, 2)(maps, boxes, shapes)
    got = SeparableMultiScaleRoIAlign(["0", "1", "2"], 7, 2)(maps, boxes, shapes)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_adaptive_sampling_is_refused():
    with pytest.raises(ValueError, match="sampling_ratio"):
        separable_roi_align(torch.zeros(1, 1, 4, 4), torch.zeros(1, 5), 2, 1.0, 0)

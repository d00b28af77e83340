"""ASAD: drop count, where it drops, and that it samples in proportion to W."""
import pytest
import torch
from scipy.stats import chisquare

from stpn.pretraining.asad import apply_asad, asad_mask, drop_count, drop_weights, frame_layout, sample_drops


def _logits(b=2, h=3, n=6, seed=0):
    return torch.randn(b, h, 2 * n, 2 * n, generator=torch.Generator().manual_seed(seed)) * 2


def test_exact_count_within_frame_only_never_diagonal_or_cross_frame():
    n, p = 6, 0.5
    mask = asad_mask(_logits(n=n), n, p, torch.Generator().manual_seed(1))
    assert drop_count(n, p) == 2 * 2 * n
    assert (mask.sum((-1, -2)) == drop_count(n, p)).all()
    same, candidates = frame_layout(n)
    assert not (mask & ~same).any()  # never cross-frame
    assert not mask.diagonal(dim1=-2, dim2=-1).any()
    assert not (mask & ~candidates).any()


def test_zero_ratio_drops_nothing_and_draws_no_random_numbers():
    logits = _logits()
    torch.manual_seed(3)
    out = apply_asad(logits, 6, 0.0)
    after = torch.rand(1)
    torch.manual_seed(3)
    assert torch.equal(out, logits) and torch.equal(after, torch.rand(1))


def test_weights_match_the_definition():
    n = 4
    logits = _logits(b=1, h=1, n=n)[0, 0]
    s = logits.softmax(-1)
    w = drop_weights(logits, n)
    for i in range(2 * n):
        own = range(0, n) if i < n else range(n, 2 * n)
        other = range(n, 2 * n) if i < n else range(0, n)
        f_tem = max(s[i, j] for j in other)
        total = sum(s[i, j] for j in own if j != i)
        for j in range(2 * n):
            expected = f_tem * s[i, j] / total if (j in own and j != i) else 0.0
            assert w[i, j].item() == pytest.approx(float(expected), rel=1e-5, abs=1e-12)


def test_sampled_in_proportion_to_weights():
    weights = drop_weights(_logits(b=1, h=1, n=3, seed=5), 3)[0, 0]
    draws = 6000
    g = torch.Generator().manual_seed(7)
    counts = torch.zeros_like(weights)
    for _ in range(draws):
        counts += sample_drops(weights, 1, g).float()
    keep = weights > 0
    expected = weights[keep] / weights[keep].sum() * draws
    assert counts[~keep].sum() == 0
    assert chisquare(counts[keep].numpy(), expected.numpy()).pvalue > 1e-3
    # a skewed W is followed: the heaviest entry is drawn far more often than the lightest
    assert counts[keep][weights[keep].argmax()] > 3 * counts[keep][weights[keep].argmin()]


def test_full_asad_prefers_heavy_entries():
    n, p = 5, 0.25
    logits = _logits(b=1, h=1, n=n, seed=9)
    weights = drop_weights(logits, n)[0, 0]
    g = torch.Generator().manual_seed(0)
    freq = sum(asad_mask(logits, n, p, g)[0, 0].float() for _ in range(400)) / 400
    heavy = weights >= weights[weights > 0].quantile(0.75)
    light = (weights > 0) & (weights <= weights[weights > 0].quantile(0.25))
    assert freq[heavy].mean() > freq[light].mean()


def test_bad_shapes_and_ratios_are_errors():
    with pytest.raises(ValueError, match="two frames"):
        drop_weights(torch.zeros(1, 1, 5, 5), 3)
    with pytest.raises(ValueError, match="P must be"):
        asad_mask(_logits(), 6, 1.0)

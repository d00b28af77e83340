"""DVP predictors: shapes, parameter counts, masking, gradients, errors."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stpn.prompts.build import PREDICTORS, build_predictor

D_L, D, NP, N = 32, 16, 5, 9


def make(name, **kw):
    torch.manual_seed(0)
    extra = {"num_tokens": N} if name == "mixer" else {}
    if name == "transformer":
        extra["num_heads"] = 4
    if name == "relation":
        extra["num_heads"] = 4
    return build_predictor(name, D_L, D, NP, **extra, **kw).eval()


@pytest.mark.parametrize("name", PREDICTORS)
def test_shape(name):
    out = make(name)(torch.randn(2, 3, N, D_L))
    assert out.shape == (2, NP, D)


def test_relation_parameter_count_matches_released_code():
    p = build_predictor("relation", 768, 96, 5)
    assert sum(x.numel() for x in p.parameters()) == 111_552


def test_topk_parameter_count():
    p = build_predictor("topk", 768, 96, 5)
    assert sum(x.numel() for x in p.parameters()) == 768 * 96 + 96


@pytest.mark.parametrize("name", PREDICTORS)
def test_masked_frames_have_no_influence(name):
    p = make(name)
    support = torch.randn(2, 4, N, D_L)
    mask = torch.tensor([[True, False, True, True], [True, True, True, False]])
    out = p(support, mask)
    changed = support.clone()
    changed[0, 1] = torch.randn(N, D_L) * 100
    changed[1, 3] = torch.randn(N, D_L) * 100
    torch.testing.assert_close(p(changed, mask), out, rtol=0, atol=1e-6)
    # ...and equals running without the masked frame at all
    alone = p(support[:1, [0, 2, 3]])
    torch.testing.assert_close(out[:1], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", PREDICTORS)
def test_all_masked_clip_is_an_error(name):
    with pytest.raises(ValueError, match="no valid support frame"):
        make(name)(torch.randn(2, 3, N, D_L), torch.tensor([[True, True, False], [False] * 3]))


@pytest.mark.parametrize("name", PREDICTORS)
def test_wrong_width_and_rank(name):
    p = make(name)
    with pytest.raises(ValueError, match="support_dim"):
        p(torch.randn(1, 2, N, D_L + 1))
    with pytest.raises(ValueError, match=r"\(B, K, N, d_L\)"):
        p(torch.randn(2, N, D_L))
    with pytest.raises(ValueError, match="mask shape"):
        p(torch.randn(1, 2, N, D_L), torch.ones(1, 3, dtype=torch.bool))


def test_mixer_needs_fixed_token_count():
    with pytest.raises(ValueError, match="support_grid"):
        make("mixer")(torch.randn(1, 2, N + 1, D_L))


def test_topk_needs_enough_tokens():
    with pytest.raises(ValueError, match="N_P"):
        make("topk")(torch.randn(1, 2, NP - 1, D_L))


def test_topk_picks_largest_norm_tokens():
    p = make("topk")
    support = torch.zeros(1, 1, N, D_L)
    for rank, token in enumerate([4, 0, 7, 2, 5]):  # descending L1 norm
        support[0, 0, token] = (NP - rank) * torch.ones(D_L)
    expected = p.reduce(support[0, 0, [4, 0, 7, 2, 5]])
    torch.testing.assert_close(p(support)[0], expected)


@pytest.mark.parametrize("name", PREDICTORS)
def test_gradients_reach_every_parameter(name):
    p = make(name).train()
    p(torch.randn(2, 3, N, D_L)).square().sum().backward()
    missing = [n for n, x in p.named_parameters() if x.grad is None or not x.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", PREDICTORS)
def test_deep_variant(name):
    dims = (16, 16, 24, 40)
    p = make(name, deep_dims=dims).train()
    out = p(torch.randn(2, 3, N, D_L))
    assert [o.shape for o in out] == [(2, NP, d) for d in dims]
    sum(o.square().sum() for o in out).backward()
    assert all(proj.weight.grad is not None for proj in p.projections)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from(PREDICTORS), st.integers(1, 4), st.integers(1, 4))
def test_batch_independence(name, batch, frames):
    p = make(name)
    support = torch.randn(batch, frames, N, D_L)
    together = p(support)
    for i in range(batch):
        torch.testing.assert_close(together[i : i + 1], p(support[i : i + 1]), rtol=1e-5, atol=1e-6)

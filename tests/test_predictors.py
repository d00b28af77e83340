"""DVP predictors: shapes, parameter counts, masking, batching, gradients, errors, deep prompts."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from stpn.prompts.build import PREDICTORS, build_predictor
from stpn.prompts.relation import RelationAttention

D_L, D, NP, N = 32, 16, 5, 9  # tiny support width, prompt width, prompts, tokens per frame
EXTRA = {
    "transformer": {"num_heads": 4}, "mixer": {"num_tokens": N}, "relation": {"num_heads": 4}, "topk": {},
}


def make(name, seed=0, **kw):
    torch.manual_seed(seed)
    return build_predictor(name, D_L, D, NP, **EXTRA[name], **kw).eval()


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", PREDICTORS)
def test_shape_and_attributes(name):
    p = make(name)
    assert (p.support_dim, p.prompt_dim, p.num_prompts) == (D_L, D, NP)
    assert p(torch.randn(2, 3, N, D_L)).shape == (2, NP, D)


def test_relation_parameter_count_matches_released_code():
    assert n_params(build_predictor("relation", 768, 96, 5)) == 111_552


def test_topk_parameter_count_is_one_linear():
    assert n_params(build_predictor("topk", 768, 96, 5)) == 768 * 96 + 96  # ≈ 0.07M


def test_transformer_projection_is_identity_at_equal_widths():
    same = build_predictor("transformer", D_L, D_L, NP, num_heads=4)
    assert isinstance(same.proj, torch.nn.Identity)
    assert n_params(make("transformer")) == n_params(same) + D_L * D + D


def _padded(clips, pad_value=float("nan")):
    """Clips of different lengths ``[(K_i, N, D_L)]`` → padded ``(B, K_max, N, D_L)``, mask."""
    k_max = max(c.shape[0] for c in clips)
    support = torch.full((len(clips), k_max, N, D_L), pad_value)
    mask = torch.zeros(len(clips), k_max, dtype=torch.bool)
    for i, clip in enumerate(clips):
        support[i, : len(clip)], mask[i, : len(clip)] = clip, True
    return support, mask


@pytest.mark.parametrize("name", PREDICTORS)
def test_masked_frame_content_has_no_influence(name):
    p = make(name)
    support = torch.randn(2, 4, N, D_L)
    mask = torch.tensor([[True, False, True, True], [True, True, True, False]])
    out = p(support, mask)
    for garbage in (float("nan"), float("inf"), 1e6):
        changed = support.clone()
        changed[~mask] = garbage
        assert torch.equal(p(changed, mask), out)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", PREDICTORS)
def test_masked_frame_equals_removed_frame(name):
    p = make(name)
    support = torch.randn(2, 4, N, D_L)
    mask = torch.tensor([[True, False, True, True], [False, True, False, False]])
    out = p(support, mask)
    for i in range(2):
        alone = p(support[i : i + 1, mask[i]])
        torch.testing.assert_close(out[i : i + 1], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", PREDICTORS)
def test_no_gradient_reaches_masked_frames(name):
    p = make(name).train()
    support = torch.randn(2, 3, N, D_L, requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, True, True]])
    p(support, mask).square().sum().backward()
    assert torch.equal(support.grad[~mask], torch.zeros_like(support.grad[~mask]))
    assert support.grad[mask].abs().sum() > 0


@settings(max_examples=12, deadline=None)
@given(
    name=st.sampled_from(PREDICTORS),
    lengths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_padded_batch_equals_each_clip_alone(name, lengths, seed):
    """Any mix of clip lengths, NaN-padded into one batch, gives each clip's own prompts."""
    p = make(name)
    gen = torch.Generator().manual_seed(seed)
    clips = [torch.randn(k, N, D_L, generator=gen) for k in lengths]
    support, mask = _padded(clips)
    out = p(support, mask)
    for i, clip in enumerate(clips):
        torch.testing.assert_close(out[i], p(clip[None])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", PREDICTORS)
def test_batch_of_three_equals_three_single_runs(name):
    p = make(name)
    support = torch.randn(3, 2, N, D_L)
    together = p(support)
    for i in range(3):
        torch.testing.assert_close(together[i : i + 1], p(support[i : i + 1]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", PREDICTORS)
def test_support_frame_order_does_not_matter(name):
    """No temporal position enters any predictor: permuting the support frames keeps the prompts."""
    p = make(name)
    support = torch.randn(2, 4, N, D_L)
    torch.testing.assert_close(p(support[:, [2, 0, 3, 1]]), p(support), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", PREDICTORS)
def test_all_masked_clip_is_an_error(name):
    with pytest.raises(ValueError, match="no valid support frame"):
        make(name)(torch.randn(2, 3, N, D_L), torch.tensor([[True, True, False], [False] * 3]))


@pytest.mark.parametrize("name", PREDICTORS)
def test_wrong_width_rank_and_mask_shape(name):
    p = make(name)
    with pytest.raises(ValueError, match=f"width {D_L + 1} != predictor support_dim {D_L}"):
        p(torch.randn(1, 2, N, D_L + 1))
    with pytest.raises(ValueError, match=r"\(B, K, N, d_L\)"):
        p(torch.randn(2, N, D_L))
    with pytest.raises(ValueError, match="mask shape"):
        p(torch.randn(1, 2, N, D_L), torch.ones(1, 3, dtype=torch.bool))


@pytest.mark.parametrize("name", PREDICTORS)
def test_bad_sizes_at_construction(name):
    with pytest.raises(ValueError, match="num_prompts"):
        build_predictor(name, D_L, D, 0, **EXTRA[name])


def test_unknown_predictor_name():
    with pytest.raises(ValueError, match="unknown predictor 'mlp'.*transformer, mixer, relation, topk"):
        build_predictor("mlp", D_L, D)


def test_heads_must_divide_width():
    with pytest.raises(ValueError, match="divisible by num_heads"):
        build_predictor("transformer", D_L, D, num_heads=5)
    with pytest.raises(ValueError, match="multiple of num_heads"):
        build_predictor("relation", D_L, D, num_heads=5)


def test_mixer_needs_fixed_token_count():
    with pytest.raises(ValueError, match=r"num_tokens=9 .* got 10; pool support maps to a fixed grid"):
        make("mixer")(torch.randn(1, 2, N + 1, D_L))


def test_mixer_only_sees_the_temporal_mean():
    """Eq. 5: two frames give the same prompts as two copies of their average."""
    p = make("mixer")
    support = torch.randn(1, 2, N, D_L)
    average = support.mean(1, keepdim=True).expand(-1, 2, -1, -1)
    torch.testing.assert_close(p(average), p(support), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(p(support[:, :1]), p(support), atol=1e-4)


def test_topk_needs_enough_tokens():
    with pytest.raises(ValueError, match="at least N_P=5 tokens per frame, got N=4"):
        make("topk")(torch.randn(1, 2, NP - 1, D_L))


def test_topk_averages_largest_norm_tokens_rank_by_rank():
    p = make("topk")
    support = torch.randn(1, 2, N, D_L) * 0.01
    picks = ([4, 0, 7, 2, 5], [1, 8, 3, 6, 0])  # per frame, in descending L1 norm
    for frame, tokens in enumerate(picks):
        for rank, token in enumerate(tokens):
            support[0, frame, token] += (NP - rank + frame * 0.5) * torch.sign(torch.randn(D_L))
    expected = p.reduce((support[0, 0, picks[0]] + support[0, 1, picks[1]]) / 2)
    torch.testing.assert_close(p(support)[0], expected)


def test_transformer_follows_paper_equations():
    """Eq. 2–4 recomputed from the module's weights: Q̂ = MHA(LN(Q), LN(K)) + Q;
    P = Linear(FFN(LN(Q̂)) + LN(Q̂))."""
    p = make("transformer")
    support = torch.randn(1, 3, N, D_L)
    keys = p.norm_support(support.reshape(1, 3 * N, D_L))
    query = p.query[None]
    wq, wk, wv = p.attn.in_proj_weight.chunk(3)
    bq, bk, bv = p.attn.in_proj_bias.chunk(3)
    heads = lambda x: x.unflatten(-1, (4, -1)).transpose(1, 2)  # noqa: E731
    q = heads(F.linear(p.norm_query(query), wq, bq))
    k, v = heads(F.linear(keys, wk, bk)), heads(F.linear(keys, wv, bv))
    attn = torch.softmax(q @ k.transpose(-1, -2) / (D_L // 4) ** 0.5, -1) @ v
    q_hat = p.attn.out_proj(attn.transpose(1, 2).flatten(2)) + query
    z = p.norm_out(q_hat)
    torch.testing.assert_close(p(support), p.proj(p.ffn(z) + z), rtol=1e-5, atol=1e-6)


def test_relation_attention_matches_per_head_reference():
    torch.manual_seed(0)
    heads, dim = 4, 16
    rel = RelationAttention(dim, heads)
    x, y = torch.randn(2, 3, dim), torch.randn(2, 7, dim)
    per_head = []
    for h in range(heads):
        cols = slice(h * dim // heads, (h + 1) * dim // heads)
        q, k, v = rel.query_embed(x)[..., cols], rel.key_embed(y)[..., cols], rel.value(y)[..., cols]
        weights = torch.softmax(q @ k.transpose(1, 2) / (dim / heads) ** 0.5, dim=-1)
        per_head.append(weights @ v)
    torch.testing.assert_close(rel(x, y), rel.out(torch.cat(per_head, -1)), rtol=1e-5, atol=1e-6)
    assert n_params(rel) == 4 * (dim * dim + dim)


def test_relation_attention_key_mask_equals_removal():
    torch.manual_seed(0)
    rel = RelationAttention(16, 4)
    x, y = torch.randn(2, 3, 16), torch.randn(2, 6, 16)
    mask = torch.tensor([[True, True, False, True, False, False], [False, True, True, True, True, True]])
    padded = y.masked_fill(~mask[..., None], float("nan"))
    out = rel(x, padded, mask)
    for i in range(2):
        torch.testing.assert_close(out[i], rel(x[i : i + 1], y[i : i + 1, mask[i]])[0], rtol=1e-5, atol=1e-6)


def test_relation_attention_errors():
    rel = RelationAttention(16, 4)
    x, y = torch.randn(2, 3, 16), torch.randn(2, 5, 16)
    with pytest.raises(ValueError, match="keys width 8 != relation attention dim 16"):
        rel(x, torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match=r"queries must be \(B, N, C\)"):
        rel(x[0], y)
    with pytest.raises(ValueError, match="batch size"):
        rel(x, y[:1])
    with pytest.raises(ValueError, match="key_mask shape"):
        rel(x, y, torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"batch elements \[1\] have no valid key"):
        rel(x, y, torch.tensor([[True] * 5, [False] * 5]))


@pytest.mark.parametrize("name", PREDICTORS)
def test_gradients_reach_every_parameter(name):
    p = make(name).train()
    mask = torch.tensor([[True, True, False], [True, True, True]])
    p(torch.randn(2, 3, N, D_L), mask).square().sum().backward()
    missing = [n for n, x in p.named_parameters() if x.grad is None or not x.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize("name", PREDICTORS)
def test_deep_variant_shapes_masking_and_gradients(name):
    dims = (16, 16, 24, 40)
    p = make(name, deep_dims=dims).train()
    assert (p.support_dim, p.num_prompts, p.prompt_dims) == (D_L, NP, dims)
    support = torch.randn(2, 3, N, D_L)
    mask = torch.tensor([[True, False, True], [True, True, True]])
    out = p(support, mask)
    assert [o.shape for o in out] == [(2, NP, d) for d in dims]
    for o, alone in zip(out, p(support[:1, [0, 2]])):
        torch.testing.assert_close(o[:1], alone, rtol=1e-5, atol=1e-6)
    sum(o.square().sum() for o in out).backward()
    missing = [n for n, x in p.named_parameters() if x.grad is None or not x.grad.abs().sum() > 0]
    assert not missing
    assert len(p.projections) == len(dims)


def test_deep_variant_rejects_bad_widths():
    with pytest.raises(ValueError, match="at least one block width"):
        build_predictor("topk", D_L, D, deep_dims=())
    with pytest.raises(ValueError, match=r"prompt_dims\[1\] must be a positive integer"):
        build_predictor("topk", D_L, D, deep_dims=(16, 0))

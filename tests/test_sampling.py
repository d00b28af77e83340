"""Support-frame samplers: range, key-frame exclusion, boundary rule, determinism."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stpn.prompts.sampling import build_sampler, causal, per_video, sliding, train_bilateral

videos = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.tuples(st.integers(0, n - 1), st.just(n))
)
ks = st.integers(min_value=1, max_value=14)
strides = st.integers(min_value=1, max_value=32)


@settings(max_examples=300, deadline=None)
@given(videos, ks, strides)
def test_sliding_in_range_never_key_frame(tn, K, S):
    t, n = tn
    idx = sliding(K, S)(t, n)
    assert len(idx) == K
    assert all(0 <= i < n for i in idx)
    if n > 1:
        assert t not in idx


@settings(max_examples=300, deadline=None)
@given(videos, ks, strides)
def test_sliding_unclamped_offsets_match_paper(tn, K, S):
    t, n = tn
    idx = sliding(K, S)(t, n)
    past = [t - S * k for k in range((K + 1) // 2, 0, -1)]
    future = [t + S * k for k in range(1, K // 2 + 1)]
    for got, want in zip(idx, past + future):
        if 0 <= want < n:
            assert got == want  # in-range indices are exactly t ± S·k
        else:
            assert got in (0, 1, n - 1, n - 2)  # clamped to an end (or one step in)


@settings(max_examples=300, deadline=None)
@given(videos, ks, strides)
def test_causal_past_only(tn, K, S):
    t, n = tn
    idx = causal(K, S)(t, n)
    assert len(idx) == K and all(0 <= i < n for i in idx)
    if t == 0:
        assert idx == [0] * K  # no past: the key frame supports itself
    else:
        assert all(i < t for i in idx)
        assert idx == sorted(idx)


@settings(max_examples=300, deadline=None)
@given(videos, ks)
def test_per_video_spread_and_independent_of_t(tn, K):
    t, n = tn
    idx = per_video(K)(t, n)
    assert idx == per_video(K)(0, n)
    assert all(0 <= i < n for i in idx) and idx == sorted(idx)
    if K > 1:
        assert idx[0] == 0 and idx[-1] == n - 1


@settings(max_examples=300, deadline=None)
@given(videos, st.integers(1, 20), st.integers(0, 2**31 - 1))
def test_train_bilateral_one_each_side(tn, r, seed):
    t, n = tn
    past, future = train_bilateral(r)(t, n, random.Random(seed))
    if n == 1:
        assert (past, future) == (0, 0)
        return
    assert t not in (past, future)
    assert all(0 <= i < n and abs(i - t) <= r for i in (past, future))
    if t > 0 and t < n - 1:
        assert past < t < future


@settings(max_examples=300, deadline=None)
@given(videos, st.integers(1, 20), st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_train_bilateral_several_each_side(tn, r, per_side, seed):
    t, n = tn
    frames = train_bilateral(r, per_side)(t, n, random.Random(seed))
    assert len(frames) == 2 * per_side
    if n == 1:
        assert frames == [0] * len(frames)
        return
    assert t not in frames and all(0 <= i < n and abs(i - t) <= r for i in frames)
    past, future = frames[:per_side], frames[per_side:]
    if 0 < t < n - 1:
        assert max(past) < t < min(future)
        for side, available in ((past, min(r, t)), (future, min(r, n - 1 - t))):
            assert len(set(side)) == min(per_side, available)  # distinct while the side has enough


def test_train_bilateral_deterministic_with_seed():
    s = train_bilateral(9)
    assert s(50, 100, random.Random(3)) == s(50, 100, random.Random(3))


def test_boundary_examples():
    s = sliding(6, 8)
    assert s(25, 50) == [1, 9, 17, 33, 41, 49]
    assert s(0, 10) == [1, 1, 1, 8, 9, 9]  # clamp, step off the key frame, repeat
    assert s(0, 1) == [0] * 6


@pytest.mark.parametrize(
    "call",
    [lambda: sliding(0, 8), lambda: sliding(6, 0), lambda: per_video(0), lambda: build_sampler("bogus")],
)
def test_bad_parameters(call):
    with pytest.raises(ValueError):
        call()


def test_bad_index():
    with pytest.raises(ValueError, match="outside"):
        sliding()(10, 10)
    with pytest.raises(ValueError, match="length"):
        causal()(0, 0)

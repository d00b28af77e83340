"""Streaming extraction equals naive recomputation; each support embedding computed once."""
import pytest
import torch

from stpn.prompts.sampling import build_sampler
from stpn.prompts.streaming import StreamingExtractor, extract_naive
from tests.test_stpn import tiny_stpn


@pytest.fixture(scope="module")
def model():
    return tiny_stpn().eval()


@pytest.fixture(scope="module")
def frames():
    torch.manual_seed(1)
    return torch.rand(23, 3, 64, 64)


CASES = [("sliding", 4, 2), ("sliding", 3, 5), ("causal", 4, 3), ("per-video", 5, 1)]


@pytest.mark.parametrize("mode,k,s", CASES)
@pytest.mark.parametrize("batch_size", [1, 4])
def test_streaming_equals_naive(model, frames, mode, k, s, batch_size):
    naive = extract_naive(model, frames, mode, k, s)
    extractor = StreamingExtractor(model, mode, k, s, batch_size=batch_size)
    source = frames if mode == "per-video" else iter(frames)  # a real stream for the other modes
    out = list(extractor.run(source))
    assert [t for t, _ in out] == list(range(len(frames)))
    for (_, feats), ref in zip(out, naive):
        for a, b in zip(feats, ref):
            assert (a - b).abs().max() <= 1e-5
    assert len(extractor.embedded) == len(set(extractor.embedded))  # each at most once
    used = {i for t in range(len(frames)) for i in build_sampler(mode, k, s)(t, len(frames))}
    assert set(extractor.embedded) == used  # and only the ones some key frame needs


def test_cache_stays_bounded(model):
    frames = torch.rand(60, 3, 64, 64)
    extractor = StreamingExtractor(model, "sliding", num_support=4, stride=2)
    for _ in extractor.run(iter(frames)):
        pass
    assert extractor.max_cached <= 4 * 2 + 2  # the window span, not the video length


def test_short_videos(model):
    for n in (1, 2):
        frames = torch.rand(n, 3, 64, 64)
        ref = extract_naive(model, frames, "sliding", 4, 2)
        out = list(StreamingExtractor(model, "sliding", 4, 2).run(iter(frames)))
        assert len(out) == n
        torch.testing.assert_close(out[-1][1][0], ref[-1][0], rtol=0, atol=1e-5)


def test_errors(model):
    with pytest.raises(ValueError, match="no frames"):
        list(StreamingExtractor(model, "causal").run(iter([])))
    with pytest.raises(ValueError, match="whole video"):
        list(StreamingExtractor(model, "per-video").run(iter(torch.rand(3, 3, 64, 64))))
    with pytest.raises(ValueError, match="unknown mode"):
        StreamingExtractor(model, "future")


def test_prompts_from_other_frames(model, frames):
    own = list(StreamingExtractor(model, "per-video", 5).run(frames))
    same = list(StreamingExtractor(model, "per-video", 5).run(frames, prompt_frames=frames))
    other = torch.rand(9, 3, 64, 64)
    extractor = StreamingExtractor(model, "per-video", 5)
    borrowed = list(extractor.run(frames, prompt_frames=other))
    assert set(extractor.embedded) <= set(range(9))  # indices into the other frames
    ref = model(frames[:1], other[[0, 2, 4, 6, 8]][None])  # per-video support of a 9-frame video
    for a, b in zip(borrowed[0][1], ref):
        assert (a - b[0]).abs().max() <= 1e-5
    assert all(torch.equal(a, b) for (_, fa), (_, fb) in zip(own, same) for a, b in zip(fa, fb))
    assert (borrowed[0][1][0] - own[0][1][0]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="per-video"):
        list(StreamingExtractor(model, "sliding").run(iter(frames), prompt_frames=other))

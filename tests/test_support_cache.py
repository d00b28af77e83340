"""One support cache: computed at most once, in batches, evicted by the sampler rule; the
streaming extractor, SELSA and the online tracker all hold one."""
import pytest
import torch

from stpn.prompts.sampling import causal, sliding
from stpn.prompts.support_cache import SupportCache


class Recorder:
    """A compute function that returns ``index`` as a tensor and records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, indices):
        self.calls.append(list(indices))
        return torch.tensor(indices, dtype=torch.float32)[:, None]


def test_each_frame_is_computed_once_in_sorted_batches():
    compute = Recorder()
    cache = SupportCache(compute, batch_size=2)
    groups = cache.gather([[3, 1, 1], [4, 0]])
    assert [[float(x) for x in g] for g in groups] == [[3, 1, 1], [4, 0]]
    assert compute.calls == [[0, 1], [3, 4]]  # the union, sorted, in chunks of batch_size
    cache.gather([[1, 5]])
    assert compute.calls[-1] == [5] and cache.computed == [0, 1, 3, 4, 5] and cache.max_held == 5
    unbatched = SupportCache(Recorder())
    unbatched.gather([[2, 0], [1]])
    assert unbatched.compute.calls == [[0, 1, 2]]  # batch_size None: one call


def test_eviction_keeps_what_the_next_key_frame_can_ask_for():
    cache = SupportCache(Recorder())
    cache.gather([list(range(10))])
    sampler = sliding(4, 2)  # t - 4, t - 2, t + 2, t + 4
    assert cache.forget_before_key(sampler, 7, 20) == 3
    assert sorted(cache) == list(range(3, 10)) and 3 in cache and 2 not in cache and len(cache) == 7
    # the online tracker's rule: causal, keep frames >= t + 1 - S·K
    online = SupportCache()
    for t in range(12):
        online.put(t, torch.zeros(1))
        online.forget_before_key(causal(2, 3), t + 1, t + 2)
        assert min(online) == max(t + 1 - 6, 0)


def test_put_only_cache_names_missing_frames():
    cache = SupportCache()
    cache.put(0, torch.ones(2))
    assert torch.equal(cache.gather([[0, 0]])[0][1], torch.ones(2))
    with pytest.raises(KeyError, match=r"\[1\]"):
        cache.gather([[0, 1]])
    with pytest.raises(ValueError, match="batch_size"):
        SupportCache(Recorder(), batch_size=0)


def test_the_three_users_share_the_one_cache():
    from stpn.detection.selsa_cache import SupportRoICache
    from stpn.prompts.streaming import StreamingExtractor
    from stpn.tracking.online import OnlineTracker
    from tests.test_stpn import tiny_stpn
    from tests.tracking_fake import BrightSquareTracker, square_video

    extractor = StreamingExtractor(tiny_stpn().eval(), "causal", 2, 1)
    list(extractor.run(iter(torch.rand(4, 3, 64, 64))))
    assert isinstance(extractor.cache, SupportCache) and extractor.embedded == extractor.cache.computed
    assert isinstance(SupportRoICache(None, [], (64, 64)).cache, SupportCache)
    tracker = OnlineTracker(BrightSquareTracker(has_stpn=True), num_support=2, support_stride=1)
    tracker.init(square_video(length=1).frames[0], [6, 5, 12, 12])
    assert isinstance(tracker.support, SupportCache) and list(tracker.support) == [0]

"""Resumable sampler, per-sample seeding, batch moving, video sharding."""
import random
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np
import pytest
import torch
from torchvision.models.detection.image_list import ImageList

from stpn.engine.data import ResumableBatchSampler, SampleKey, SeededDataset, make_train_loader
from stpn.engine.device import move_to_device
from stpn.engine.rng import get_rng_state
from stpn.engine.sharding import evaluate_sharded, shard_indices
from tests.engine_tiny import NoisyRegression


def _batches(sampler, epoch):
    sampler.set_epoch(epoch)
    return [[k.index for k in b] for b in sampler]


def test_ranks_split_each_global_batch():
    single = _batches(ResumableBatchSampler(22, 4, seed=5, rank=0, world_size=1), 2)
    parts = [_batches(ResumableBatchSampler(22, 4, seed=5, rank=r, world_size=2), 2) for r in range(2)]
    assert len(single) == 5 and all(len(b) == 2 for p in parts for b in p)
    assert [a + b for a, b in zip(*parts)] == single
    flat = [i for b in single for i in b]
    assert len(set(flat)) == len(flat) == 20


def test_order_depends_on_seed_and_epoch_only():
    s = ResumableBatchSampler(30, 5, seed=1)
    assert _batches(s, 0) == _batches(ResumableBatchSampler(30, 5, seed=1), 0)
    assert _batches(s, 0) != _batches(s, 1)
    assert _batches(s, 0) != _batches(ResumableBatchSampler(30, 5, seed=2), 0)
    assert _batches(ResumableBatchSampler(30, 5, shuffle=False), 3)[0] == [0, 1, 2, 3, 4]


def test_skip_batches_resumes_mid_epoch_once():
    s = ResumableBatchSampler(30, 5, seed=1)
    full = _batches(s, 4)
    s.skip_batches(2)
    assert _batches(s, 4) == full[2:]
    assert _batches(s, 4) == full  # the skip applies to one iteration only
    with pytest.raises(ValueError, match="cannot skip"):
        s.skip_batches(7)


def test_sample_seeds_are_per_epoch_and_index():
    s = ResumableBatchSampler(10, 2, seed=0, shuffle=False)
    e0 = [k for b in s for k in b]
    s.set_epoch(1)
    e1 = [k for b in s for k in b]
    assert [k.index for k in e0] == [k.index for k in e1]
    assert len({k.seed for k in e0 + e1}) == 20


def test_seeded_dataset_is_deterministic_and_leaves_global_rng_alone():
    ds = SeededDataset(NoisyRegression(6))
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    before = get_rng_state(cuda=False)
    a = ds[SampleKey(3, 99)][0]
    after = get_rng_state(cuda=False)
    assert torch.equal(before["torch"], after["torch"]) and before["python"] == after["python"]
    assert before["numpy"] == after["numpy"]
    assert torch.equal(a, ds[SampleKey(3, 99)][0])
    assert not torch.equal(a, ds[SampleKey(3, 100)][0])


def test_loader_batches_do_not_depend_on_worker_count():
    ds = NoisyRegression(12)

    def epoch_batches(workers):
        loader = make_train_loader(ds, batch_size=3, seed=4, num_workers=workers)
        loader.batch_sampler.set_epoch(1)
        return [x for x, _ in loader]

    for a, b in zip(epoch_batches(0), epoch_batches(2)):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(num_samples=10, batch_size=3, world_size=2, rank=0), "multiple of world_size"),
        (dict(num_samples=10, batch_size=2, world_size=2, rank=2), "outside"),
        (dict(num_samples=3, batch_size=4), "no full batch"),
        (dict(num_samples=3, batch_size=None), "positive int"),
        (dict(num_samples=10, batch_size=2, world_size=2, rank=0, drop_last=False), "drop_last"),
    ],
)
def test_sampler_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResumableBatchSampler(**kwargs)


def test_shard_indices_keeps_videos_whole_and_balanced():
    lengths = [50, 3, 7, 20, 20, 1, 9, 30]
    parts = [shard_indices(lengths, r, 3) for r in range(3)]
    flat = sorted(i for p in parts for i in p)
    assert flat == list(range(len(lengths)))
    loads = [sum(lengths[i] for i in p) for p in parts]
    assert max(loads) - min(loads) <= max(lengths)
    assert evaluate_sharded(["a", "b", "c"], str.upper) == ["A", "B", "C"]
    with pytest.raises(ValueError, match="outside"):
        shard_indices(lengths, 3, 3)


class Pair(NamedTuple):
    a: torch.Tensor
    b: int


@dataclass
class Clip:
    images: ImageList
    support: Optional[torch.Tensor]
    meta: str


def test_move_to_device_keeps_structure():
    batch = (
        Clip(ImageList(torch.zeros(1, 3, 4, 4), [(4, 4)]), torch.ones(1, 2), "x"),
        [{"boxes": torch.zeros(0, 4)}],
        Pair(torch.ones(2), 3),
    )
    moved = move_to_device(batch, torch.device("cpu"))
    assert isinstance(moved, tuple) and isinstance(moved[0], Clip) and isinstance(moved[2], Pair)
    assert isinstance(moved[0].images, ImageList) and moved[0].images.image_sizes == [(4, 4)]
    assert moved[0].meta == "x" and moved[2].b == 3 and moved[1][0]["boxes"].shape == (0, 4)

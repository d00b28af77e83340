import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset
from stpn.engine.rng import seeded_rng
from stpn.tracking.crops import xywh_to_xyxy
from stpn.tracking.losses import box_losses, ordered_corners, score_loss
from stpn.tracking.pairs import PairSettings, TrackingPairs, collate_tracking, flip_box, pick_frames
from stpn.tracking.sequences import sequences_from_dataset

SIZE = 96


def square_video(name: str, length: int = 12, track_id: int = 1, hidden: tuple[int, ...] = ()) -> Video:
    """A white 16-px square moving right over black; absent on frames ``hidden``."""
    frames, annotations = [], []
    for t in range(length):
        image = np.zeros((SIZE, SIZE, 3), np.uint8)
        x, y = 20 + 3 * t, 30
        instances = []
        if t not in hidden:
            image[y:y + 16, x:x + 16] = 255
            instances = [Instance(track_id, 0, np.array([x, y, x + 16, y + 16], np.float32))]
        frames.append(image)
        annotations.append(FrameAnnotation(instances))
    return Video(name, frames, annotations, SIZE, SIZE)


def make_pairs(**overrides) -> TrackingPairs:
    videos = [square_video("a", hidden=(5,)), square_video("b", 10), square_video("c", 8)]
    base = dict(template_size=32, search_size=64, brightness_jitter=0.0, grayscale_prob=0.0, flip_prob=0.0)
    return TrackingPairs(sequences_from_dataset(VideoDataset(["square"], videos)), PairSettings(**{**base, **overrides}))


def test_sequences_mark_absent_frames_and_carry_boxes():
    seq = sequences_from_dataset(VideoDataset(["square"], [square_video("a", hidden=(0, 5))]))[0]
    assert not seq.visible[0] and not seq.visible[5] and seq.visible[4]
    assert torch.equal(seq.carried_box(5), seq.boxes[4])
    assert torch.equal(seq.carried_box(0), seq.boxes[1])  # before the first appearance: first box


def test_search_target_is_the_window_mapping_of_the_ground_truth():
    pairs = make_pairs()
    for index in range(6):
        item = pairs.sample(index, salt=11)
        info = item["info"]
        seq = pairs.sequences[index % len(pairs.sequences)]
        expected = info["window"].to_crop(xywh_to_xyxy(seq.boxes[info["search"]])).float()
        assert torch.allclose(item["box"], expected)
        cx, cy = ((item["box"][:2] + item["box"][2:]) / 2).tolist()
        assert 0 <= cx <= 1 and 0 <= cy <= 1  # the jitter keeps the centre inside
        # the crop is bright where the box says the square is
        x1, y1, x2, y2 = (item["box"].clamp(0, 1) * 64).tolist()
        centre = item["search"][:, int((y1 + y2) / 2), int((x1 + x2) / 2)]
        assert centre.min() > 1.5  # white, normalised


def test_template_crop_is_centred_and_twice_the_target():
    item = make_pairs().sample(0, salt=3)
    template = item["template"][0]
    assert template[16, 16] > 1.5 and template[2, 2] < 0  # object in the centre, black at the border
    bright = (template > 1.5).float()
    assert bright.sum(0).max() == pytest.approx(16, abs=1.5)  # 16-px square = half of a 2x crop


def test_flip_mirrors_crops_and_box():
    plain, flipped = make_pairs(flip_prob=0.0), make_pairs(flip_prob=1.0)
    a, b = plain.sample(4, salt=5), flipped.sample(4, salt=5)
    assert b["info"]["flip"] and not a["info"]["flip"]
    for key in ("template", "online_template", "search"):
        assert torch.allclose(a[key].flip(-1), b[key])
    assert torch.allclose(flip_box(a["box"]), b["box"])


def test_grayscale_makes_channels_equal_before_normalisation():
    item = make_pairs(grayscale_prob=1.0).sample(1)
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    raw = item["template"] * std + mean  # the template window lies inside the image (no padding)
    assert torch.allclose(raw[0], raw[1], atol=1e-5) and torch.allclose(raw[1], raw[2], atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(index=st.integers(0, 100), salt=st.integers(0, 2**31), stride=st.integers(1, 4), k=st.integers(1, 4))
def test_support_frames_come_before_the_search_frame(index, salt, stride, k):
    pairs = make_pairs(num_support=k, support_stride=stride, search_size=32, template_size=16)
    info = pairs.sample(index, salt)["info"]
    search, support = info["search"], info["support"]
    assert len(support) == k
    if search == 0:
        assert support == [0] * k  # no past at the first frame: the frame itself
    else:
        assert all(0 <= s < search for s in support) and support == sorted(support)


def test_support_crops_and_mask_shapes():
    item = make_pairs(num_support=3, support_stride=2).sample(2)
    assert item["support"].shape == (3, 3, 64, 64) and item["support_mask"].all()
    batch = collate_tracking([item, make_pairs(num_support=3, support_stride=2).sample(3)])
    assert batch.support.shape == (2, 3, 3, 64, 64) and batch.support_mask.shape == (2, 3)
    assert batch.search.shape == (2, 3, 64, 64) and batch.template.shape == (2, 3, 32, 32)


def test_sampling_is_deterministic_per_seed_and_index():
    pairs = make_pairs(num_support=2, brightness_jitter=0.2, flip_prob=0.5, grayscale_prob=0.5)
    a, b = pairs.sample(7, salt=1), pairs.sample(7, salt=1)
    for key in ("template", "online_template", "search", "support", "box", "label"):
        assert torch.equal(a[key], b[key])
    different = [pairs.sample(7, salt=s)["info"]["window"] for s in range(2, 6)]
    assert len({(w.x0, w.y0) for w in different}) > 1
    with seeded_rng(123):
        c = pairs[7]
    with seeded_rng(123):
        d = pairs[7]
    assert torch.equal(c["search"], d["search"])


def test_frames_are_visible_and_online_template_within_gap():
    pairs = make_pairs(max_gap=2)
    gen = torch.Generator().manual_seed(0)
    visible = pairs.sequences[0].visible_indices
    for _ in range(50):
        template, online, search = pick_frames(visible, 2, gen)
        assert {template, online, search} <= set(visible)
        assert abs(online - search) <= 2
        assert (online >= search) == (template >= search) or online == search


def test_negatives_are_labelled_zero_and_lie_off_target():
    pairs = make_pairs(negative_prob=1.0, off_target_share=0.5)
    kinds = set()
    for index in range(12):
        item = pairs.sample(index, salt=index)
        info = item["info"]
        kinds.add(info["negative"])
        assert item["label"] == 0.0
        if info["negative"] == "other_sequence":
            assert info["search_sequence"] != info["sequence"]
        else:  # the whole target is outside the crop
            x1, y1, x2, y2 = item["box"].tolist()
            assert x2 <= 0 or x1 >= 1 or y2 <= 0 or y1 >= 1
    assert kinds == {"other_sequence", "off_target"}
    positives = make_pairs(negative_prob=0.0)
    assert all(positives.sample(i)["label"] == 1.0 for i in range(6))


def test_bad_settings_and_data_are_named():
    with pytest.raises(ValueError, match="flip_prob"):
        PairSettings(flip_prob=2.0)
    with pytest.raises(ValueError, match="unknown pair settings"):
        PairSettings.from_dict({"serch_size": 3})
    with pytest.raises(ValueError, match="no training sequences"):
        TrackingPairs([])


def test_box_losses_match_the_definition():
    pred = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.2, 0.2]], requires_grad=True)
    target = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 1.4]])
    losses = box_losses(pred, target)
    clipped = target.clamp(0, 1)
    assert losses["loss_l1"].item() == pytest.approx(5.0 * (pred - clipped).abs().mean().item(), rel=1e-5)
    assert torch.equal(ordered_corners(pred)[1], torch.tensor([0.2, 0.2, 0.6, 0.6]))
    sum(losses.values()).backward()
    assert torch.isfinite(pred.grad).all()
    weighted = box_losses(pred, target, weight=torch.tensor([1.0, 0.0]))
    assert weighted["loss_giou"].item() == pytest.approx(0.0, abs=1e-5)  # only the perfect box counts
    bce = score_loss(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))["loss_score"]
    assert bce.item() == pytest.approx(np.log(2), rel=1e-5)

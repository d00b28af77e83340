"""Online tracking: box mapping, MixFormer's online-template rule, causal STPN support, errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stpn.metrics.got10k import frame_ious
from stpn.tracking.online import OnlineTracker
from stpn.tracking.sequence import track_video
from tests.tracking_fake import BrightSquareTracker, square_video

torch.set_num_threads(1)


def gt_xywh(video):
    return np.array([[b[0], b[1], b[2] - b[0], b[3] - b[1]] for b in (a.instances[0].box for a in video.annotations)])


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_follows_a_moving_square_and_maps_boxes_back_to_the_image():
    video = square_video(length=10)
    gt = gt_xywh(video)
    boxes, scores, times = track_video(BrightSquareTracker(), video.frames, gt[0])
    assert boxes.shape == (10, 4) and len(scores) == 10 and times.shape == (10,)
    assert scores[0] is None and all(0 < s < 1 for s in scores[1:])
    ious = frame_ious(boxes, gt, video.width, video.height)
    assert ious.min() > 0.8, ious


def test_boxes_are_clipped_to_the_image_with_a_margin():
    video = square_video(length=6, size=(40, 40), side=10, step=(8, 8))  # runs off the bottom-right
    boxes, _, _ = track_video(BrightSquareTracker(), video.frames, gt_xywh(video)[0], margin=4)
    x, y, w, h = boxes.T
    assert (x >= 0).all() and (y >= 0).all() and (x + w <= 40 + 1e-9).all() and (y + h <= 40 + 1e-9).all()
    assert (w >= 4 - 1e-9).all() and (h >= 4 - 1e-9).all()


def test_online_template_follows_the_best_confident_frame_of_each_interval():
    video = square_video(length=10)
    low = logit(0.1)
    # frames 1..9; interval 3: frame 2 wins the first interval, none is confident in the second
    # (back to the first template), none in the third (no change, no re-encoding)
    scores = [low, logit(0.9), logit(0.5), low, low, low, low, low, low]
    model = BrightSquareTracker(scores=scores)
    tracker = OnlineTracker(model, update_interval=3, score_decay=1.0)
    track_video(tracker, video.frames, gt_xywh(video)[0])
    assert tracker.template_updates == [(3, 2), (6, 0)]
    assert len(model.encoded) == 3  # init + two changes
    assert model.encoded[-1][1] is tracker.template


def test_score_decay_lets_a_later_slightly_weaker_frame_win():
    video = square_video(length=11)
    scores = [logit(0.9), 0.0, 0.0, 0.0, logit(0.86), 0.0, 0.0, 0.0, 0.0, 0.0]
    for decay, winner in ((1.0, 1), (0.98, 5)):
        tracker = OnlineTracker(BrightSquareTracker(scores=scores), update_interval=10, score_decay=decay)
        track_video(tracker, video.frames, gt_xywh(video)[0])
        assert tracker.template_updates == [(10, winner)]


def test_several_online_templates_fill_up_then_replace_the_oldest():
    video = square_video(length=9)
    high, low = logit(0.9), logit(0.1)
    model = BrightSquareTracker(scores=[high, low] * 4)
    tracker = OnlineTracker(model, update_interval=2, online_size=2)
    track_video(tracker, video.frames, gt_xywh(video)[0])
    assert tracker.template_updates == [(2, 1), (4, 3), (6, 5), (8, 7)]
    assert tracker.online_frames == [7, 5]
    assert model.encoded[-1][1].shape == (1, 2, 3, 16, 16)


def test_without_a_score_head_the_online_template_never_changes():
    video = square_video(length=8)
    model = BrightSquareTracker(with_score_head=False)
    tracker = OnlineTracker(model, update_interval=2)
    _, scores, _ = track_video(tracker, video.frames, gt_xywh(video)[0])
    assert scores == [None] * 8 and tracker.template_updates == [] and len(model.encoded) == 1


def test_stpn_support_is_causal_and_the_cache_is_bounded():
    video = square_video(length=14)
    model = BrightSquareTracker(has_stpn=True)
    tracker = OnlineTracker(model, num_support=2, support_stride=3)
    tracker.init(video.frames[0], gt_xywh(video)[0])
    seen = {}
    for t in range(1, 14):
        tracker.update(video.frames[t])
        seen[t] = list(tracker.support_indices)
        assert len(tracker.support) <= 2 * 3 and max(tracker.support) == t
    assert seen[1] == [0, 0] and seen[4] == [0, 1] and seen[7] == [1, 4] and seen[13] == [7, 10]
    assert model.embedded == 14  # every frame's search crop once (frame 0: around the initial box)
    assert all(s.shape[:2] == (1, 2) for s in model.prompt_calls)


def test_clear_errors():
    video = square_video(length=2)
    tracker = OnlineTracker(BrightSquareTracker())
    with pytest.raises(RuntimeError, match="before init"):
        tracker.update(video.frames[0])
    with pytest.raises(ValueError, match="zero or negative size"):
        tracker.init(video.frames[0], [5, 5, 0, 10])
    with pytest.raises(ValueError, match="outside"):
        tracker.init(video.frames[0], [500, 5, 10, 10])
    with pytest.raises(ValueError, match="uint8"):
        tracker.init(video.frames[0].astype(np.float32), [5, 5, 10, 10])
    with pytest.raises(ValueError, match="RGB"):
        tracker.init(video.frames[0][..., 0], [5, 5, 10, 10])
    tracker.init(video.frames[0], [5, 5, 10, 10])
    with pytest.raises(ValueError, match="differs from the first frame"):
        tracker.update(video.frames[1][:30])
    with pytest.raises(ValueError, match="update_interval"):
        OnlineTracker(BrightSquareTracker(), update_interval=0)


def test_real_tiny_mixformer_equals_recomputing_everything_every_frame():
    """Cached template memory + cached support embeddings give the boxes of a naive loop that
    crops every support frame again and runs the full forward pass on each frame."""
    from stpn.prompts.sampling import causal
    from stpn.tracking.build import build_mixformer
    from stpn.tracking.crops import clip_box_xywh, crop_images, crop_window, xyxy_to_xywh
    from stpn.tracking.online import normalise_image

    torch.manual_seed(0)
    model = build_mixformer("tiny", stpn=True, template_size=32, search_size=64).eval()
    video = square_video(length=9)
    tracker = OnlineTracker(model, update_interval=2, score_threshold=0.0, num_support=2, support_stride=2)
    tracker.init(video.frames[0], gt_xywh(video)[0])
    images = [normalise_image(f, torch.device("cpu")) for f in video.frames]
    search_crops = [crop_images(images[0], [crop_window(tracker.state, 5.0, 64)])]
    sampler = causal(2, 2)
    for t in range(1, 9):
        state, online = list(tracker.state), tracker.online_template
        box, score = tracker.update(video.frames[t])
        window = crop_window(state, 5.0, 64)
        search_crops.append(crop_images(images[t], [window]))
        support = torch.cat([search_crops[i] for i in sampler(t, t + 1)])[None]
        with torch.no_grad():
            out = model(tracker.template, online, search_crops[t], support=support, with_score=True)
        expected = clip_box_xywh(xyxy_to_xywh(window.to_image(out.boxes[0].double())), 64, 80, 10.0)
        assert np.allclose(box, expected.numpy(), atol=1e-4), t
        assert score == pytest.approx(float(torch.sigmoid(out.score_logits[0])), abs=1e-5)
    assert tracker.template_updates  # the online template did change along the way

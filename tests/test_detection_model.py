"""Video Faster R-CNN: the paper's parameter counts, losses, inference paths, errors."""
import pytest
import torch

from stpn.detection.build import build_vid_detector
from stpn.detection.clip_batch import make_clip_batch
from stpn.detection.inference import detect_video
from stpn.prompts.sampling import per_video

SWIN = dict(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), window_size=4, img_size=64)
HEADS = dict(anchor_sizes=(8, 16, 32, 64, 128), representation_size=32, rpn_batch_size_per_image=16,
             box_batch_size_per_image=16, rpn_pre_nms_top_n=(50, 50), rpn_post_nms_top_n=(20, 20))


def tiny(predictor="relation"):
    torch.manual_seed(0)
    return build_vid_detector(num_classes=3, predictor=predictor, fpn_channels=16, swin_kwargs=SWIN, **HEADS)


def count(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_match_the_paper():
    # paper §5.3: Faster R-CNN Swin-T baseline 44.90M, with the (released) predictor 45.01M
    assert abs(count(build_vid_detector(30, predictor=None)) / 1e6 - 44.90) <= 0.01
    assert abs(count(build_vid_detector(30, predictor="relation")) / 1e6 - 45.01) <= 0.01


@pytest.mark.parametrize("predictor", [None, "relation", "mixer"])
def test_training_losses_and_gradients(predictor):
    model = tiny(predictor).train()
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 96)]
    supports = [torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 96)]
    targets = [{"boxes": torch.tensor([[4.0, 4, 30, 40]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[10.0, 8, 50, 30], [0, 0, 20, 20]]), "labels": torch.tensor([2, 3])}]
    losses = model(make_clip_batch(images, supports), targets)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    sum(losses.values()).backward()
    if predictor is not None:
        assert all(p.grad is not None for p in model.extractor.predictor.parameters())


def test_detect_video_equals_batched_forward():
    model = tiny().eval()
    frames = torch.rand(6, 3, 64, 80)
    streamed = dict(detect_video(model, frames, mode="per-video", num_support=3, batch_size=6))
    support = frames[per_video(3)(0, 6)]
    with torch.no_grad():
        direct = model(make_clip_batch(list(frames), [support] * 6))
    for t in range(6):  # the strongest detections agree (weak ones may flip at the score threshold)
        top = streamed[t]["scores"].argsort(descending=True)[:10]
        ref = direct[t]["scores"].argsort(descending=True)[:10]
        torch.testing.assert_close(streamed[t]["scores"][top], direct[t]["scores"][ref], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(streamed[t]["boxes"][top], direct[t]["boxes"][ref], rtol=1e-4, atol=1e-3)


def test_baseline_detect_video_runs_on_a_stream():
    model = tiny(None).eval()
    out = list(detect_video(model, iter(torch.rand(3, 3, 64, 64)), batch_size=2))
    assert [t for t, _ in out] == [0, 1, 2] and set(out[0][1]) == {"boxes", "scores", "labels"}


def test_errors():
    model = tiny().train()
    batch = make_clip_batch([torch.rand(3, 64, 64)], [torch.rand(2, 3, 64, 64)])
    with pytest.raises(ValueError, match="targets are required"):
        model(batch)
    model.eval()
    with pytest.raises(ValueError, match="needs support frames"):
        model(make_clip_batch([torch.rand(3, 64, 64)]))
    with pytest.raises(ValueError, match="like its key frame"):
        make_clip_batch([torch.rand(3, 64, 64)], [torch.rand(2, 3, 32, 64)])
    with pytest.raises(ValueError, match="no frames"):
        list(detect_video(model, []))


def test_a_three_stage_backbone_gets_three_fpn_levels_and_four_anchor_sizes():
    three = dict(SWIN, depths=(1, 1, 2), num_heads=(1, 2, 2))
    heads = dict(HEADS, anchor_sizes=(8, 16, 32, 64))
    model = build_vid_detector(num_classes=3, predictor="relation", fpn_channels=16, swin_kwargs=three, **heads).train()
    assert model.roi_heads.box_roi_pool.featmap_names == ["0", "1", "2"]
    losses = model(make_clip_batch([torch.rand(3, 64, 64)], [torch.rand(2, 3, 64, 64)]),
                   [{"boxes": torch.tensor([[4.0, 4, 30, 40]]), "labels": torch.tensor([1])}])
    assert all(torch.isfinite(v) for v in losses.values())
    with pytest.raises(ValueError, match=r"one anchor size per FPN level \(4\), got 5"):
        build_vid_detector(num_classes=3, fpn_channels=16, swin_kwargs=three, **HEADS)

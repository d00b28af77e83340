"""SELSA and STPN + SELSA: parameters, training, support use and masking, inference paths, presets."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection.faster_rcnn import TwoMLPHead

from stpn.detection.build import build_vid_detector
from stpn.detection.cli import load_run_config
from stpn.detection.clip_batch import make_clip_batch
from stpn.detection.config import DetectorConfig, build_from_config
from stpn.detection.inference import detect_video, prepare_frame
from stpn.detection.run import load_detector, predict_dataset, train_detector
from stpn.detection.selsa import KeyRoIs, SelsaBoxHead, pack_support
from stpn.detection.selsa_cache import SupportRoICache
from stpn.detection.selsa_detector import SelsaFasterRCNN
from stpn.engine import TrainConfig
from stpn.prompts.sampling import per_video
from tests.test_detection_model import HEADS, SWIN, count
from tests.test_detection_train import moving_square_videos

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
SELSA = dict(selsa=True, selsa_heads=4, selsa_support_proposals=10)
TARGETS = [{"boxes": torch.tensor([[4.0, 4, 30, 40]]), "labels": torch.tensor([1])},
           {"boxes": torch.tensor([[10.0, 8, 50, 30], [0, 0, 20, 20]]), "labels": torch.tensor([2, 3])}]


def tiny(predictor="relation"):
    torch.manual_seed(0)
    return build_vid_detector(num_classes=3, predictor=predictor, fpn_channels=16, swin_kwargs=SWIN, **SELSA, **HEADS)


def detect(model, images, supports, masks=None):
    with torch.no_grad():
        return model.eval()(make_clip_batch(images, supports, masks))


def test_parameter_counts():
    # SELSA adds two relation modules of four 1024 × 1024 linears (with bias): 8,396,800
    added = 2 * 4 * (1024 * 1024 + 1024)
    selsa, stpn_selsa = (build_vid_detector(30, predictor=p, selsa=True) for p in (None, "relation"))
    assert count(selsa.roi_heads.box_head.aggregators) == added
    assert abs(count(selsa) / 1e6 - 53.30) <= 0.01  # 44.90M + 8.40M
    assert abs(count(stpn_selsa) / 1e6 - 53.41) <= 0.01  # 45.01M + 8.40M


@pytest.mark.parametrize("predictor", [None, "relation"])
def test_training_step_with_uneven_support(predictor):
    model = tiny(predictor).train()
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 96)]
    supports = [torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 96)]
    masks = [torch.tensor([True, True]), torch.tensor([True, False])]  # clip 1 has one support frame
    losses = model(make_clip_batch(images, supports, masks), TARGETS)
    assert set(losses) == {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    grads = [p.grad for p in model.roi_heads.box_head.aggregators.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_output_format_matches_the_plain_detector():
    torch.manual_seed(0)
    plain = build_vid_detector(num_classes=3, fpn_channels=16, swin_kwargs=SWIN, **HEADS).eval()
    images, supports = [torch.rand(3, 64, 64)], [torch.rand(2, 3, 64, 64)]
    ours, ref = detect(tiny(), images, supports)[0], detect(plain, images, supports)[0]
    assert set(ours) == set(ref) == {"boxes", "scores", "labels"}
    assert all(ours[k].dtype == ref[k].dtype and ours[k].shape[1:] == ref[k].shape[1:] for k in ref)


def test_support_frames_change_key_frame_scores():
    model, key = tiny(None), torch.rand(3, 64, 64)
    a = detect(model, [key], [torch.rand(2, 3, 64, 64)])[0]["scores"]
    b = detect(model, [key], [torch.rand(2, 3, 64, 64)])[0]["scores"]
    n = min(len(a), len(b), 10)
    assert n > 0 and not torch.allclose(a[:n], b[:n])


def test_masked_support_frames_are_ignored_and_clips_batch_independently():
    model = tiny()
    keys, frames = torch.rand(2, 3, 64, 64), torch.rand(3, 3, 64, 64)
    garbage = torch.rand(3, 64, 64)
    one = detect(model, [keys[1]], [frames[:1]])[0]  # clip 1 alone, one support frame
    both = detect(model, [keys[0]], [frames[1:]])[0]
    batched = detect(model, list(keys), [frames[1:], torch.stack([frames[0], garbage])],
                     [torch.tensor([True, True]), torch.tensor([True, False])])
    for alone, together in ((both, batched[0]), (one, batched[1])):
        torch.testing.assert_close(together["scores"][:10], alone["scores"][:10], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(together["boxes"][:10], alone["boxes"][:10], rtol=1e-4, atol=1e-3)
    unmasked = detect(model, list(keys), [frames[1:], torch.stack([frames[0], garbage])])[1]
    assert not torch.allclose(unmasked["scores"][:10], one["scores"][:10])  # the mask did matter


def test_head_without_support_is_torchvision_two_mlp_head():
    torch.manual_seed(0)
    head, plain = SelsaBoxHead(16 * 7 * 7, 32, num_heads=4), TwoMLPHead(16 * 7 * 7, 32)
    plain.load_state_dict(head.state_dict(), strict=False)
    pooled = torch.rand(5, 16, 7, 7)
    torch.testing.assert_close(head(pooled), plain(pooled))
    support = pack_support([[], [head.support_features(torch.rand(4, 16, 7, 7))]])
    assert support.mask.tolist() == [[False] * 4, [True] * 4]
    out = head(KeyRoIs(pooled, [2, 3], support))  # image 0 has no support RoI: plain head
    torch.testing.assert_close(out[:2], plain(pooled[:2]))
    assert not torch.allclose(out[2:], plain(pooled[2:]))
    assert pack_support([[], []]) is None


def test_detect_video_equals_batched_forward():
    model = tiny().eval()
    frames = torch.rand(6, 3, 64, 80)
    streamed = dict(detect_video(model, frames, mode="per-video", num_support=3, batch_size=4))
    direct = detect(model, list(frames), [frames[per_video(3)(0, 6)]] * 6)
    for t in range(6):
        top = streamed[t]["scores"].argsort(descending=True)[:10]
        ref = direct[t]["scores"].argsort(descending=True)[:10]
        torch.testing.assert_close(streamed[t]["scores"][top], direct[t]["scores"][ref], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(streamed[t]["boxes"][top], direct[t]["boxes"][ref], rtol=1e-4, atol=1e-3)


def test_sliding_stream_computes_each_support_frame_once():
    model = tiny(None).eval()
    frames = torch.rand(7, 3, 64, 64)
    out = list(detect_video(model, iter(frames), mode="sliding", num_support=2, stride=2, batch_size=2))
    assert [t for t, _ in out] == list(range(7))
    cache = SupportRoICache(model, [prepare_frame(f) for f in frames], (64, 64), "sliding", 2, 2, batch_size=3)
    for keys in ([0, 1], [2, 3], [4, 5], [6]):
        supports = cache.for_keys(keys)
        assert [len(s) for s in supports] == [2] * len(keys) and supports[0][0].shape[:1] == (2,)
    assert sorted(cache.computed) == sorted(set(cache.computed)) == list(range(7))
    with pytest.raises(ValueError, match="unknown mode"):
        SupportRoICache(model, [], (64, 64), "train")


def test_errors():
    model = tiny().eval()
    with pytest.raises(ValueError, match="needs support frames"):
        model(make_clip_batch([torch.rand(3, 64, 64)]))
    with pytest.raises(ValueError, match="SELSA RoI heads"):
        plain = build_vid_detector(num_classes=3, fpn_channels=16, swin_kwargs=SWIN, **HEADS)
        SelsaFasterRCNN(plain.extractor, plain.neck, plain.rpn, plain.roi_heads)


def test_presets_parse_and_old_configs_load():
    names = sorted(p.name for p in CONFIGS.glob("vid_*.yaml"))  # the detector presets
    assert {"vid_swin_t_stpn_selsa.yaml", "vid_swin_b_stpn_selsa.yaml", "vid_swin_t_selsa.yaml"} <= set(names)
    for name in names:
        config = DetectorConfig.from_dict(load_run_config(CONFIGS / name)["detector"])
        assert len(config.class_names) == 30
        assert config.selsa == ("selsa" in name) and config.selsa_heads == 16
        assert (config.predictor is not None) == ("stpn" in name)
    assert DetectorConfig.from_dict({"class_names": ["a"]}).selsa is False  # run dirs before SELSA


def test_train_reload_and_predict(tmp_path):
    torch.manual_seed(0)
    config = DetectorConfig(class_names=["square", "bar"], predictor="relation", fpn_channels=16,
                            swin_kwargs=SWIN, head_kwargs=HEADS, **SELSA)
    model = build_from_config(config)
    assert isinstance(model, SelsaFasterRCNN)
    train_cfg = TrainConfig(lr=1e-4, max_iters=2, batch_size=2, log_every=1, progress=False)
    history = train_detector(model, config, moving_square_videos(), train_cfg, tmp_path / "run")
    assert len(history.losses) == 2 and all(np.isfinite(history.losses))
    loaded, loaded_config = load_detector(tmp_path / "run")
    assert loaded_config == config and loaded.uses_selsa
    detections, fps = predict_dataset(loaded, moving_square_videos(1), num_support=3, progress=False)
    assert [d["frame_index"] for d in detections] == list(range(6)) and fps > 0

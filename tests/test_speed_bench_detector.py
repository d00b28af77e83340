"""benchmarks/bench_detector on a tiny Swin: the two detectors share every module but the
prompt predictor, and the per-video timing counts the support pass once per video."""
import torch

from benchmarks.bench_detector import build_detectors, detector_ratios, video_seconds

TINY = dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=4)


def test_detectors_share_backbone_and_heads():
    plain, stpn = build_detectors(TINY)
    assert not plain.uses_prompts and stpn.uses_prompts
    assert plain.extractor is stpn.extractor.backbone
    assert plain.roi_heads is stpn.roi_heads and plain.rpn is stpn.rpn and plain.neck is stpn.neck


def test_video_seconds_adds_later_frames_to_the_first():
    assert video_seconds(2.0, 0.5, 1) == 2.0
    assert video_seconds(2.0, 0.5, 5) == 4.0


def test_ratios_for_each_length():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            out = detector_ratios([3, 5], 64, timed=2, repeats=1, swin_kwargs=TINY)
    finally:
        torch.set_num_threads(threads)
    assert set(out) == {3, 5}
    for r in out.values():
        assert r["per-frame"] > 0 and r["per-video"] > 0
        assert abs(r["ratio"] - r["per-frame"] / r["per-video"]) < 1e-12

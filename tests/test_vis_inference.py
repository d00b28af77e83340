"""Video inference (stpn.vis.video_inference) with a tiny fake segmenter of the VIS model's API."""
import pytest
import torch
from torch import nn

from stpn.detection.inference import prepare_frame
from stpn.prompts.sampling import build_sampler
from stpn.prompts.settings import InferenceSettings
from stpn.vis.association import associate
from stpn.vis.video_inference import associate_frames, segment_frames
from tests.test_stpn import tiny_stpn


class FakeSegmenter(nn.Module):
    """The VIS model's API on a tiny prompt-aware Swin: ``features`` (stage maps, each scaled
    by 2 so a caller that bypasses it is caught), ``decode`` (queries dotted with stride-4 pixel
    features; embeddings and class logits depend on the frame), ``stpn``, ``class_names``."""

    def __init__(self, with_stpn: bool, num_queries: int = 6, class_names=("cat", "dog", "fish")):
        super().__init__()
        stpn = tiny_stpn()
        self.stpn = stpn if with_stpn else None
        self.backbone = stpn.backbone
        self.class_names, self.num_classes = list(class_names), len(class_names)
        torch.manual_seed(3)
        channels = [info["num_chs"] for info in self.backbone.feature_info]
        self.pixel = nn.Conv2d(channels[0], 8, 1)
        self.queries = nn.Parameter(torch.randn(num_queries, 8))
        self.context = nn.Linear(channels[-1], 8)
        self.classes = nn.Linear(8, self.num_classes + 1)

    def features(self, images, prompts=None):
        return [2 * m for m in self.backbone.forward_features(images, prompts)]

    def decode(self, features):
        context = self.context(features[-1].mean((2, 3)))  # (B, 8)
        embeddings = self.queries[None] + context[:, None]  # (B, Q, 8)
        pixels = self.pixel(features[0])  # (B, 8, H/4, W/4)
        return {"class_logits": self.classes(embeddings), "query_embeddings": embeddings,
                "mask_logits": torch.einsum("bqc,bchw->bqhw", embeddings, pixels)}


@pytest.fixture(scope="module")
def frames():
    torch.manual_seed(5)
    return list(torch.rand(7, 3, 40, 56))  # 40 x 56: padded to 64 x 64


def reference_instances(model, frames, out_size, prompts_for=None):
    """Frame by frame: prepare, features (with the prompts ``prompts_for(t)``), decode, associate."""
    outputs = []
    with torch.no_grad():
        for t, frame in enumerate(frames):
            prompts = None if prompts_for is None else prompts_for(t)
            outputs.append(model.decode(model.features(prepare_frame(frame)[None], prompts=prompts)))
    stacked = {k: torch.cat([o[k] for o in outputs]) for k in outputs[0]}
    return associate(stacked["class_logits"], stacked["mask_logits"], stacked["query_embeddings"], out_size,
                     image_size=(40, 56), padded_size=(64, 64))


def assert_same_instances(ours, expected):
    assert [i.category for i in ours] == [i.category for i in expected]
    assert [i.score for i in ours] == pytest.approx([i.score for i in expected], abs=1e-5)
    for a, b in zip(ours, expected):
        assert a.masks.shape == b.masks.shape
        assert (a.masks != b.masks).float().mean() < 1e-3  # float rounding at the threshold only


def test_plain_model_equals_frame_by_frame_reference_and_reports_progress(frames):
    model = FakeSegmenter(with_stpn=False).eval()
    seen = []
    ours = segment_frames(model, frames, InferenceSettings(batch_size=3), out_size=(80, 112),
                          device=torch.device("cpu"), progress=seen.append)
    assert seen == list(range(7))
    assert len(ours) == 10 and ours[0].masks.shape == (7, 80, 112) and ours[0].masks.dtype == torch.bool
    assert 0 < sum(i.masks.sum() for i in ours) < 10 * 7 * 80 * 112  # neither empty nor full
    assert_same_instances(ours, reference_instances(model, frames, (80, 112)))


@pytest.mark.parametrize("mode", ["sliding", "causal", "per-video"])
def test_stpn_model_uses_prompts_from_the_settings_support_frames(frames, mode):
    model = FakeSegmenter(with_stpn=True).eval()
    settings = InferenceSettings(mode=mode, num_support=3, stride=2, batch_size=2)
    sampler = build_sampler(mode, 3, 2)
    prepared = [prepare_frame(f) for f in frames]

    def prompts_for(t):
        key = 0 if mode == "per-video" else t  # per-video: one prompt set for the whole video
        embeddings = model.stpn.embed_frames(torch.stack([prepared[i] for i in sampler(key, len(frames))]))
        return model.stpn.predict_prompts(embeddings[None])

    stream = iter(frames) if mode != "per-video" else frames  # a stream works in the online modes
    ours = segment_frames(model, stream, settings)
    assert ours[0].masks.shape == (7, 40, 56)
    assert_same_instances(ours, reference_instances(model, frames, (40, 56), prompts_for))
    plain = reference_instances(model, frames, (40, 56))
    assert [i.score for i in ours] != pytest.approx([i.score for i in plain], abs=1e-4)  # prompts matter


def test_bf16_runs_and_gives_float_scores(frames):
    model = FakeSegmenter(with_stpn=True).eval()
    video = associate_frames(model, frames[:3], InferenceSettings(mode="causal", num_support=2, stride=1), bf16=True)
    assert video.association.class_logits[0].dtype == torch.float32
    assert video.image_size == (40, 56) and video.padded_size == (64, 64)
    instances = video.instances((40, 56), top_k=4)
    assert len(instances) == 4 and all(0 <= i.score <= 1 for i in instances)


def test_empty_video_and_bad_decode_are_errors(frames):
    model = FakeSegmenter(with_stpn=False).eval()
    with pytest.raises(ValueError, match="no frames"):
        segment_frames(model, [])
    with pytest.raises(ValueError, match="no frames"):
        segment_frames(model, iter([]))
    model.decode = lambda features: {"class_logits": torch.zeros(1, 2, 3)}
    with pytest.raises(ValueError, match="'mask_logits'"):
        segment_frames(model, frames[:1])


# --- evaluation (stpn.vis.evaluate) ------------------------------------------------------------

@pytest.fixture(scope="module")
def benchmark():
    from stpn.data.synthetic import generate_dataset

    return generate_dataset(2, num_frames=6, size=48, seed=2)


def test_ground_truth_is_what_the_ytvis_writer_writes(benchmark, tmp_path):
    import json

    from stpn.data.formats.ytvis import write_ytvis
    from stpn.metrics.ytvis import ytvis_stats
    from stpn.vis.evaluate import ytvis_ground_truth

    write_ytvis(benchmark.videos, benchmark.categories, tmp_path, "valid")
    written = json.loads((tmp_path / "valid.json").read_text())
    gt = ytvis_ground_truth(benchmark)
    assert gt["annotations"] == written["annotations"] and len(gt["annotations"]) >= 2
    assert [v["file_names"] for v in gt["videos"]] == [v["file_names"] for v in written["videos"]]
    oracle = [{"video_id": a["video_id"], "category_id": a["category_id"], "score": 1.0,
               "segmentations": a["segmentations"]} for a in gt["annotations"]]
    assert ytvis_stats(gt, oracle)["AP"] == pytest.approx(1.0)


def test_evaluate_vis_scores_the_results_it_returns(benchmark):
    from stpn.metrics.ytvis import ytvis_stats
    from stpn.vis.evaluate import evaluate_vis, ytvis_ground_truth

    model = FakeSegmenter(with_stpn=True, class_names=benchmark.categories).eval()
    settings = InferenceSettings(mode="sliding", num_support=2, stride=1)
    report, results = evaluate_vis(model, benchmark, settings, video_ids=[5, 9], progress=False)
    assert len(results) == 20 and {r["video_id"] for r in results} == {5, 9}
    assert all(len(r["segmentations"]) == 6 and r["segmentations"][0]["size"] == [48, 48] for r in results)
    assert all(1 <= r["category_id"] <= len(benchmark.categories) for r in results)
    expected = ytvis_stats(ytvis_ground_truth(benchmark, [5, 9]), results)
    assert {k: report[k] for k in expected} == pytest.approx(expected, nan_ok=True)
    assert report["fps"] > 0 and report["num_frames"]["all"] == 12
    assert 0 <= report["AP50_degraded"] <= 1 or report["num_frames"]["degraded"] == 0


def test_model_classes_must_match_the_dataset(benchmark):
    from stpn.vis.evaluate import evaluate_vis

    with pytest.raises(ValueError, match="but the model predicts"):
        evaluate_vis(FakeSegmenter(with_stpn=False), benchmark, progress=False)


def test_keep_frames_masks_the_other_frames_and_drops_empty_tracks():
    from stpn.vis.evaluate import keep_frames

    rle = {"size": [2, 2], "counts": "04"}
    gt = {"categories": [], "videos": [{"id": 1, "file_names": ["a", "b"]}, {"id": 2, "file_names": ["c"]}],
          "annotations": [{"video_id": 1, "segmentations": [rle, None]}, {"video_id": 1, "segmentations": [None, rle]},
                          {"video_id": 2, "segmentations": [rle]}]}
    results = [{"video_id": 1, "segmentations": [rle, rle]}, {"video_id": 2, "segmentations": [rle]}]
    kept_gt, kept_results = keep_frames(gt, results, {1: {1}})
    assert [a["segmentations"] for a in kept_gt["annotations"]] == [[None, rle]]
    assert [v["id"] for v in kept_gt["videos"]] == [1]
    assert kept_results == [{"video_id": 1, "segmentations": [None, rle]}]
    assert results[0]["segmentations"] == [rle, rle]  # inputs untouched


def test_the_real_tiny_segmenter_runs_through_inference_and_evaluation(benchmark):
    """The real model's API is the one the inference code is written against."""
    from stpn.vis import model as model_module
    from stpn.vis.evaluate import evaluate_vis

    torch.manual_seed(0)
    swin = dict(embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))
    head = dict(hidden_dim=64, num_queries=10, num_heads=4, dim_feedforward=128, decoder_layers=2,
                encoder_layers=1, encoder_feedforward_dim=128, train_num_points=1024)
    for predictor in (None, "relation"):
        model = model_module.build_vis_model(benchmark.categories, predictor=predictor, swin_kwargs=swin,
                                             head_kwargs=head).eval()
        settings = InferenceSettings(mode="sliding", num_support=2, stride=1, batch_size=2)
        frames = [torch.rand(3, 40, 56) for _ in range(3)]
        instances = segment_frames(model, frames, settings, out_size=(20, 28))
        assert len(instances) == 10 and instances[0].masks.shape == (3, 20, 28)
        report, results = evaluate_vis(model, benchmark, settings, progress=False)
        assert 0 <= report["AP"] <= 1 and len(results) == 20

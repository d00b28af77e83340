"""Test-time settings: one default site, saved with every detector run, read back by
`stpn eval` / `stpn detect` / `predict_dataset`, overridden by the config's `eval` and the flags."""
import inspect
import json

import pytest
import torch
import yaml
from safetensors.torch import save_file

import stpn.detection.inference as inference
import stpn.detection.run as run
from stpn.cli import main
from stpn.data.formats import write_dataset
from stpn.data.synthetic import CATEGORIES, iter_videos
from stpn.data.video import VideoWriter, read_video, shipped_clip_path
from stpn.detection.config import DetectorConfig, build_from_config
from stpn.detection.run_files import DETECTOR_FILE, load_inference_settings, read_detector_file, write_detector_file
from stpn.detection.selsa_cache import SupportRoICache
from stpn.prompts import sampling
from stpn.prompts.settings import DEFAULT_INFERENCE, InferenceSettings
from stpn.prompts.streaming import StreamingExtractor, extract_naive
from tests.test_detection_model import HEADS, SWIN

DETECTOR = {"class_names": list(CATEGORIES), "predictor": "relation", "fpn_channels": 16, "swin_kwargs": SWIN,
            "head_kwargs": HEADS}


def defaults(func, *names):
    params = inspect.signature(func).parameters
    return tuple(params[n].default for n in names)


def test_one_default_site():
    d = DEFAULT_INFERENCE
    assert (d.mode, d.num_support, d.stride, d.test_size, d.batch_size) == ("per-video", 14, 8, None, 4)
    for func in (StreamingExtractor, extract_naive, SupportRoICache, inference.detect_video):
        assert defaults(func, "mode", "num_support", "stride") == (d.mode, d.num_support, d.stride), func
    assert defaults(SupportRoICache, "batch_size") == defaults(inference.detect_video, "batch_size") == (d.batch_size,)
    for func in (sampling.sliding, sampling.causal, sampling.build_sampler):
        assert defaults(func, "K", "S") == (d.num_support, d.stride)
    assert defaults(sampling.per_video, "K") == (d.num_support,)
    assert defaults(run.predict_dataset, "settings") == (d,)


def test_override_and_checks():
    s = InferenceSettings(test_size=600)
    assert s.override(mode=None, num_support=3) == InferenceSettings(num_support=3, test_size=600)
    assert s.override(test_size=0).test_size is None  # 0: the frames' own resolution
    assert InferenceSettings(mode="per_video").mode == "per-video"
    with pytest.raises(ValueError, match="unknown mode 'future'"):
        InferenceSettings(mode="future")
    with pytest.raises(ValueError, match="num_support must be a positive integer"):
        s.override(num_support=0)
    with pytest.raises(ValueError, match="x.json: unknown keys \\['test_sise'\\]"):
        InferenceSettings.from_dict({"test_sise": 600}, "x.json")
    with pytest.raises(ValueError, match="x.json: `stride` must be an integer, got '8' \\(str\\)"):
        InferenceSettings.from_dict({"stride": "8"}, "x.json")
    assert InferenceSettings.from_dict(s.to_dict()) == s


def make_run(path, inference_settings=None):
    """A run directory with an untrained tiny detector (no training needed to test the files)."""
    path.mkdir(parents=True, exist_ok=True)
    config = DetectorConfig.from_dict(DETECTOR)
    torch.manual_seed(0)
    save_file(build_from_config(config).state_dict(), str(path / "model.safetensors"))
    if inference_settings is None:  # a detector.json from before the settings were saved
        (path / DETECTOR_FILE).write_text(json.dumps(config.to_dict()))
    else:
        write_detector_file(path, config, inference_settings)
    return path


def test_detector_file_round_trip_and_old_files(tmp_path):
    saved = InferenceSettings(mode="sliding", num_support=4, stride=2, test_size=600)
    config, settings = read_detector_file(make_run(tmp_path / "new", saved))
    assert settings == saved and config.class_names == list(CATEGORIES)
    assert load_inference_settings(tmp_path / "new" / "model.safetensors") == saved
    assert load_inference_settings(make_run(tmp_path / "old")) == DEFAULT_INFERENCE
    model, _ = run.load_detector(tmp_path / "old")  # old files still load
    data = json.loads((tmp_path / "new" / DETECTOR_FILE).read_text())
    data["inference"]["mode"] = 3
    (tmp_path / "new" / DETECTOR_FILE).write_text(json.dumps(data))
    with pytest.raises(ValueError, match="detector.json `inference`: `mode` must be a string"):
        load_inference_settings(tmp_path / "new")


def spy(monkeypatch, module, name):
    calls = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def spy_frames(monkeypatch):
    """Record detect_video's settings and the shape of every frame it consumes."""
    calls = []
    real = inference.detect_video

    def wrapper(model, frames, *args, **kwargs):
        shapes = []
        calls.append((args, shapes))

        def recorded():
            for f in frames:
                shapes.append(tuple(f.shape))
                yield f

        source = list(recorded()) if not hasattr(frames, "__next__") else recorded()
        return real(model, source, *args, **kwargs)

    monkeypatch.setattr(inference, "detect_video", wrapper)
    return calls


def test_detect_runs_with_the_saved_settings(tmp_path, monkeypatch):
    saved = InferenceSettings(mode="sliding", num_support=2, stride=1, test_size=32, batch_size=2)
    run_dir = make_run(tmp_path / "run", saved)
    clip = tmp_path / "clip.mp4"
    with VideoWriter(clip, 10, (64, 48)) as w:
        for f in read_video(shipped_clip_path("bikes.mp4"), max_frames=4, resize=(64, 48)):
            w.write(f)
    calls = spy_frames(monkeypatch)
    assert main(["detect", str(clip), "--checkpoint", str(run_dir), "--json", str(tmp_path / "a.json"),
                 "--score-thresh", "0"]) == 0
    (mode, k, s, batch), shapes = calls[0]
    assert (mode, k, s, batch) == ("sliding", 2, 1, 2) and set(shapes) == {(3, 32, 43)}
    assert main(["detect", str(clip), "--checkpoint", str(run_dir), "--test-size", "0", "--mode", "causal",
                 "--num-support", "3"]) == 0
    (mode, k, s, batch), shapes = calls[1]
    assert (mode, k, s) == ("causal", 3, 1) and set(shapes) == {(3, 48, 64)}
    boxes = [b for f in json.loads((tmp_path / "a.json").read_text())["frames"] for b in f["boxes"]]
    assert boxes and max(max(b) for b in boxes) > 32  # boxes are back in the 64 × 48 frame's pixels


def test_eval_applies_stored_then_config_then_flags(tmp_path, monkeypatch):
    root = tmp_path / "data"
    write_dataset(iter_videos(1, num_frames=4, size=64, seed=1), CATEGORIES, root, "cocovid", "val")
    run_dir = make_run(tmp_path / "run", InferenceSettings(mode="sliding", num_support=2, stride=1, test_size=48))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"detector": {**DETECTOR, "head_kwargs": {k: list(v) if isinstance(v, tuple) else v
                                                                            for k, v in HEADS.items()}},
                                   "data": {"root": str(root), "format": "cocovid", "val_splits": ["val"]},
                                   "eval": {"num_support": 3}}))
    calls = spy(monkeypatch, run, "predict_dataset")
    assert main(["eval", "--config", str(cfg), "--checkpoint", str(run_dir)]) == 0
    assert calls[0][1]["settings"] == InferenceSettings(mode="sliding", num_support=3, stride=1, test_size=48)
    assert main(["eval", "--config", str(cfg), "--checkpoint", str(run_dir), "--mode", "causal", "--stride", "2"]) == 0
    assert calls[1][1]["settings"] == InferenceSettings(mode="causal", num_support=3, stride=2, test_size=48)


def test_predict_dataset_reads_the_settings_and_overrides(monkeypatch):
    from stpn.data.types import VideoDataset

    dataset = VideoDataset(list(CATEGORIES), list(iter_videos(1, num_frames=3, size=64, seed=0)))
    calls = spy(monkeypatch, run, "detect_video")
    model = build_from_config(DetectorConfig.from_dict(DETECTOR))
    run.predict_dataset(model, dataset, progress=False)
    assert calls[0][0][2:6] == ("per-video", 14, 8, 4)
    run.predict_dataset(model, dataset, num_support=2, progress=False, test_size=32,
                        settings=InferenceSettings(mode="causal", stride=3))
    assert calls[1][0][2:6] == ("causal", 2, 3, 4) and calls[1][0][1][0].shape == (3, 32, 32)

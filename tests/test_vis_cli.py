"""``stpn eval-vis`` and ``stpn segment`` (stpn.vis.segment_cli) with a fake ``load_vis_run``."""
import argparse
import json
import sys
import types

import numpy as np
import pytest

from stpn.data.formats.ytvis import write_ytvis
from stpn.data.formats.ytvis_results import read_ytvis_results
from stpn.data.synthetic import generate_dataset
from stpn.data.video import VideoReader, VideoWriter, read_video
from stpn.prompts.settings import InferenceSettings
from stpn.vis.overlay import draw_instances
from stpn.vis.segment_cli import add_vis_eval_commands, run_vis_eval_command
from tests.test_vis_inference import FakeSegmenter


@pytest.fixture(scope="module")
def benchmark():
    return generate_dataset(2, num_frames=5, size=48, seed=4)


@pytest.fixture
def fake_run(monkeypatch, benchmark):
    """``stpn.vis.checkpoint.load_vis_run`` returning a fake STPN segmenter (sliding mode saved)."""
    loaded = {}

    def load_vis_run(path, device=None):
        if "other-task" in str(path):
            raise ValueError(f"{path}: not a video instance segmentation run file")
        loaded["path"], loaded["device"] = path, device
        model = FakeSegmenter(with_stpn=True, class_names=loaded.get("classes", benchmark.categories)).eval()
        return model, types.SimpleNamespace(inference=InferenceSettings(mode="sliding", num_support=2, stride=1))

    monkeypatch.setitem(sys.modules, "stpn.vis.checkpoint", types.SimpleNamespace(load_vis_run=load_vis_run))
    return loaded


def run_cli(*argv):
    parser = argparse.ArgumentParser()
    add_vis_eval_commands(parser.add_subparsers(dest="command"))
    return run_vis_eval_command(parser.parse_args([str(a) for a in argv]))


@pytest.fixture
def clip(tmp_path, benchmark):
    path = tmp_path / "clip.mp4"
    with VideoWriter(path, 10, (48, 48)) as writer:
        for frame in benchmark.videos[0].frames:
            writer.write(frame)
    return path


def test_segment_writes_an_annotated_video_and_ytvis_tracks(fake_run, clip, tmp_path, capsys, benchmark):
    out, js = tmp_path / "annotated.mp4", tmp_path / "tracks.json"
    assert run_cli("segment", clip, "--checkpoint", tmp_path, "--out", out, "--json", js, "--score-thresh", "0",
                   "--device", "cpu") == 0
    printed = capsys.readouterr().out
    assert "frames/s (sliding mode)" in printed and str(out) in printed
    annotated, original = read_video(out), read_video(clip)
    assert len(annotated) == len(original) == 5 and annotated[0].shape == (48, 48, 3)
    assert np.abs(annotated[0].astype(int) - original[0].astype(int)).mean() > 5  # masks drawn on it
    tracks = json.loads(js.read_text())
    assert len(tracks) == 10 and [t["score"] for t in tracks] == sorted((t["score"] for t in tracks), reverse=True)
    assert all(len(t["segmentations"]) == 5 and t["segmentations"][0]["size"] == [48, 48] for t in tracks)
    assert all(t["category_name"] == benchmark.categories[t["category_id"] - 1] for t in tracks)
    assert read_ytvis_results(js) == tracks  # a valid results file
    assert fake_run["device"].type == "cpu"


def test_segment_per_video_mode_and_a_high_threshold_draws_nothing(fake_run, clip, tmp_path, capsys):
    out = tmp_path / "plain.mp4"
    assert run_cli("segment", clip, "--checkpoint", tmp_path, "--out", out, "--mode", "per-video",
                   "--score-thresh", "1", "--top-k", "3") == 0
    assert "(per-video mode)" in capsys.readouterr().out
    with VideoReader(out) as reader:
        assert reader.frame_count == 5


def test_segment_bad_inputs_are_one_line_errors(fake_run, clip, tmp_path, capsys):
    assert run_cli("segment", tmp_path / "missing.mp4", "--checkpoint", tmp_path, "--out", tmp_path / "a.mp4") == 2
    assert "missing.mp4" in capsys.readouterr().err
    assert run_cli("segment", clip, "--checkpoint", tmp_path, "--out", clip) == 2
    assert "refusing to overwrite an input" in capsys.readouterr().err
    assert run_cli("segment", clip, "--checkpoint", tmp_path / "other-task", "--json", tmp_path / "t.json") == 2
    assert "not a video instance segmentation run" in capsys.readouterr().err
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    assert run_cli("segment", not_video, "--checkpoint", tmp_path, "--json", tmp_path / "t.json") == 2
    err = capsys.readouterr().err
    assert "notes.mp4" in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def ytvis_file(tmp_path, benchmark):
    write_ytvis(benchmark.videos, benchmark.categories, tmp_path / "data", "valid")
    path = tmp_path / "data" / "valid.json"
    data = json.loads(path.read_text())
    for video, new_id in zip(data["videos"], (11, 17)):  # ids as a real file may number them
        for ann in data["annotations"]:
            if ann["video_id"] == video["id"]:
                ann["video_id"] = new_id
        video["id"] = new_id
    path.write_text(json.dumps(data))
    return path


def test_eval_vis_prints_the_table_and_writes_metrics_and_results(fake_run, ytvis_file, tmp_path, capsys):
    out = tmp_path / "eval"
    assert run_cli("eval-vis", "--checkpoint", tmp_path / "run", "--data", ytvis_file, "--out", out,
                   "--batch-size", "2") == 0
    printed = capsys.readouterr().out
    assert "AP50" in printed and "AR10" in printed and "fps" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(k in metrics for k in ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AR1", "AR10", "AP50_degraded"))
    assert metrics["num_frames"] == {"all": 10, "degraded": metrics["num_frames"]["degraded"]}
    assert metrics["num_frames"]["degraded"] > 0 and 0 <= metrics["AP50_degraded"] <= 1
    assert 0 <= metrics["AP"] <= 1 and metrics["settings"]["batch_size"] == 2 and metrics["settings"]["mode"] == "sliding"
    results = read_ytvis_results(out / "results.json")
    assert len(results) == 20 and {r["video_id"] for r in results} == {11, 17}
    # a second run does not replace the files unless asked
    assert run_cli("eval-vis", "--checkpoint", tmp_path / "run", "--data", ytvis_file, "--out", out) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert run_cli("eval-vis", "--checkpoint", tmp_path / "run", "--data", ytvis_file, "--out", out,
                   "--overwrite") == 0


def test_eval_vis_without_annotations_writes_only_results(fake_run, ytvis_file, tmp_path, capsys):
    data = json.loads(ytvis_file.read_text())
    del data["annotations"]
    ytvis_file.write_text(json.dumps(data))
    out = tmp_path / "server"
    out.mkdir()
    (out / "metrics.json").write_text("{}")  # from an earlier evaluation
    assert run_cli("eval-vis", "--checkpoint", tmp_path / "run", "--data", ytvis_file, "--out", out) == 2
    assert run_cli("eval-vis", "--checkpoint", tmp_path / "run", "--data", ytvis_file, "--out", out,
                   "--overwrite") == 0
    assert "no annotations" in capsys.readouterr().out
    assert (out / "results.json").is_file() and not (out / "metrics.json").exists()


def test_eval_vis_bad_inputs_name_the_file(fake_run, ytvis_file, tmp_path, capsys):
    data = json.loads(ytvis_file.read_text())
    data["annotations"][0]["segmentations"] = data["annotations"][0]["segmentations"][:-1]  # wrong length
    bad = ytvis_file.parent / "bad.json"
    bad.write_text(json.dumps(data))
    assert run_cli("eval-vis", "--checkpoint", tmp_path, "--data", bad, "--images", ytvis_file.parent / "valid"
                   / "JPEGImages", "--out", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "segmentations" in err
    fake_run["classes"] = ["person", "car"]
    assert run_cli("eval-vis", "--checkpoint", tmp_path, "--data", ytvis_file, "--out", tmp_path / "e") == 2
    err = capsys.readouterr().err
    assert "valid.json" in err and "but the model predicts" in err
    assert run_cli("eval-vis", "--checkpoint", tmp_path, "--data", tmp_path / "none.json", "--out", tmp_path / "e") == 2
    assert "none.json" in capsys.readouterr().err


def test_overlay_blends_each_instance_in_its_own_colour():
    frame = np.zeros((20, 30, 3), np.uint8)
    masks = np.zeros((2, 20, 30), bool)
    masks[0, 2:8, 2:8] = True
    masks[1, 10:18, 15:28] = True
    drawn = draw_instances(frame, masks, ["cat", "dog"], [0.9, 0.4])
    assert drawn.shape == frame.shape and drawn.dtype == np.uint8 and not drawn[0, 29].any()
    assert tuple(drawn[5, 5]) != tuple(drawn[14, 20]) and drawn[5, 5].any() and drawn[14, 20].any()
    assert np.array_equal(draw_instances(frame, np.zeros((1, 20, 30), bool), ["cat"], [0.5]), frame)
    with pytest.raises(ValueError, match="masks must be"):
        draw_instances(frame, masks[:, :10], ["cat", "dog"], [0.9, 0.4])


def test_eval_vis_takes_the_data_from_the_configs_eval_section(fake_run, ytvis_file, tmp_path, capsys):
    from pathlib import Path

    base = (Path(__file__).parent.parent / "configs" / "vis_synthetic_tiny.yaml").read_text()
    base = "\n".join(line for line in base.splitlines() if not line.startswith("eval:"))
    config = tmp_path / "with_eval.yaml"
    config.write_text(base + f"\neval: {{data: {ytvis_file}}}\n")
    (tmp_path / "run").mkdir()
    assert run_cli("eval-vis", "--config", config, "--checkpoint", tmp_path / "run") == 0
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())  # default --out: <run>/eval
    assert 0 <= metrics["AP"] <= 1 and (tmp_path / "run" / "eval" / "results.json").is_file()
    capsys.readouterr()
    no_eval = tmp_path / "no_eval.yaml"
    no_eval.write_text(base + "\n")
    assert run_cli("eval-vis", "--config", no_eval, "--checkpoint", tmp_path / "run") == 2
    err = capsys.readouterr().err
    assert "no_eval.yaml" in err and "eval.data" in err
    assert run_cli("eval-vis", "--checkpoint", tmp_path / "run") == 2
    assert "--data" in capsys.readouterr().err
    typo = tmp_path / "typo.yaml"
    typo.write_text(base + f"\neval: {{dataset: {ytvis_file}}}\n")
    assert run_cli("eval-vis", "--config", typo, "--checkpoint", tmp_path / "run") == 2
    assert "typo.yaml" in capsys.readouterr().err

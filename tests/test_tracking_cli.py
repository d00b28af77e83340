"""``stpn track`` / ``stpn eval-track`` and tracker checkpoints (tiny real MixFormer, CPU)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from stpn.cli import main
from stpn.data.formats.got10k import write_got10k
from stpn.data.video import VideoReader, VideoWriter, shipped_clip_path
from stpn.tracking.build import build_mixformer
from stpn.tracking.checkpoint import load_tracker, save_tracker, save_tracker_config
from tests.tracking_fake import square_video

torch.set_num_threads(1)
MODEL = dict(variant="tiny", stpn=True, template_size=32, search_size=64)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tracker")
    return save_tracker(path, build_mixformer(**MODEL), MODEL, {"num_support": 2, "support_stride": 3})


def test_load_tracker_round_trip_and_engine_checkpoints(run_dir, tmp_path):
    model, config = load_tracker(run_dir)
    assert model.has_stpn and not model.training and config.online == {"num_support": 2, "support_stride": 3}
    assert config.model == MODEL
    # an engine checkpoint file in a directory with tracker.json
    save_tracker_config(tmp_path, MODEL)
    torch.save({"model": model.state_dict(), "iteration": 3}, tmp_path / "checkpoint.pt")
    again, _ = load_tracker(tmp_path / "checkpoint.pt")
    for (k, a), b in zip(model.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), k


def test_load_tracker_errors(run_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="tracker.json not found"):
        load_tracker(tmp_path)
    (tmp_path / "tracker.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_tracker(tmp_path)
    (tmp_path / "tracker.json").write_text(json.dumps({"model": MODEL, "extra": 1}))
    with pytest.raises(ValueError, match="unknown keys"):
        load_tracker(tmp_path)
    save_tracker_config(tmp_path, {**MODEL, "stpn": False})  # weights with a predictor the model lacks
    (tmp_path / "model.safetensors").write_bytes((run_dir / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not fit"):
        load_tracker(tmp_path)


def test_unknown_online_settings_are_named(tmp_path, capsys):
    torch.manual_seed(0)
    save_tracker(tmp_path, build_mixformer(**MODEL), MODEL, {"update_every": 5})
    code = main(["track", str(shipped_clip_path("carphone_pristine.mp4")), "--box", "60,30,60,70",
                 "--checkpoint", str(tmp_path)])
    assert code == 2 and "unknown settings ['update_every']" in capsys.readouterr().err


def test_track_a_real_clip(run_dir, tmp_path, capsys):
    clip = shipped_clip_path("carphone_pristine.mp4")
    out, txt = tmp_path / "tracked.mp4", tmp_path / "boxes.txt"
    code = main(["track", str(clip), "--box", "60,30,60,70", "--checkpoint", str(run_dir),
                 "--out", str(out), "--txt", str(txt), "--update-interval", "5"])
    assert code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("120 frames in ") and "frames/s" in last
    boxes = np.loadtxt(txt, delimiter=",")
    assert boxes.shape == (120, 4) and boxes[0].tolist() == [60, 30, 60, 70]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 176 + 1e-3).all()
    assert VideoReader(out).frame_count == 120


def one_frame_video(path):
    with VideoWriter(path, 10, (64, 48)) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
    return path


@pytest.mark.parametrize("case, message", [
    ("one-frame", "has only one frame"),
    ("corrupt", "not a readable video"),
    ("outside", "lies outside the 176x144 image"),
    ("zero-size", "zero or negative size"),
    ("malformed", "--box must be four numbers"),
    ("no-checkpoint", "no tracker checkpoint"),
])
def test_track_errors_are_one_line(case, message, run_dir, tmp_path, capsys):
    clip, box, checkpoint = str(shipped_clip_path("carphone_pristine.mp4")), "60,30,60,70", str(run_dir)
    if case == "one-frame":
        clip = str(one_frame_video(tmp_path / "one.mp4"))
    elif case == "corrupt":
        (tmp_path / "bad.mp4").write_bytes(b"\x00\x01 not a video" * 200)
        clip = str(tmp_path / "bad.mp4")
    elif case == "no-checkpoint":
        checkpoint = str(tmp_path / "missing")
    box = {"outside": "500,30,60,70", "zero-size": "60,30,0,70", "malformed": "60,30,x"}.get(case, box)
    code = main(["track", clip, "--box", box, "--checkpoint", checkpoint, "--out", str(tmp_path / "o.mp4")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("stpn track: error: ") and message in err
    assert not (tmp_path / "o.mp4").exists()


def test_eval_track_prints_the_table_and_writes_toolkit_results(run_dir, tmp_path, capsys):
    root, results = tmp_path / "data", tmp_path / "results"
    write_got10k([square_video("a", 6, seed=1), square_video("b", 5, seed=2, absent=(2,))], ["square"], root, "val")
    code = main(["eval-track", "--data", str(root), "--checkpoint", str(run_dir), "--results", str(results),
                 "--name", "tiny"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    header = out[0].split()
    assert header[:5] == ["tracker", "AO", "SR0.5", "SR0.75", "FPS"] and "degraded" in out[0]
    assert out[1].split()[0] == "tiny" and "2 sequences, 8 frames scored" in out[2]
    assert (results / "tiny/a/a_001.txt").is_file() and (results / "tiny/b/b_time.txt").is_file()
    assert main(["eval-track", "--data", str(root), "--checkpoint", str(run_dir), "--split", "test"]) == 2
    assert "stpn eval-track: error:" in capsys.readouterr().err


# --- DropTrack through the same commands (model.tracker: droptrack, droptrack.json) -------------


@pytest.fixture(scope="module")
def droptrack_run(tmp_path_factory):
    """configs/droptrack_tiny.yaml trained for 2 iterations by `stpn train-track`."""
    base = tmp_path_factory.mktemp("droptrack")
    root, out = base / "got10k", base / "run"
    write_got10k([square_video("a", 6, seed=1), square_video("b", 6, seed=2)], ["square"], root, "train")
    write_got10k([square_video("c", 5, seed=3)], ["square"], root, "val")
    code = main(["train-track", "--config", "configs/droptrack_tiny.yaml", "--data", str(root), "--out", str(out),
                 "--max-iters", "2", "--device", "cpu"])
    assert code == 0
    return root, out


def test_train_track_trains_droptrack_when_the_config_says_so(droptrack_run, capsys):
    from stpn.droptrack.model import DropTrack
    from stpn.tracking.kinds import load_any_tracker, run_tracker

    _, out = droptrack_run
    record = json.loads((out / "droptrack.json").read_text())
    assert "tracker" not in record["model"] and record["model"]["variant"] == "tiny"
    assert not (out / "tracker.json").exists() and (out / "model.safetensors").is_file()
    assert run_tracker(out) == run_tracker(out / "model.safetensors") == "droptrack"
    model, online = load_any_tracker(out / "checkpoint.pt")
    assert isinstance(model, DropTrack) and not model.training and online["search_factor"] == 4.0


def test_track_follows_a_clip_with_a_droptrack_run(droptrack_run, tmp_path, capsys):
    _, out = droptrack_run
    txt = tmp_path / "boxes.txt"
    code = main(["track", str(shipped_clip_path("carphone_pristine.mp4")), "--box", "60,30,60,70",
                 "--checkpoint", str(out), "--txt", str(txt), "--device", "cpu"])
    assert code == 0 and capsys.readouterr().out.strip().splitlines()[-1].startswith("120 frames in ")
    boxes = np.loadtxt(txt, delimiter=",")
    assert boxes.shape == (120, 4) and boxes[0].tolist() == [60, 30, 60, 70] and np.isfinite(boxes).all()


def test_eval_track_and_eval_droptrack_agree_on_a_droptrack_run(droptrack_run, capsys):
    root, out = droptrack_run
    assert main(["eval-track", "--data", str(root), "--checkpoint", str(out), "--device", "cpu"]) == 0
    first = capsys.readouterr().out.splitlines()
    assert first[1].split()[0] == "run" and "1 sequences, 4 frames scored" in first[2]
    assert main(["eval-droptrack", "--data", str(root), "--checkpoint", str(out), "--device", "cpu"]) == 0
    second = capsys.readouterr().out.splitlines()
    assert first[1].split()[1:4] == second[1].split()[1:4]  # same AO / SR0.5 / SR0.75


def test_tracker_key_errors(tmp_path, capsys):
    from stpn.droptrack.config import load_droptrack_config
    from stpn.tracking.kinds import config_tracker
    from stpn.tracking.train_cli import load_track_config

    assert config_tracker("configs/got10k_mixformer_cvt21_stpn.yaml") == "mixformer"
    assert config_tracker("configs/droptrack_vitb_got10k.yaml") == "droptrack"
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {tracker: ostrack}\ndata: {root: x}\nstage1: {lr: 1.0, epochs: 1}\n")
    assert main(["train-track", "--config", str(bad), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: model.tracker must be one of mixformer, droptrack, got 'ostrack'" in err
    bad.write_text("model: {tracker: mixformer, variant: tiny}\ntrain: {lr: 1.0, epochs: 1}\n")
    with pytest.raises(ValueError, match="model.tracker is 'mixformer' but this reader is for 'droptrack'"):
        load_droptrack_config(bad)
    good = tmp_path / "mixformer.yaml"
    good.write_text("model: {tracker: mixformer, variant: tiny}\ndata: {root: x}\nstage1: {lr: 1.0, epochs: 1}\n")
    assert load_track_config(good)["model"] == {"variant": "tiny"}
    assert main(["train-track", "--config", str(good), "--pretrained", "x", "--out", str(tmp_path / "r")]) == 2
    assert "--pretrained is for DropTrack configs" in capsys.readouterr().err

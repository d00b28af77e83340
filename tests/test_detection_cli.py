"""`stpn train` / `stpn eval` / `stpn detect` end to end on tiny data."""
import json

import yaml

from stpn.cli import main
from stpn.data.formats import write_dataset
from stpn.data.synthetic import CATEGORIES, iter_videos
from stpn.data.video import shipped_clip_path
from tests.test_detection_model import HEADS, SWIN


def test_train_eval_detect(tmp_path, capsys):
    root = tmp_path / "data"
    write_dataset(iter_videos(2, num_frames=6, size=64, seed=0), CATEGORIES, root, "cocovid", "train")
    write_dataset(iter_videos(1, num_frames=6, size=64, seed=1), CATEGORIES, root, "cocovid", "val")
    config = {
        "detector": {"class_names": CATEGORIES, "predictor": "relation", "fpn_channels": 16,
                     "swin_kwargs": SWIN, "head_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in HEADS.items()}},
        "train": {"lr": 1e-4, "max_iters": 2, "batch_size": 2, "progress": False, "log_every": 1},
        "data": {"root": str(root), "format": "cocovid", "train_splits": ["train"], "val_splits": ["val"],
                 "train_sizes": [64], "max_size": 64},
        "eval": {"mode": "per-video", "num_support": 3},
    }
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(run)]) == 0
    assert (run / "model.safetensors").is_file() and (run / "detector.json").is_file()
    saved = json.loads((run / "detector.json").read_text())["inference"]  # the eval section, saved
    assert saved == {"mode": "per-video", "num_support": 3, "stride": 8, "test_size": None, "batch_size": 4}
    assert main(["eval", "--config", str(cfg), "--checkpoint", str(run), "--json", str(tmp_path / "d.json")]) == 0
    out = capsys.readouterr().out
    assert "AP50" in out and "AP50_degraded" in out
    assert isinstance(json.loads((tmp_path / "d.json").read_text()), list)
    clip = tmp_path / "clip.mp4"
    from stpn.data.video import VideoWriter, read_video

    with VideoWriter(clip, 10, (64, 48)) as w:  # a short real clip at a small size
        for f in read_video(shipped_clip_path("bikes.mp4"), max_frames=5, resize=(64, 48)):
            w.write(f)
    assert main(["detect", str(clip), "--checkpoint", str(run), "--mode", "sliding", "--num-support", "2",
                 "--stride", "1", "--out", str(tmp_path / "a.mp4"), "--json", str(tmp_path / "a.json")]) == 0
    result = json.loads((tmp_path / "a.json").read_text())
    assert [f["frame"] for f in result["frames"]] == list(range(5))
    assert "frames/s" in capsys.readouterr().out


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("detector: {class_names: [a]}\ndata: {}\ntrian: {}\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert "unknown sections ['trian']" in capsys.readouterr().err

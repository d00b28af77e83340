"""Issue 14: no command destroys its input or a finished run, bad files end in one line naming
them, ``stpn data check`` finds what training would trip on, and training repeats exactly."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import yaml

from stpn.cli import main
from stpn.cli_errors import one_line
from stpn.engine.checkpoint import save_checkpoint
from stpn.outputs import atomic_output, check_outputs
from tests.reliability_fixtures import (
    bad_checkpoints,
    cocovid_data,
    detector_config,
    detector_run,
    got10k_data,
    track_config,
    tracker_run,
    write_clip,
)

torch.set_num_threads(1)
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A clip, a detector run, a tracker run and a CocoVID dataset shared by the tests."""
    base = tmp_path_factory.mktemp("reliability")
    return {"clip": write_clip(base / "clip.mp4"), "detector": detector_run(base / "detector"),
            "tracker": tracker_run(base / "tracker"), "data": cocovid_data(base / "data")}


def one_error_line(capsys, command: str) -> str:
    """The stderr of a failed command: one line ``stpn COMMAND: error: ...``, the last one
    (progress bars, which end in carriage returns, may come before it), and no traceback."""
    err = capsys.readouterr().err
    lines = [line.strip() for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert "Traceback" not in err and lines, err
    assert lines[-1].startswith(f"stpn {command}: error: "), err
    assert not [line for line in lines[:-1] if not line.startswith("detect:")], err  # only progress bars before
    return lines[-1]


# --- data loss -------------------------------------------------------------------------------

def video_and_hard_link(files, tmp_path):
    """A copy of the shipped clip and a second name (hard link) for the same file."""
    video = tmp_path / "v.mp4"
    video.write_bytes(files["clip"].read_bytes())
    link = tmp_path / "link.mp4"
    os.link(video, link)
    return video, link


@pytest.mark.parametrize("flag", ["--out", "--json"])
def test_detect_refuses_to_overwrite_its_input_video(files, tmp_path, capsys, flag):
    video, link = video_and_hard_link(files, tmp_path)
    for target in (video, link):
        assert main(["detect", str(video), "--checkpoint", str(files["detector"]), flag, str(target)]) == 2
        assert "refusing to overwrite an input" in one_error_line(capsys, "detect")
    assert video.read_bytes() == files["clip"].read_bytes()


@pytest.mark.parametrize("flag", ["--out", "--txt"])
def test_track_refuses_to_overwrite_its_input_video(files, tmp_path, capsys, flag):
    video, link = video_and_hard_link(files, tmp_path)
    for target in (video, link, files["tracker"] / "model.safetensors"):
        code = main(["track", str(video), "--box", "10,10,20,20", "--checkpoint", str(files["tracker"]), flag, str(target)])
        assert code == 2 and "refusing to overwrite an input" in one_error_line(capsys, "track")
    assert video.read_bytes() == files["clip"].read_bytes()


def test_detect_writes_outputs_atomically(files, tmp_path, capsys):
    out, js = tmp_path / "a.mp4", tmp_path / "a.json"
    assert main(["detect", str(files["clip"]), "--checkpoint", str(files["detector"]), "--mode", "causal",
                 "--num-support", "1", "--out", str(out), "--json", str(js)]) == 0
    assert out.stat().st_size > 0 and len(json.loads(js.read_text())["frames"]) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.mp4"]  # no temporaries left


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_two_outputs_may_not_be_one_file(tmp_path):
    with pytest.raises(ValueError, match="are the same file"):
        check_outputs([], {"--out": tmp_path / "x", "--txt": tmp_path / "x"})


def test_stale_checkpoint_temporaries_are_removed_by_the_next_save(tmp_path):
    stale = [tmp_path / ".checkpoint.pt.abc123.tmp", tmp_path / ".checkpoint.pt.k9.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    other = tmp_path / ".scalars.jsonl.x.tmp"  # another file's temporary is not touched
    other.write_text("")
    save_checkpoint(tmp_path / "checkpoint.pt", {"iteration": 1})
    assert not any(p.exists() for p in stale) and other.exists()
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True) == {"iteration": 1}


def test_train_refuses_an_existing_run_without_resume_or_overwrite(files, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"finished run")
    config = detector_config(tmp_path / "c.yaml", files["data"])
    assert main(["train", "--config", str(config), "--out", str(run)]) == 2
    err = one_error_line(capsys, "train")
    assert "--resume" in err and "--overwrite" in err and str(run) in err
    assert (run / "checkpoint.pt").read_bytes() == b"finished run"


def test_train_track_refuses_an_existing_run(tmp_path, capsys):
    root = got10k_data(tmp_path / "got")
    run = tmp_path / "run"
    (run / "stage2").mkdir(parents=True)
    (run / "stage2" / "model.safetensors").write_bytes(b"finished")
    config = track_config(tmp_path / "t.yaml", root)
    assert main(["train-track", "--config", str(config), "--out", str(run)]) == 2
    err = one_error_line(capsys, "train-track")
    assert "--resume" in err and "--overwrite" in err
    assert (run / "stage2" / "model.safetensors").read_bytes() == b"finished"


# --- outputs that cannot be written ------------------------------------------------------------

def _commands(files, tmp_path, out):
    """Each command with ``out`` where it writes (a file or a directory)."""
    got = got10k_data(tmp_path / "got", "val")
    det_cfg = detector_config(tmp_path / "d.yaml", files["data"])
    trk_cfg = track_config(tmp_path / "t.yaml", got10k_data(tmp_path / "gtrain"))
    clip, det, trk = str(files["clip"]), str(files["detector"]), str(files["tracker"])
    return {
        "detect": ["detect", clip, "--checkpoint", det, "--json", f"{out}/d.json"],
        "track": ["track", clip, "--box", "10,10,20,20", "--checkpoint", trk, "--txt", f"{out}/b.txt"],
        "eval": ["eval", "--config", str(det_cfg), "--checkpoint", det, "--json", f"{out}/e.json"],
        "eval-track": ["eval-track", "--data", str(got), "--checkpoint", trk, "--results", f"{out}/res"],
        "train": ["train", "--config", str(det_cfg), "--out", f"{out}/run"],
        "train-track": ["train-track", "--config", str(trk_cfg), "--out", f"{out}/run"],
        "data synth": ["data", "synth", "--out", f"{out}/ds", "--videos", "1", "--frames", "2", "--size", "32"],
    }


def test_outputs_under_a_file_are_one_line_errors(files, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for command, argv in _commands(files, tmp_path, blocker).items():
        assert main(argv) == 2, command
        assert str(blocker) in one_error_line(capsys, command)
    assert blocker.read_text() == "not a folder"


def test_a_directory_where_a_file_is_needed_and_a_file_where_a_directory_is(files, tmp_path, capsys):
    (tmp_path / "d.json").mkdir()
    argv = ["detect", str(files["clip"]), "--checkpoint", str(files["detector"]), "--json", str(tmp_path / "d.json")]
    assert main(argv) == 2 and "is a directory" in one_error_line(capsys, "detect")
    run = tmp_path / "run"
    run.write_text("x")
    config = detector_config(tmp_path / "c.yaml", files["data"])
    assert main(["train", "--config", str(config), "--out", str(run)]) == 2
    assert "is an existing file, not a directory" in one_error_line(capsys, "train")


@pytest.mark.skipif(AS_ROOT, reason="root may write into read-only folders")
def test_a_read_only_folder_is_a_one_line_error(files, tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        for command, argv in _commands(files, tmp_path, folder).items():
            assert main(argv) == 2, command
            assert "not writable" in one_error_line(capsys, command)
    finally:
        folder.chmod(0o700)


# --- bad checkpoints ---------------------------------------------------------------------------

def _checkpoint_dir(tmp_path, config_from, bad) -> str:
    """A run directory holding ``bad`` as its only weight file, beside a good run's config."""
    run = tmp_path / f"{config_from.name}_{bad.name}"
    run.mkdir()
    for name in ("detector.json", "tracker.json"):
        if (config_from / name).is_file():
            (run / name).write_bytes((config_from / name).read_bytes())
    suffix = "model.safetensors" if bad.suffix == ".safetensors" else "checkpoint.pt"
    (run / suffix).write_bytes(bad.read_bytes())
    return str(run / suffix)


EXPECTED = {"random.pt": "unsafe or corrupt pickle refused", "evil.pt": "unsafe or corrupt pickle refused",
            "random.safetensors": "not a readable safetensors file",
            "truncated.safetensors": "not a readable safetensors file", "wrong_keys.pt": "does not fit this model"}


def test_bad_checkpoints_are_one_line_errors(files, tmp_path, capsys):
    config = detector_config(tmp_path / "c.yaml", files["data"])
    got = got10k_data(tmp_path / "got", "val")
    for name, bad in bad_checkpoints(tmp_path / "bad").items():
        det = _checkpoint_dir(tmp_path, files["detector"], bad)
        trk = _checkpoint_dir(tmp_path, files["tracker"], bad)
        runs = {
            "detect": ["detect", str(files["clip"]), "--checkpoint", det],
            "eval": ["eval", "--config", str(config), "--checkpoint", det],
            "track": ["track", str(files["clip"]), "--box", "10,10,20,20", "--checkpoint", trk],
            "eval-track": ["eval-track", "--data", str(got), "--checkpoint", trk],
        }
        for command, argv in runs.items():
            assert main(argv) == 2, (name, command)
            err = one_error_line(capsys, command)
            assert EXPECTED[name] in err and bad.name.split(".")[-1] in err, (name, err)
        capsys.readouterr()
    assert "pickle code ran" not in capsys.readouterr().out


def test_a_state_dict_of_the_wrong_shape_is_named(tmp_path):
    from stpn.engine.checkpoint import CheckpointError, load_model_state

    model = torch.nn.Linear(3, 2)
    state = {"weight": torch.zeros(2, 4), "bias": torch.zeros(2)}
    with pytest.raises(CheckpointError, match=r"^w.pt does not fit this model: .*size mismatch for weight"):
        load_model_state(model, state, "w.pt")


def test_train_resume_from_a_bad_checkpoint_is_one_line(files, tmp_path, capsys):
    config = detector_config(tmp_path / "c.yaml", files["data"])
    for name, bad in bad_checkpoints(tmp_path / "bad").items():
        if bad.suffix != ".pt":
            continue
        assert main(["train", "--config", str(config), "--out", str(tmp_path / "r"), "--resume", str(bad)]) == 2
        err = one_error_line(capsys, "train")
        assert str(bad) in err and ("not a stpn" in err or "not an stpn" in err), err


# --- annotation files that are not UTF-8 -------------------------------------------------------

@pytest.mark.parametrize("name", ["groundtruth.txt", "list.txt", "meta_info.ini"])
def test_got10k_files_that_are_not_utf8(tmp_path, capsys, name):
    root = got10k_data(tmp_path / "got")
    path = root / "train" / ("list.txt" if name == "list.txt" else f"a/{name}")
    path.write_bytes(b"\xff\xfe" + path.read_bytes())
    assert main(["data", "check", str(root), "--quick"]) == 1
    out = capsys.readouterr().out
    assert f"{path}: encoding: not UTF-8 text (byte 0xff at offset 0)" in out
    config = track_config(tmp_path / "t.yaml", root)
    assert main(["train-track", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert f"{path}: encoding: not UTF-8" in one_error_line(capsys, "train-track")


def test_a_vid_category_file_that_is_not_utf8(tmp_path, capsys):
    from stpn.data.formats import write_dataset
    from stpn.data.synthetic import CATEGORIES, iter_videos

    write_dataset(iter_videos(1, num_frames=2, size=48, seed=0), CATEGORIES, tmp_path, "vid", "train")
    categories = tmp_path / "categories.txt"
    categories.write_bytes("caf\u00e9\n".encode("latin-1"))
    assert main(["data", "check", str(tmp_path)]) == 1
    assert f"{categories}: encoding: not UTF-8 text" in capsys.readouterr().out


# --- corrupt frames ----------------------------------------------------------------------------

def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_frame_is_named_by_eval_and_train(files, tmp_path, capsys):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(files["data"], root)
    frames = sorted(root.rglob("*.jpg"))
    val = [f for f in frames if "/val/" in str(f)]
    _truncate(val[3])
    config = detector_config(tmp_path / "c.yaml", root)
    assert main(["eval", "--config", str(config), "--checkpoint", str(files["detector"])]) == 2
    err = one_error_line(capsys, "eval")
    assert str(val[3]) in err and "not a readable image" in err
    for frame in frames:
        if "/train/" in str(frame):
            _truncate(frame)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = one_error_line(capsys, "train")
    assert "/train/" in err and ".jpg: image: not a readable image" in err


def test_a_worker_failure_is_one_line_naming_the_file():
    from torch.utils.data import DataLoader, Dataset

    from stpn.data.types import load_frame

    class Frames(Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, i):
            return load_frame("/nowhere/0001.JPEG")

    with pytest.raises(Exception) as info:
        next(iter(DataLoader(Frames(), num_workers=1)))
    assert one_line(info.value) == "frame file not found: /nowhere/0001.JPEG"


# --- non-finite losses -------------------------------------------------------------------------

def test_a_nan_loss_is_one_line_and_keeps_no_nonfinite_checkpoint(files, tmp_path, capsys):
    config = detector_config(tmp_path / "c.yaml", files["data"], lr=1e30, max_iters=6, checkpoint_every=1)
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--out", str(run)]) == 2
    err = one_error_line(capsys, "train")
    assert "non-finite" in err and "at iteration" in err
    if (run / "checkpoint.pt").exists():
        checkpoint = torch.load(run / "checkpoint.pt", weights_only=True)
        assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())
        assert f"last good checkpoint is {run / 'checkpoint.pt'} (iteration {checkpoint['iteration']})" in err
    else:
        assert "No checkpoint was written before it." in err


def test_nonfinite_weights_are_never_saved(tmp_path):
    from stpn.engine import TrainConfig, fit, make_train_loader
    from tests.engine_tiny import NoisyRegression, TinyMLP

    class Explodes(TinyMLP):
        def forward(self, x, y):
            losses = super().forward(x, y)
            if self.calls == 3:  # after this step the weights are infinite, the loss still finite
                with torch.no_grad():
                    self.net[0].weight.fill_(float("inf"))
            return losses

    config = TrainConfig(lr=1e-3, max_iters=6, checkpoint_every=1, progress=False, batch_size=4)
    loader = make_train_loader(NoisyRegression(), 4, seed=0)
    with pytest.raises(FloatingPointError, match="non-finite weights at iteration 3") as info:
        fit(Explodes(), loader, config, tmp_path)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert checkpoint["iteration"] == 2 and "(iteration 2)" in str(info.value)
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values() if v.is_floating_point())


# --- data check --------------------------------------------------------------------------------

def _got10k_check(root, capsys, *flags) -> str:
    code = main(["data", "check", str(root), *flags])
    out = capsys.readouterr().out
    assert code == (0 if "No problems found." in out else 1)
    return out


def test_data_check_decodes_every_frame_unless_quick(tmp_path, capsys):
    root = got10k_data(tmp_path / "got")
    assert "No problems found." in _got10k_check(root, capsys)
    frame = root / "train" / "a" / "00000004.jpg"
    _truncate(frame)
    assert f"{frame}: image: not a readable image" in _got10k_check(root, capsys)
    assert "No problems found." in _got10k_check(root, capsys, "--quick")


def test_data_check_finds_frames_of_another_size(tmp_path, capsys):
    from PIL import Image

    root = got10k_data(tmp_path / "got")
    frame = root / "train" / "b" / "00000005.jpg"
    Image.new("RGB", (40, 30)).save(frame)
    out = _got10k_check(root, capsys)
    assert f"{frame}: size: image is 40x30, the annotation says 80x64" in out


def test_data_check_finds_got10k_sequences_training_would_trip_on(tmp_path, capsys):
    root = got10k_data(tmp_path / "got")
    (root / "train" / "a" / "cover.label").unlink()
    gt = root / "train" / "b" / "groundtruth.txt"
    absence = root / "train" / "b" / "absence.label"
    absence.write_text("1\n" + "".join("0\n" for _ in range(9)))
    out = _got10k_check(root, capsys, "--quick")
    assert f"{root / 'train' / 'a' / 'cover.label'}: file: cover.label is missing" in out
    assert f"{gt}: line 1: the first frame has no box" in out
    absence.write_text("".join("0\n" for _ in range(10)))
    gt.write_text(gt.read_text().splitlines()[0] + "\n")
    out = _got10k_check(root, capsys, "--quick")
    assert f"{gt}: lines: one box for 10 frames" in out


def test_a_one_line_groundtruth_is_fine_in_the_test_split(tmp_path, capsys):
    root = got10k_data(tmp_path / "got", "test")
    for seq in ("a", "b"):
        gt = root / "test" / seq / "groundtruth.txt"
        gt.write_text(gt.read_text().splitlines()[0] + "\n")
    assert "one box for" not in _got10k_check(root, capsys, "--quick")


# --- values accepted that should not be --------------------------------------------------------

@pytest.mark.parametrize("value", ["nan", "inf", "-0.1", "1.5"])
def test_score_thresh_must_be_in_0_1(files, value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["detect", str(files["clip"]), "--checkpoint", str(files["detector"]), "--score-thresh", value])
    assert info.value.code == 2 and "must be a number in [0, 1]" in capsys.readouterr().err


def test_a_box_larger_than_the_frame_is_refused_and_a_clipped_one_said(files, tmp_path, capsys):
    argv = ["track", str(files["clip"]), "--checkpoint", str(files["tracker"]), "--txt", str(tmp_path / "b.txt")]
    assert main([*argv, "--box", "0,0,100,40"]) == 2
    assert "is larger than the 64x48 video frame" in one_error_line(capsys, "track")
    assert main([*argv, "--box", "50,10,20,20"]) == 0
    err = capsys.readouterr().err
    assert "warning: --box 50,10,20,20 reaches past the 64x48 frame" in err and "clipped box 50,10,14,20" in err


def test_samples_per_epoch_zero_is_refused(tmp_path, capsys):
    root = got10k_data(tmp_path / "got")
    config = track_config(tmp_path / "t.yaml", root)
    cfg = yaml.safe_load(config.read_text())
    cfg["data"]["samples_per_epoch"] = 0
    config.write_text(yaml.safe_dump(cfg))
    assert main(["train-track", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "samples_per_epoch must be >= 1, got 0" in one_error_line(capsys, "train-track")


def test_unknown_online_keys_are_refused_before_training(tmp_path, capsys):
    root = got10k_data(tmp_path / "got")
    config = track_config(tmp_path / "t.yaml", root, update_every=5)
    assert main(["train-track", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = one_error_line(capsys, "train-track")
    assert str(config) in err and "online" in err and "['update_every']" in err
    assert not (tmp_path / "run").exists()


# --- repeatability -----------------------------------------------------------------------------

def _losses(run) -> list[float]:
    lines = [json.loads(line) for line in (run / "scalars.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in lines if "train/loss" in r]


def test_train_twice_gives_identical_losses(files, tmp_path, capsys):
    config = detector_config(tmp_path / "c.yaml", files["data"], max_iters=3)
    first, second = tmp_path / "first", tmp_path / "second"
    torch.manual_seed(123)  # the global RNG state before a command must not matter
    assert main(["train", "--config", str(config), "--out", str(first)]) == 0
    np.random.seed(7)
    assert main(["train", "--config", str(config), "--out", str(second)]) == 0
    assert len(_losses(first)) == 3 and _losses(first) == _losses(second)
    # --overwrite replaces a finished run with the same result
    assert main(["train", "--config", str(config), "--out", str(first), "--overwrite"]) == 0
    assert _losses(first) == _losses(second)


def test_train_track_twice_gives_identical_losses(tmp_path, capsys):
    root = got10k_data(tmp_path / "got")
    config = track_config(tmp_path / "t.yaml", root)
    runs = [tmp_path / "first", tmp_path / "second"]
    for seed, run in zip((1, 2), runs):
        torch.manual_seed(seed)
        assert main(["train-track", "--config", str(config), "--out", str(run)]) == 0
    for stage in ("stage1", "stage2"):
        assert len(_losses(runs[0] / stage)) == 2 and _losses(runs[0] / stage) == _losses(runs[1] / stage)

"""``stpn data synth`` / ``stpn data check`` through an argparse parser built here."""
from __future__ import annotations

import argparse
import shutil
import sys
import types

import pytest

from stpn.data.cli import add_data_commands, run_data_command
from stpn.data.formats import FORMATS, read_dataset
from tests.test_formats import CATEGORIES, make_video


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="stpn")
    add_data_commands(parser.add_subparsers(dest="command"))
    return run_data_command(parser.parse_args(argv))


@pytest.fixture
def stand_in_generator(monkeypatch):
    """A stand-in for stpn.data.synthetic with its API (CATEGORIES, iter_videos), built from the
    hand-made test videos, so the CLI is tested independently of the real generator."""
    calls = []

    def iter_videos(num_videos, num_frames=32, size=256, seed=0, severity=1.0):
        calls.append(dict(num_videos=num_videos, num_frames=num_frames, size=size, seed=seed, severity=severity))
        for v in range(num_videos):
            yield make_video(f"synthetic_{v:04d}", num_frames=num_frames, height=size, width=size, seed=seed + v)

    module = types.SimpleNamespace(CATEGORIES=tuple(CATEGORIES), iter_videos=iter_videos)
    monkeypatch.setitem(sys.modules, "stpn.data.synthetic", module)
    monkeypatch.setattr("stpn.data.synthetic", module, raising=False)
    return calls


@pytest.mark.parametrize("fmt", FORMATS)
def test_synth_then_check(tmp_path, capsys, stand_in_generator, fmt):
    out = tmp_path / fmt
    code = run(["data", "synth", "--out", str(out), "--format", fmt, "--videos", "3", "--frames", "4",
                "--size", "64", "--seed", "7", "--severity", "0.5"])
    assert code == 0
    assert stand_in_generator == [dict(num_videos=3, num_frames=4, size=64, seed=7, severity=0.5)]
    captured = capsys.readouterr()
    assert f"wrote 3 videos (12 frames, " in captured.out and f"as {fmt}" in captured.out and " s" in captured.out
    assert "3/3" in captured.err  # the progress bar
    dataset = read_dataset(out, fmt)
    assert dataset.categories == CATEGORIES
    assert len(dataset.videos) == (6 if fmt == "got10k" else 3)  # GOT-10k: one sequence per track

    assert run(["data", "check", str(out)]) == 0
    table = capsys.readouterr().out
    assert "No problems found." in table and f"format: {fmt}" in table


def test_synth_refuses_to_overwrite_a_split(tmp_path, capsys, stand_in_generator):
    args = ["data", "synth", "--out", str(tmp_path), "--format", "cocovid", "--videos", "1", "--frames", "2",
            "--size", "64", "--no-progress"]
    assert run(args) == 0
    assert run(args) == 2
    assert "already holds" in capsys.readouterr().err
    assert run(args + ["--split", "val"]) == 0


def test_check_reports_problems_with_exit_code_1(tmp_path, capsys, stand_in_generator):
    run(["data", "synth", "--out", str(tmp_path), "--format", "vid", "--videos", "2", "--frames", "3", "--size", "64",
         "--no-progress"])
    capsys.readouterr()
    (tmp_path / "Annotations/VID/train/synthetic_0000/000001.xml").write_text("<broken")
    shutil.rmtree(tmp_path / "Data/VID/train/synthetic_0001")
    assert run(["data", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Problems (2):" in out
    assert "synthetic_0000/000001.xml: xml:" in out and "synthetic_0001: frames:" in out
    assert run(["data", "check", str(tmp_path / "nothing")]) == 1


def test_bad_arguments_exit_through_argparse(tmp_path):
    for argv in (["data", "synth", "--out", str(tmp_path), "--videos", "0"],
                 ["data", "synth", "--out", str(tmp_path), "--format", "mp4"],
                 ["data", "synth", "--out", str(tmp_path), "--severity", "-1"],
                 ["data"]):
        with pytest.raises(SystemExit) as info:
            run(argv)
        assert info.value.code == 2


def test_synth_with_the_real_generator(tmp_path, capsys):
    pytest.importorskip("stpn.data.synthetic")
    assert run(["data", "synth", "--out", str(tmp_path), "--format", "ytvis", "--videos", "2", "--frames", "3",
                "--size", "64", "--no-progress"]) == 0
    assert run(["data", "check", str(tmp_path)]) == 0
    assert "No problems found." in capsys.readouterr().out

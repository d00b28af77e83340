"""The demo pipeline end to end at toy size: both models train, the table and the report exist."""
import json

import pytest

from stpn.data import synthetic
from stpn.demo.examples import pick_frames
from stpn.demo.pretrain import PretrainSettings
from stpn.demo.run import (ROWS, DemoSettings, data_seeds, format_summary, gains_by_seed, other_videos, run_demo,
                           summarise)

TOY_PRETRAIN = PretrainSettings(videos=4, frames=2, grid=2, iters=2, batch_size=2)


def toy_settings(out, jobs=1, **kw):
    return DemoSettings(out_dir=str(out), seeds=(0,), train_videos=2, train_frames=6, val_videos=2, frames=6,
                        size=64, iters=2, batch_size=2, num_support=2, pretrain=TOY_PRETRAIN, jobs=jobs,
                        progress=False, **kw)


def test_demo_writes_table_results_and_report(tmp_path, capsys):
    table = run_demo(toy_settings(tmp_path / "demo"))
    assert list(table) == [row for row, *_ in ROWS]
    assert table["STPN"]["params (M)"][0] > table["per-frame"]["params (M)"][0]  # the predictor's parameters
    out = capsys.readouterr().out
    assert "AP50 degraded" in out and "prompts from another video" in out and "seed 0: STPN - per-frame" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["settings"]["train_frames"] == 6 and len(results["runs"]) == 2
    assert [e["row"] for r in results["runs"] for e in r["evaluations"]] == [row for row, *_ in ROWS]
    assert all(len(r["losses"]) >= 1 for r in results["runs"])
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "<img" in html and "prompts from another video" in html
    assert "Training: 2 steps of 2 clips from 2 videos, bf16; STPN with 4 support frames" in html
    # the pre-trained backbone and the finished detectors are reused by a second run
    again = run_demo(toy_settings(tmp_path / "demo"))
    assert "(cached;" in capsys.readouterr().out
    rerun = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert all(r["reused"] for r in rerun["runs"]) and not any(r["reused"] for r in results["runs"])
    metrics = lambda t: {r: {c: v for c, v in row.items() if c != "frames/s"} for r, row in t.items()}  # noqa: E731
    assert metrics(again) == metrics(table)  # the same weights evaluated the same way
    changed = run_demo(toy_settings(tmp_path / "demo", lr=2e-3))  # another setting trains anew
    assert not any(r["reused"] for r in json.loads((tmp_path / "demo" / "results.json").read_text())["runs"])
    assert metrics(changed) != metrics(table)


def test_demo_in_two_worker_processes_matches_one(tmp_path):
    one = run_demo(toy_settings(tmp_path / "one", jobs=1))
    two = run_demo(toy_settings(tmp_path / "two", jobs=2))
    for row in one:  # same data, weights and seeds: the same numbers (one thread each)
        for column in ("AP", "AP50", "AP50 degraded"):
            assert one[row][column] == pytest.approx(two[row][column], abs=1e-6)


def test_data_seeds_select_unrelated_sets():
    a, b = data_seeds(0), data_seeds(1)
    assert len(set(a.values()) | set(b.values())) == 6
    assert other_videos(3) == [1, 2, 0] and all(v != w for v, w in enumerate(other_videos(5)))


def test_summary_reports_mean_and_half_spread():
    runs = [{"row": "m", "seed": s, "params_m": 1.0, "fps": f,
             "metrics": {key: v for key in ("AP", "AP50", "AP50_degraded", "AP50_clean", "AP50_fast",
                                            "AP50_medium", "AP50_slow")}}
            for s, v, f in ((0, 0.10, 5.0), (1, 0.20, 7.0))]
    row = summarise(runs)["m"]
    assert abs(row["AP50"][0] - 15.0) < 1e-9 and abs(row["AP50"][1] - 5.0) < 1e-9
    assert row["frames/s"] == (6.0, 1.0)
    assert "15.0±5.0" in format_summary(summarise(runs), seeds=2)


def test_gains_by_seed():
    metrics = lambda ap: {"AP50": ap, "AP50_degraded": ap / 2, "AP50_clean": ap}  # noqa: E731
    records = [{"row": "per-frame", "seed": 3, "metrics": metrics(0.5)},
               {"row": "STPN", "seed": 3, "metrics": metrics(0.6)}]
    assert gains_by_seed(records) == ["seed 3: STPN - per-frame: AP50 +10.0, degraded +5.0, clean +10.0"]


def test_example_frames_pair_a_degraded_frame_with_a_clean_one():
    dataset = synthetic.generate_dataset(3, 24, 64, seed=2, single_class=True)
    picks = pick_frames(dataset)
    assert picks and len({kind for kind, *_ in picks}) == len(picks) and "low_light" not in {k for k, *_ in picks}
    for kind, v, t, u in picks:
        hit = dataset.videos[v].annotations[t]
        clean = dataset.videos[v].annotations[u]
        assert kind in set(hit.deteriorations) | {d for i in hit.instances for d in i.deteriorations}
        assert clean.instances and not clean.deteriorations and not any(i.deteriorations for i in clean.instances)


def test_demo_cli_bad_input_is_one_line_error(tmp_path, capsys):
    from stpn.cli import main

    assert main(["demo", "--train-frames", "0", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "stpn demo: error: num_frames must be a positive integer" in err and "Traceback" not in err
    assert main(["demo", "--iters", "0", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--iters must be >= 1" in capsys.readouterr().err
    assert main(["demo", "--train-support", "3", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "--train-support must be an even number >= 2, got 3" in capsys.readouterr().err


def test_support_grad_reaches_only_the_stpn_detector():
    from stpn.demo.run import demo_detector_config
    from stpn.detection.config import DetectorConfig, build_from_config

    stpn = demo_detector_config(list(synthetic.CATEGORIES), "relation", 64, support_grad=True)
    assert build_from_config(stpn).extractor.support_grad is True
    assert DetectorConfig.from_dict(stpn.to_dict()).support_grad is True  # saved in detector.json
    assert demo_detector_config(list(synthetic.CATEGORIES), None, 64, support_grad=True).support_grad is False
    plain = demo_detector_config(list(synthetic.CATEGORIES), "relation", 64)
    assert build_from_config(plain).extractor.support_grad is False


def test_stpn_only_settings_leave_the_per_frame_run_alone(tmp_path):
    from dataclasses import replace
    from pathlib import Path

    from stpn.demo.run import DemoSettings, training_key

    weights = Path(tmp_path) / "abc" / "backbone.safetensors"
    base = DemoSettings()
    more = replace(base, train_support=base.train_support + 2)
    assert training_key(base, "per-frame", 0, weights) == training_key(more, "per-frame", 0, weights)
    assert training_key(base, "STPN", 0, weights) != training_key(more, "STPN", 0, weights)


def test_cores_of_finished_jobs_are_handed_on(monkeypatch):
    from multiprocessing import Value

    from stpn.demo import jobs

    monkeypatch.setattr(jobs.os, "cpu_count", lambda: 4)
    remaining = Value("i", 6)
    assert jobs._threads_now(remaining, 2) == 2  # more jobs than workers: each keeps its share
    remaining.value = 1
    assert jobs._threads_now(remaining, 2) == 4  # the last job takes every core
    remaining.value = 3
    assert jobs._threads_now(remaining, 1) == 1
    assert jobs._threads_now(None, 1) == 1


def test_bf16_training_reaches_both_detectors_and_the_runs_identity(tmp_path, monkeypatch):
    from dataclasses import replace
    from pathlib import Path

    from stpn.cli import main
    from stpn.demo import run
    from stpn.demo.run import demo_train_config, training_key

    base = DemoSettings()
    fp32 = replace(base, amp=None)
    assert demo_train_config(base, 0, "backbone.").amp == "bf16" and demo_train_config(fp32, 0, "backbone.").amp is None
    weights = Path(tmp_path) / "abc" / "backbone.safetensors"
    for name in ("per-frame", "STPN"):  # a finished fp32 run is not reused for bf16
        assert training_key(base, name, 0, weights) != training_key(fp32, name, 0, weights)
    seen = []
    monkeypatch.setattr(run, "run_demo", seen.append)
    assert main(["demo", "--amp", "none", "--out", str(tmp_path), "--no-progress"]) == 0
    assert main(["demo", "--out", str(tmp_path), "--no-progress"]) == 0
    assert [s.amp for s in seen] == [None, "bf16"]

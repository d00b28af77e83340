import json

import pytest

from benchmarks.track_synthetic import BenchSettings, main, run

TINY = dict(seeds=(0,), train_videos=2, val_videos=1, frames=6, size=64, template_size=32, search_size=64,
            iters=2, score_iters=1, batch_size=2, num_support=1, support_stride=1, progress=False)


def test_tracking_benchmark_runs_end_to_end_and_writes_its_table(tmp_path):
    results = run(BenchSettings(out_dir=str(tmp_path), **TINY))
    assert [(r["seed"], r["model"]) for r in results["runs"]] == [(0, "baseline"), (0, "STPN")]
    assert set(results["table"]) == {"baseline", "STPN", "initial box"}
    for r in results["runs"]:
        assert 0.0 <= r["metrics"]["AO"] <= 1.0 and r["metrics"]["num_sequences"] >= 1
        assert set(r["losses"]) == {"box", "score"} and all(len(v) > 0 for v in r["losses"].values())
    stpn_run = results["runs"][1]
    assert stpn_run["params"] > results["runs"][0]["params"]  # the DVP predictor
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"]["corner_weight"] == 1.0 and saved["table"]["initial box"]["AO"][0] > 0


@pytest.mark.parametrize("argv, message", [(["--jobs", "0"], "--jobs must be >= 1"),
                                           (["--corner-weight", "-1"], "--corner-weight must be >= 0")])
def test_tracking_benchmark_rejects_bad_settings(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_tracking_benchmark_can_train_one_model(tmp_path):
    results = run(BenchSettings(out_dir=str(tmp_path), models=("baseline",), **TINY))
    assert [r["model"] for r in results["runs"]] == ["baseline"]
    assert set(results["table"]) == {"baseline", "initial box"}


def test_tracking_benchmark_trains_in_worker_processes(tmp_path):
    results = run(BenchSettings(out_dir=str(tmp_path), jobs=2, **TINY))
    assert [(r["seed"], r["model"]) for r in results["runs"]] == [(0, "baseline"), (0, "STPN")]
    assert all((tmp_path / "seed0" / name / "stage2" / "tracker.json").is_file() for name in ("baseline", "STPN"))

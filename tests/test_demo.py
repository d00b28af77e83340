"""The demo pipeline end to end at toy size: both models train, the table and the report exist."""
import json

from stpn.demo.run import DemoSettings, format_summary, run_demo, summarise


def test_demo_writes_table_results_and_report(tmp_path, capsys):
    settings = DemoSettings(out_dir=str(tmp_path / "demo"), seeds=(0,), train_videos=2, train_frames=6,
                            val_videos=1, frames=6, size=64, iters=2, batch_size=2, num_support=2,
                            progress=False)
    table = run_demo(settings)
    assert set(table) == {"per-frame", "STPN"}
    assert table["STPN"]["params (M)"][0] > table["per-frame"]["params (M)"][0]  # the predictor's parameters
    out = capsys.readouterr().out
    assert "AP50 degraded" in out and "per-frame" in out and "STPN" in out
    results = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert results["settings"]["train_frames"] == 6 and len(results["runs"]) == 2
    assert all(len(r["losses"]) >= 1 for r in results["runs"])
    html = (tmp_path / "demo" / "report.html").read_text()
    assert "<svg" in html or "<img" in html


def test_summary_reports_mean_and_half_spread():
    runs = [{"model": "m", "seed": s, "params_m": 1.0, "fps": f,
             "metrics": {key: v for key in ("AP", "AP50", "AP50_degraded", "AP50_clean", "AP50_fast",
                                            "AP50_medium", "AP50_slow")}}
            for s, v, f in ((0, 0.10, 5.0), (1, 0.20, 7.0))]
    row = summarise(runs)["m"]
    assert abs(row["AP50"][0] - 15.0) < 1e-9 and abs(row["AP50"][1] - 5.0) < 1e-9
    assert row["frames/s"] == (6.0, 1.0)
    assert "15.0±5.0" in format_summary(summarise(runs), seeds=2)


def test_demo_cli_bad_input_is_one_line_error(tmp_path, capsys):
    from stpn.cli import main

    assert main(["demo", "--train-frames", "0", "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "stpn demo: error: num_frames must be a positive integer" in err and "Traceback" not in err

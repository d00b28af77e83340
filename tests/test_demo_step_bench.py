"""benchmarks/bench_demo_step runs the demo's two detectors in both precisions on the same batches."""
from benchmarks.bench_demo_step import main


def test_demo_step_bench_times_every_detector_and_precision(capsys):
    times = main(["--steps", "1", "--repeats", "1", "--videos", "2"])
    assert set(times) == {"per-frame fp32", "per-frame bf16", "STPN fp32", "STPN bf16"}
    assert all(0 < t < 60 for t in times.values())
    assert "STPN: bf16 / fp32 = " in capsys.readouterr().out


def test_demo_step_bench_refuses_zero_steps(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["--steps", "0"])
    assert "--steps must be >= 1, got 0" in capsys.readouterr().err

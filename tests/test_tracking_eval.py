"""GOT-10k metrics: hand-computed cases, equality with the got10k toolkit, the dataset evaluator."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stpn.data.formats.got10k import write_got10k
from stpn.metrics.got10k import SequenceResult, frame_ious, got10k_metrics, speed_fps
from stpn.metrics.got10k_files import evaluate_results, read_results, write_results
from stpn.tracking.evaluate import evaluate_tracker
from tests.tracking_fake import BrightSquareTracker, square_video

torch.set_num_threads(1)


def seq(boxes, gt, cover, width=100, height=100, times=None, name="s"):
    return SequenceResult(name, np.array(boxes, float), np.array(gt, float), np.array(cover), width, height,
                          None if times is None else np.array(times, float))


GT = [0, 0, 10, 10]


def test_iou_and_clipping_to_the_image():
    # half overlap, then a gt box poking out of a 10x10 image: clipped it equals the prediction
    ious = frame_ious(np.array([[0, 0, 5, 10], [5, 5, 5, 5]]), np.array([GT, [5, 5, 20, 20]]), 10, 10)
    assert ious.tolist() == [0.5, 1.0]
    # both clipped to nothing: empty union gives 0, not NaN
    assert frame_ious(np.array([[20, 20, 5, 5]]), np.array([[30, 30, 5, 5]]), 10, 10).tolist() == [0.0]


def test_frame_zero_and_cover_zero_frames_do_not_count():
    s = seq([[50, 50, 1, 1], GT, [50, 50, 1, 1], [0, 0, 5, 10]], [GT] * 4, [8, 8, 0, 3])
    report = got10k_metrics([s])
    assert report["num_frames"] == 2 and report["AO"] == pytest.approx(0.75)


def test_success_rates_are_strictly_above_the_threshold():
    # IoUs exactly 0.5, 0.75 and 1.0 (frame 0 ignored)
    s = seq([GT, [0, 0, 5, 10], [0, 0, 7.5, 10], GT], [GT] * 4, [8] * 4)
    report = got10k_metrics([s])
    assert report["SR50"] == pytest.approx(2 / 3) and report["SR75"] == pytest.approx(1 / 3)
    assert report["AO"] == pytest.approx((0.5 + 0.75 + 1.0) / 3)


def test_ao_pools_frames_over_sequences_and_subsets_select_frames():
    long = seq([GT] * 4, [GT] * 4, [8] * 4, name="long")  # 3 counted frames at IoU 1
    short = seq([GT, [0, 0, 5, 10]], [GT] * 2, [8] * 2, name="short")  # 1 counted frame at 0.5
    assert got10k_metrics([long, short])["AO"] == pytest.approx(3.5 / 4)  # not (1 + 0.5) / 2
    part = got10k_metrics([long, short], [np.array([1, 0, 0, 1], bool), np.array([0, 1], bool)])
    assert part["num_frames"] == 2 and part["AO"] == pytest.approx(0.75)


def test_fps_is_the_mean_of_per_frame_speeds_over_positive_times():
    assert speed_fps(np.array([0.5, 0.1, 0.2, 0.0, np.nan])) == pytest.approx((2 + 10 + 5) / 3)
    assert speed_fps(np.array([])) == -1.0
    report = got10k_metrics([seq([GT] * 2, [GT] * 2, [8] * 2, times=[0.5, 0.25])])
    assert report["FPS"] == pytest.approx(3.0)


def test_results_round_trip_in_the_toolkit_layout(tmp_path):
    write_results(tmp_path, "trk", "seq", np.array([[1.23456, 2, 3, 4]] * 3), np.array([0.1, 0.2, 0.3]))
    assert (tmp_path / "trk/seq/seq_001.txt").read_text().splitlines()[0] == "1.235,2.000,3.000,4.000"
    boxes, times = read_results(tmp_path, "trk", "seq")
    assert boxes.shape == (3, 4) and times.tolist() == [0.1, 0.2, 0.3]
    with pytest.raises(FileNotFoundError, match="no results for sequence 'other'"):
        read_results(tmp_path, "trk", "other")


def write_dataset(root: Path) -> None:
    videos = [square_video("a", 9, seed=1), square_video("b", 7, step=(2, 3), seed=2, absent=(3, 4)),
              square_video("c", 6, step=(4, 0), seed=3)]
    videos[1].frames = [f[:, ::-1].copy() for f in videos[1].frames]  # start near the right edge
    for a in videos[1].annotations:
        for inst in a.instances:
            inst.box = np.array([80 - inst.box[2], inst.box[1], 80 - inst.box[0], inst.box[3]], np.float32)
            inst.visible_fraction = 0.6
    write_got10k(videos, ["square"], root, "val")


def test_metrics_equal_the_got10k_toolkit_on_the_same_results(tmp_path, monkeypatch):
    pytest.importorskip("got10k")
    import matplotlib

    matplotlib.use("Agg")
    from got10k.experiments import ExperimentGOT10k

    from stpn.tracking.toolkit import ToolkitTracker

    root = tmp_path / "got10k"
    write_dataset(root)
    monkeypatch.chdir(tmp_path)
    experiment = ExperimentGOT10k(str(root), subset="val", result_dir="results", report_dir="reports")
    experiment.run(ToolkitTracker(BrightSquareTracker(wobble=0.03), name="fake", margin=2))
    toolkit = experiment.report(["fake"])["fake"]["overall"]

    ours = evaluate_results(root, "val", tmp_path / "results/GOT-10k", "fake")
    assert 0.3 < ours["AO"] < 0.97 and 0 < ours["SR75"] < ours["SR50"] < 1  # a spread of IoUs
    assert ours["AO"] == pytest.approx(toolkit["ao"], abs=1e-9)
    assert ours["SR50"] == pytest.approx(toolkit["sr"], abs=1e-9)
    assert ours["SR75"] == pytest.approx(toolkit["succ_curve"][75], abs=1e-9)  # threshold index 75 = 0.75
    assert ours["FPS"] == pytest.approx(toolkit["speed_fps"], rel=1e-9)

    # the evaluator itself, on the same frames with the same (deterministic) tracker
    report = evaluate_tracker(BrightSquareTracker(wobble=0.03), root, "val", results_dir=tmp_path / "mine",
                              tracker_name="fake", progress=False, margin=2)
    assert report["AO"] == pytest.approx(toolkit["ao"], abs=1e-9)
    assert report["SR50"] == pytest.approx(toolkit["sr"], abs=1e-9)
    for seq_name in ("a", "b", "c"):
        assert np.array_equal(read_results(tmp_path / "mine", "fake", seq_name)[0],
                              read_results(tmp_path / "results/GOT-10k", "fake", seq_name)[0])


def test_evaluator_reports_degraded_and_clean_frames(tmp_path):
    root = tmp_path / "got10k"
    write_dataset(root)
    report = evaluate_tracker(BrightSquareTracker(), root, "val", progress=False)
    assert report["num_sequences"] == 3 and report["num_frames"] == 8 + 4 + 5  # b: 2 absent frames
    assert report["num_frames_degraded"] + report["num_frames_clean"] == report["num_frames"]
    assert report["num_frames_degraded"] > 0 and report["AO_degraded"] is not None
    assert report["AO"] > 0.7 and report["FPS"] > 0

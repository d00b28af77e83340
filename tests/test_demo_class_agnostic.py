import json

import numpy as np
import pytest
import torch

from benchmarks.demo_class_agnostic import fold_dataset, fold_detections, main, score
from stpn.data import synthetic
from stpn.demo.run import run_demo
from tests.test_demo import toy_settings


def ground_truth_detections(dataset, label_shift: int):
    """One detection on every object's box, labelled ``category + 1 + label_shift`` (mod the count)."""
    n = len(dataset.categories)
    detections = []
    for v, video in enumerate(dataset.videos):
        for t, annotation in enumerate(video.annotations):
            boxes = np.array([i.box for i in annotation.instances], dtype=np.float32).reshape(-1, 4)
            labels = [(i.category_id + label_shift) % n + 1 for i in annotation.instances]
            detections.append({"video_index": v, "frame_index": t, "boxes": torch.as_tensor(boxes),
                               "scores": torch.ones(len(labels)), "labels": torch.as_tensor(labels, dtype=torch.int64)})
    return detections


def test_wrong_classes_score_zero_class_aware_and_full_class_agnostic():
    dataset = synthetic.generate_dataset(2, 8, 64, seed=3)
    right = score(dataset, ground_truth_detections(dataset, 0))
    wrong = score(dataset, ground_truth_detections(dataset, 1))
    for column in ("AP50_degraded", "AP50_clean"):
        assert right["aware"][column] > 99 and right["agnostic"][column] > 99
        assert wrong["aware"][column] < 1 and wrong["agnostic"][column] > 99


def test_folding_keeps_the_boxes_and_drops_near_copies_of_one_object():
    dataset = synthetic.generate_dataset(1, 2, 64, seed=3)
    assert fold_dataset(dataset).categories == ["object"]
    assert all(i.category_id == 0 for a in fold_dataset(dataset).videos[0].annotations for i in a.instances)
    box = torch.tensor([[10.0, 10.0, 30.0, 30.0]])
    det = {"video_index": 0, "frame_index": 0, "boxes": torch.cat([box, box + 1, box + 30]),
           "scores": torch.tensor([0.9, 0.5, 0.8]), "labels": torch.tensor([1, 2, 3])}
    folded = fold_detections([det])[0]
    assert folded["labels"].tolist() == [1, 1] and folded["scores"].tolist() == pytest.approx([0.9, 0.8])


def test_reads_a_finished_demo_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    run_demo(toy_settings(out))
    assert main([str(out)]) == 0
    measured = json.loads((out / "class_agnostic.json").read_text())
    assert [r["model"] for r in measured["runs"]] == ["per-frame", "STPN"]
    assert "| STPN |" in capsys.readouterr().out


def test_a_folder_without_a_demo_is_a_one_line_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "results.json" in err[0]


@pytest.mark.parametrize("text", ["{not json", '{"settings": {}}'])
def test_a_broken_results_file_is_a_one_line_error_naming_it(tmp_path, capsys, text):
    (tmp_path / "results.json").write_text(text)
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "results.json") in err[0]

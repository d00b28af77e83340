"""RoI features of the ground truth, silhouette scores, t-SNE pictures and `stpn tsne`."""
import json
import math

import numpy as np
import pytest

from stpn.analysis.models import load_analysed_detector
from stpn.analysis.roi_features import ObjectFeatures, ground_truth_features
from stpn.analysis.tsne import SUBSETS, silhouette, silhouettes, tsne_figure
from stpn.cli import main
from stpn.metrics.detection_splits import speed_groups
from tests.analysis_tiny import tiny_run, tiny_videos


def separated(n_per_class=40, classes=3, dim=16, seed=0):
    """Features whose classes sit around far-apart centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    return centres[labels] + rng.normal(0, 1, (len(labels), dim)), labels


def test_silhouette_is_higher_for_separated_classes_than_for_shuffled_labels():
    features, labels = separated()
    shuffled = np.random.default_rng(1).permutation(labels)
    assert silhouette(features, labels) > 0.6
    assert abs(silhouette(features, shuffled)) < 0.1
    assert silhouette(features, labels) > silhouette(features, shuffled) + 0.5


def test_silhouettes_per_subset_and_undefined_with_one_class():
    features, labels = separated()
    n = len(labels)
    speeds = np.array(["slow", "medium", "fast"] * (n // 3))
    degraded = np.arange(n) % 2 == 0
    objects = ObjectFeatures(features, labels, speeds, degraded)
    table = silhouettes(objects)
    assert list(table) == list(SUBSETS)
    assert table["all"]["objects"] == n and table["fast"]["objects"] == n // 3 and table["degraded"]["objects"] == n // 2
    assert all(table[s]["silhouette"] > 0.6 for s in SUBSETS)
    one_class = ObjectFeatures(features[:40], labels[:40], speeds[:40], degraded[:40])
    assert math.isnan(silhouettes(one_class)["all"]["silhouette"])
    tsne_figure(objects, ["a", "b", "c"], "title", max_points=30)  # draws (subsampled) without error


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"per-frame": tiny_run(root / "per-frame", None), "STPN": tiny_run(root / "STPN", "relation")}


@pytest.mark.parametrize("name", ["per-frame", "STPN"])
def test_one_feature_row_per_ground_truth_object(name, runs):
    dataset = tiny_videos()
    detector = load_analysed_detector(runs[name])
    objects = ground_truth_features(detector, dataset, progress=False)
    instances = [(v, t, i) for v, video in enumerate(dataset.videos) for t, a in enumerate(video.annotations)
                 for i in a.instances]
    assert objects.features.shape == (len(instances), detector.config.head_kwargs["representation_size"])
    assert np.isfinite(objects.features).all()
    assert objects.labels.tolist() == [i.category_id for _, _, i in instances]
    groups = speed_groups(dataset)
    assert objects.speeds.tolist() == [groups[(v, t, i.track_id)] for v, t, i in instances]
    assert objects.degraded.tolist() == [bool(i.deteriorations) for _, _, i in instances]
    assert objects.degraded.any() and not objects.degraded.all()


def test_tsne_command_writes_pictures_and_scores(runs, tmp_path, capsys):
    out = tmp_path / "tsne"
    assert main(["tsne", "--checkpoint", str(runs["per-frame"]), "--compare", str(runs["STPN"]), "--out", str(out),
                 "--synth-videos", "2", "--synth-frames", "6", "--no-progress"]) == 0
    assert (out / "tsne_per-frame.png").is_file() and (out / "tsne_STPN.png").is_file()
    scores = json.loads((out / "silhouette.json").read_text())
    assert list(scores) == ["per-frame", "STPN"] and list(scores["STPN"]) == list(SUBSETS)
    printed = capsys.readouterr().out
    assert "silhouette score by class" in printed and "degraded" in printed


def test_tsne_needs_ground_truth(runs, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not checked: a file is refused before it is read")
    assert main(["tsne", str(clip), "--checkpoint", str(runs["STPN"]), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stpn tsne: error: ") and "needs ground-truth boxes" in err and "\n" not in err

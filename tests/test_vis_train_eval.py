"""A trained run goes through the merged video inference and YouTube-VIS evaluation unchanged:
``load_vis_run`` gives what ``stpn.vis.evaluate`` / ``stpn eval-vis`` code against."""
import argparse
import json

import pytest
import torch

from stpn.data.formats import write_dataset
from stpn.data.synthetic import generate_dataset
from stpn.engine import TrainConfig
from stpn.prompts.settings import InferenceSettings
from stpn.vis.checkpoint import load_vis_run
from stpn.vis.config import SegmenterConfig
from stpn.vis.evaluate import evaluate_vis
from stpn.vis.sections import VisDataConfig
from stpn.vis.segment_cli import add_vis_eval_commands, run_vis_eval_command
from stpn.vis.train import train_segmenter
from tests.vis_tiny import HEAD, SWIN, tiny_model


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vis_run")
    torch.manual_seed(0)
    dataset = generate_dataset(2, num_frames=6, size=64, seed=0)
    model = tiny_model("relation", classes=list(dataset.categories))
    data = VisDataConfig(num_videos=2, num_frames=6, train_sizes=(64,), max_size=64, max_offset=2)
    config = TrainConfig(lr=1e-3, max_iters=2, batch_size=2, progress=False)
    train_segmenter(model, SegmenterConfig(predictor="relation", swin_kwargs=SWIN, head_kwargs=HEAD), dataset,
                    data, config, out, inference=InferenceSettings(mode="sliding", num_support=2, stride=1))
    return out, dataset


def test_a_trained_run_is_evaluated_by_the_vis_metric(trained_run):
    out, dataset = trained_run
    model, run = load_vis_run(out)
    report, results = evaluate_vis(model, dataset, run.inference, progress=False)
    assert run.inference.mode == "sliding"
    assert 0.0 <= report["AP"] <= 1.0 and 0.0 <= report["AP50"] <= 1.0
    assert results and all(len(r["segmentations"]) == 6 for r in results)
    assert {r["category_id"] for r in results} <= {1, 2, 3}


def test_eval_vis_reads_a_train_vis_run_directory(trained_run, tmp_path):
    out, dataset = trained_run
    write_dataset(dataset.videos, dataset.categories, tmp_path / "ytvis", "ytvis", "valid")
    parser = argparse.ArgumentParser()
    add_vis_eval_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval-vis", "--checkpoint", str(out), "--data", str(tmp_path / "ytvis" / "valid.json"),
                              "--out", str(tmp_path / "eval"), "--device", "cpu"])
    assert run_vis_eval_command(args) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["settings"]["mode"] == "sliding" and "AP" in metrics

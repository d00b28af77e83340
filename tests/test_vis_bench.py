import json

import pytest

from benchmarks.vis_synthetic import MODELS, VisBench, format_table, pretrained_backbone, run
from stpn.demo.pretrain import PretrainSettings


def test_benchmark_trains_and_evaluates_both_segmenters_from_one_pretrained_backbone(tmp_path):
    s = VisBench(out_dir=str(tmp_path), seeds=(0,), train_videos=4, train_frames=4, val_videos=2, frames=6,
                 iters=2, batch_size=2, num_support=2, jobs=1, progress=False,
                 pretrain=PretrainSettings(videos=4, frames=2, iters=2, batch_size=1))
    results = run(s)
    assert [r["model"] for r in results["runs"]] == list(MODELS)
    for r in results["runs"]:
        assert 0.0 <= r["AP"] <= 1.0 and len(r["losses"]) > 0
    assert len(list((tmp_path / "pretrain").glob("*/backbone.safetensors"))) == 1
    saved = json.loads((tmp_path / "data0" / "seed0" / "STPN" / "result.json").read_text())
    assert saved["model"] == "STPN" and saved["seed"] == 0
    assert "| STPN |" in format_table(results["table"], 1)
    # a second run reuses the cached backbone instead of pre-training again
    weights = next((tmp_path / "pretrain").rglob("backbone.safetensors"))
    before = weights.stat().st_mtime_ns
    assert pretrained_backbone(s, None, False) == weights and weights.stat().st_mtime_ns == before


def test_cli_refuses_counts_below_one():
    from benchmarks.vis_synthetic import main

    with pytest.raises(SystemExit):
        main(["--iters", "0"])

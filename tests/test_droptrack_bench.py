import json

from benchmarks.droptrack_synthetic import DropTrackBench, run


def test_benchmark_runs_every_initialisation_end_to_end(tmp_path):
    s = DropTrackBench(out_dir=str(tmp_path), seeds=(0,), train_videos=2, val_videos=1, frames=6, size=64,
                       pretrain_iters=1, pretrain_batch=2, iters=2, batch_size=2)
    results = run(s)
    assert [r["init"] for r in results["runs"]] == ["scratch", "twinmae", "dropmae"]
    assert all(0.0 <= r["AO"] <= 1.0 for r in results["runs"])
    assert (tmp_path / "seed0" / "pretrain_dropmae" / "temporal_embed.safetensors").is_file()
    saved = json.loads((tmp_path / "seed0" / "dropmae" / "droptrack.json").read_text())
    assert "pretrained" not in saved["model"] and saved["model"]["embed_dim"] == 96
    assert set(results["table"]) == {"scratch", "twinmae", "dropmae"}


def test_merge_joins_seeds_and_refuses_other_settings(tmp_path, capsys):
    import pytest

    from benchmarks.droptrack_synthetic import merge

    def fake(name, seed, iters=2, ao=0.5):
        run_dir = tmp_path / name
        run_dir.mkdir()
        settings = {"out_dir": str(run_dir), "seeds": [seed], "iters": iters, "progress": False}
        runs = [{"init": "scratch", "seed": seed, "AO": ao, "SR50": ao, "SR75": 0.0}]
        (run_dir / "results.json").write_text(json.dumps({"settings": settings, "runs": runs}))
        return str(run_dir)

    a, b = fake("a", 0, ao=0.2), fake("b", 1, ao=0.4)
    merged = merge([a, b])
    assert merged["seeds"] == [0, 1]
    assert merged["table"]["scratch"]["AO"] == pytest.approx((0.3, 0.1))
    assert "over 2 seeds" in capsys.readouterr().out
    with pytest.raises(ValueError, match="iters"):
        merge([a, fake("c", 2, iters=3)])
    with pytest.raises(ValueError, match="repeat a seed"):
        merge([a, fake("d", 0)])
    with pytest.raises(FileNotFoundError, match="no results.json"):
        merge([a, str(tmp_path / "missing")])

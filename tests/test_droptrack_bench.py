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

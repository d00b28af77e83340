"""stpn.engine.checkpoint.read_run_record: one reader for every task's run directory."""
import json

import pytest

from stpn.engine.checkpoint import read_run_record


def make_run(tmp_path, record, weights=("model.safetensors",)):
    (tmp_path / "run.json").write_text(record if isinstance(record, str) else json.dumps(record))
    for name in weights:
        (tmp_path / name).write_bytes(b"")
    return tmp_path


def test_finds_the_record_and_the_export_before_the_checkpoint(tmp_path):
    run = make_run(tmp_path, {"a": 1}, ("checkpoint.pt", "model.safetensors"))
    assert read_run_record(run, "run.json", "demo") == ({"a": 1}, run / "model.safetensors")
    assert read_run_record(run / "checkpoint.pt", "run.json", "demo")[1] == run / "checkpoint.pt"
    parsed, _ = read_run_record(run, "run.json", "demo", lambda data, file: (data["a"] + 1, file.name))
    assert parsed == (2, "run.json")


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no demo checkpoint at"):
        read_run_record(tmp_path / "missing", "run.json", "demo")
    with pytest.raises(FileNotFoundError, match="run.json not found: is .* a demo run directory"):
        read_run_record(tmp_path, "run.json", "demo")
    make_run(tmp_path, "{not json", ())
    with pytest.raises(ValueError, match="run.json: not valid JSON"):
        read_run_record(tmp_path, "run.json", "demo")
    make_run(tmp_path, [1, 2], ())
    with pytest.raises(ValueError, match="run.json: expected a JSON object"):
        read_run_record(tmp_path, "run.json", "demo")


def test_the_record_is_checked_before_the_weights_are_looked_for(tmp_path):
    run = make_run(tmp_path, {"a": 1}, ())

    def reject(data, file):
        raise ValueError(f"{file}: bad record")

    with pytest.raises(ValueError, match="bad record"):
        read_run_record(run, "run.json", "demo", reject)
    with pytest.raises(FileNotFoundError, match="no model.safetensors or checkpoint.pt in"):
        read_run_record(run, "run.json", "demo")

"""Every YAML section and JSON run file is checked by the one strict reader: unknown keys,
values of the wrong type and missing keys are one-line errors naming the file, key and type."""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import pytest
import yaml

from stpn.cli import main
from stpn.detection.config import DetectorConfig
from stpn.detection.sections import read_run_config
from stpn.engine import TrainConfig
from stpn.prompts.settings import InferenceSettings
from stpn.strict_fields import check_kwargs, describe, from_dict
from stpn.tracking.checkpoint import TrackerConfig
from stpn.tracking.pairs import PairSettings
from stpn.tracking.train_cli import load_track_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass
class Example:
    name: str
    count: int = 1
    rate: float = 0.5
    flag: bool = False
    sizes: tuple[int, ...] = (1,)
    pair: tuple[float, float] = (0.0, 1.0)
    limit: Optional[int] = None
    options: dict[str, float] = None
    either: Union[str, tuple[str, ...]] = "a"


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "rate": "abc"}, "f.yaml: `s.rate` must be a number, got 'abc' (str)"),
    ({"name": "x", "count": "10"}, "f.yaml: `s.count` must be an integer, got '10' (str)"),
    ({"name": "x", "count": True}, "f.yaml: `s.count` must be an integer, got True (bool)"),
    ({"name": "x", "flag": "yes"}, "f.yaml: `s.flag` must be true or false, got 'yes' (str)"),
    ({"name": "x", "sizes": 3}, "f.yaml: `s.sizes` must be a list of integers, got 3 (int)"),
    ({"name": "x", "sizes": [1, "2"]}, "f.yaml: `s.sizes` must be a list of integers, got a list [1, '2']"),
    ({"name": "x", "pair": [1.0]}, "f.yaml: `s.pair` must be a list of 2 (a number, a number), got a list [1.0]"),
    ({"name": "x", "options": [1, 2]}, "f.yaml: `s.options` must be a mapping of numbers, got a list [1, 2]"),
    ({"name": "x", "limit": 2.5}, "f.yaml: `s.limit` must be an integer or null, got 2.5 (float)"),
    ({"name": "x", "cuont": 2}, "f.yaml: unknown `s` keys ['cuont']; known: count, either, flag"),
    ({"count": 2}, "f.yaml: missing `s.name`"),
    ([1, 2], "f.yaml: section `s` must be a mapping of settings, got a list [1, 2]"),
])
def test_bad_values_are_one_line_errors_naming_key_file_and_type(data, message):
    with pytest.raises(ValueError) as info:
        from_dict(Example, data, "f.yaml", section="s")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_conversions():
    e = from_dict(Example, {"name": "x", "rate": 1, "sizes": [2, 3], "pair": [1, 2], "limit": None,
                            "options": {"a": 2}, "either": ["b", "c"]})
    assert e.rate == 1.0 and isinstance(e.rate, float) and e.sizes == (2, 3) and e.pair == (1.0, 2.0)
    assert e.options == {"a": 2.0} and e.either == ("b", "c")
    assert from_dict(Example, {"name": "x", "rate": "1e-4"}).rate == 1e-4  # YAML 1.1 reads 1e-4 as a string
    assert describe(Optional[tuple[int, ...]]) == "a list of integers or null"


def test_one_reader_for_every_config_class():
    for cls, data in ((TrainConfig, {"lr": 0.1, "max_iters": "10"}), (PairSettings, {"max_gap": "10"}),
                      (DetectorConfig, {"class_names": ["a"], "num_prompts": "5"}),
                      (InferenceSettings, {"num_support": "5"})):
        with pytest.raises(ValueError, match="must be an integer( or null)?, got '.*' \\(str\\)"):
            cls.from_dict(data, "x.yaml")
    with pytest.raises(ValueError, match="x.yaml: `train.lr` must be a number, got 'abc'"):
        TrainConfig.from_dict({"lr": "abc", "max_iters": 2}, "x.yaml", section="train")
    with pytest.raises(ValueError, match="x.yaml `train`: max_iters must be"):  # the class's own checks
        TrainConfig.from_dict({"lr": 0.1, "max_iters": 0}, "x.yaml", section="train")


def detection_config(tmp_path, **changes):
    cfg = yaml.safe_load((CONFIGS / "vid_swin_t_stpn.yaml").read_text())
    for section, values in changes.items():
        cfg[section] = values if not isinstance(values, dict) else {**(cfg.get(section) or {}), **values}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_presets_read():
    for preset in sorted(CONFIGS.glob("vid_*.yaml")):
        cfg = read_run_config(preset)
        assert cfg.eval.test_size == 600 and cfg.data.max_offset == 9 and cfg.train.lr == 2.5e-5
    for preset in sorted(CONFIGS.glob("got10k_*.yaml")):
        load_track_config(preset)


@pytest.mark.parametrize("changes, message", [
    ({"eval": {"test_sise": 600}}, "unknown `eval` keys ['test_sise']"),
    ({"eval": {"test_size": "600"}}, "`eval.test_size` must be an integer or null, got '600' (str)"),
    ({"eval": {"mode": "future"}}, "`eval`: unknown mode 'future'"),
    ({"data": {"max_ofset": 3}}, "unknown `data` keys ['max_ofset']"),
    ({"data": {"train_sizes": 600}}, "`data.train_sizes` must be a list of integers, got 600 (int)"),
    ({"data": {"val_splits": {"a": 1}}}, "`data.val_splits` must be a string or a list of strings"),
    ({"train": {"lr": "abc"}}, "`train.lr` must be a number, got 'abc' (str)"),
    ({"train": {"epochs": "9"}}, "`train.epochs` must be an integer or null, got '9' (str)"),
    ({"detector": {"selsa": "no"}}, "`detector.selsa` must be true or false"),
    ({"pretrained": ["a.pth"]}, "`pretrained` must be a checkpoint path"),
])
def test_detection_config_errors(tmp_path, capsys, changes, message):
    path = detection_config(tmp_path, **changes)
    with pytest.raises(ValueError, match="c.yaml"):
        read_run_config(path)
    assert main(["eval", "--config", str(path), "--checkpoint", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(path) in err and "\n" not in err


def tracking_config(tmp_path, section, values):
    cfg = yaml.safe_load((CONFIGS / "got10k_mixformer_cvt21_stpn.yaml").read_text())
    cfg[section] = values if not isinstance(values, dict) else {**(cfg.get(section) or {}), **values}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("section, values, message", [
    ("model", {"serch_size": 320}, "unknown `model` keys ['serch_size']"),
    ("model", {"search_size": "320"}, "`model.search_size` must be an integer, got '320' (str)"),
    ("model", {"depth": 2}, "`model.depth` must be a list, got 2 (int)"),
    ("data", {"num_workers": "8"}, "`data.num_workers` must be an integer"),
    ("pairs", {"flip_prob": "half"}, "`pairs.flip_prob` must be a number"),
    ("stage1", {"lr": "abc"}, "`stage1.lr` must be a number, got 'abc' (str)"),
    ("stage2_pairs", {"negative_probb": 0.5}, "unknown `stage2_pairs` keys ['negative_probb']"),
    ("loss", [1.0], "section `loss` must be a mapping of settings, got a list [1.0]"),
    ("online", {"update_interval": "10"}, "`online.update_interval` must be an integer"),
])
def test_tracking_config_errors(tmp_path, capsys, section, values, message):
    path = tracking_config(tmp_path, section, values)
    assert main(["train-track", "--config", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(path) in err and "\n" not in err


def test_a_model_typo_in_tracker_json_is_named():
    with pytest.raises(ValueError, match="tracker.json: unknown `model` keys \\['stnp'\\]"):
        TrackerConfig.from_dict({"model": {"variant": "tiny", "stnp": True}}, "tracker.json")
    config = TrackerConfig.from_dict({"model": {"variant": "tiny", "embed_dim": [8, 16, 32]}})
    assert config.model["embed_dim"] == (8, 16, 32)


def test_check_kwargs_of_a_function():
    def build(size: int, name: str = "a", **rest):
        return size

    assert check_kwargs(build, {"size": 3}) == {"size": 3}
    with pytest.raises(ValueError, match="unknown keys \\['rest'\\]"):
        check_kwargs(build, {"size": 3, "rest": 1})

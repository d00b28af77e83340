"""`stpn train` on the official key frames: VID key-frame list + DET image list (docs/design.md §3.5)."""
from types import SimpleNamespace

import pytest
import yaml

from stpn.cli import main
from stpn.data.formats import DatasetFormatError, write_dataset, write_imagenet_det
from stpn.data.splits import read_splits
from stpn.data.synthetic import CATEGORIES, iter_videos
from tests.test_detection_model import HEADS, SWIN

VID_LIST = "ImageSets/VID/VID_train_keys.txt"  # the writer has its own VID_train_15frames.txt
DET_LIST = "ImageSets/DET/DET_train_30classes.txt"
OFFICIAL = {"train": VID_LIST, "DET/train": DET_LIST}
VID_KEYS = [("vid_0001", 4), ("vid_0000", 1), ("vid_0001", 0)]  # listed order, not sorted
DET_KEYS = ["still_0002", "still_0000"]  # a subset of the three DET images


def _write_list(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Two 6-frame VID videos, three DET stills (our writers), and the two official-style lists."""
    root = tmp_path_factory.mktemp("ilsvrc")
    videos = list(iter_videos(2, num_frames=6, size=48, seed=0))
    for k, video in enumerate(videos):
        video.name = f"vid_{k:04d}"
    write_dataset(videos, CATEGORIES, root, "vid", "train")
    stills = list(iter_videos(3, num_frames=1, size=48, seed=1))
    for k, still in enumerate(stills):
        still.name = f"still_{k:04d}"
    write_imagenet_det(stills, CATEGORIES, root, "train")
    _write_list(root / VID_LIST, [f"train/{v} 1 {t} 6" for v, t in VID_KEYS])
    _write_list(root / DET_LIST, [f"train/{name} {k + 1}" for k, name in enumerate(DET_KEYS)])
    return root


def _keys(dataset, items):
    return [(dataset.videos[v].name, t) for v, t in items]


@pytest.mark.parametrize("splits", [["train", "DET/train"], ["DET/train", "train"]])
def test_key_frames_address_the_right_videos_of_concatenated_splits(root, splits):
    dataset, items = read_splits(root, "vid", splits, OFFICIAL)
    expected = {"train": VID_KEYS, "DET/train": [(name, 0) for name in DET_KEYS]}
    assert _keys(dataset, items) == [key for split in splits for key in expected[split]]
    assert sorted(v.name for v in dataset.videos if len(v) == 1) == sorted(DET_KEYS)  # unlisted image unread


def test_modes_and_defaults(root):
    dataset, items = read_splits(root, "vid", ["train", "DET/train"])  # no option: every frame
    assert len(items) == 2 * 6 + 3 and len(dataset.videos) == 5
    annotated = [(v, t) for v, video in enumerate(dataset.videos) for t, a in enumerate(video.annotations)
                 if a.instances]
    assert read_splits(root, "vid", ["train", "DET/train"], "annotated")[1] == annotated
    _, items = read_splits(root, "vid", ["train", "DET/train"], {"train": VID_LIST})  # DET/train: all
    assert len(items) == len(VID_KEYS) + 3
    _, items = read_splits(root, "vid", ["train"], "ImageSets/VID_train_15frames.txt")  # our writer's list
    assert items == [(v, t) for v in range(2) for t in range(6)]  # videos shorter than 15 frames: all


def test_list_found_by_name_in_the_imagesets_folders(root):
    """SELSA keeps the lists in ImageSets/VID, FGFA/MEGA in ImageSets/: a path whose folder is
    wrong still finds the file by name."""
    _, items = read_splits(root, "vid", ["train"], {"train": "ImageSets/VID_train_keys.txt"})
    assert len(items) == len(VID_KEYS)


def _config(root, tmp_path, **data):
    config = {
        "detector": {"class_names": list(CATEGORIES), "predictor": "relation", "fpn_channels": 16,
                     "swin_kwargs": SWIN, "head_kwargs": {k: list(v) if isinstance(v, tuple) else v
                                                          for k, v in HEADS.items()}},
        "train": {"lr": 1e-4, "max_iters": 1, "batch_size": 2, "progress": False},
        "data": {"root": str(root), "format": "vid", "train_splits": ["train", "DET/train"], "val_splits": ["train"],
                 "train_sizes": [48], "max_size": 48, **data},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_stpn_train_uses_the_listed_key_frames(root, tmp_path, monkeypatch):
    seen = {}

    def fake_fit(model, loader, config, out_dir, resume=None):  # what the engine would train on
        seen["clips"] = loader.dataset.inner
        return SimpleNamespace(end_iteration=0)

    monkeypatch.setattr("stpn.detection.run.fit", fake_fit)
    config = _config(root, tmp_path, key_frames=OFFICIAL)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 0
    clips = seen["clips"]
    assert _keys(clips.dataset, clips.items) == VID_KEYS + [(name, 0) for name in DET_KEYS]
    item = clips[len(VID_KEYS)]  # a DET image: a clip of copies of itself
    assert item["support_indices"].tolist() == [0, 0]


def test_missing_list_names_the_file_and_the_way_out(root, tmp_path, capsys):
    config = _config(root, tmp_path, key_frames={"train": "ImageSets/VID/VID_train_every10frames.txt"})
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "VID_train_every10frames.txt not found" in err and "key_frames: annotated" in err


@pytest.mark.parametrize("split, line, message", [
    ("train", "train/vid_0009 1 2 6", "video 'vid_0009' is not in the dataset"),
    ("train", "train/vid_0000 1 6 6", "frame '6' is outside video 'vid_0000'"),
    ("DET/train", "train/still_0009 2", "image 'still_0009' has no frame file"),
])
def test_list_naming_what_is_not_there_names_the_line(root, tmp_path, split, line, message):
    good = {"train": "train/vid_0000 1 0 6", "DET/train": "train/still_0000 1"}[split]
    _write_list(tmp_path / "list.txt", [good, line])
    with pytest.raises(DatasetFormatError, match=f"list.txt: line 2: {message}"):
        read_splits(root, "vid", [split], {split: str(tmp_path / "list.txt")})


def test_key_frames_option_is_checked(root):
    with pytest.raises(ValueError, match=r"names splits \['val'\]"):
        read_splits(root, "vid", ["train"], {"val": "annotated"})
    with pytest.raises(ValueError, match="key_frames must be"):
        read_splits(root, "vid", ["train"], ["train"])


def test_vid_presets_train_on_the_official_lists():
    from pathlib import Path

    from stpn.detection.cli import load_run_config

    presets = sorted((Path(__file__).resolve().parents[1] / "configs").glob("vid_*.yaml"))
    assert len(presets) == 8
    for preset in presets:
        data = load_run_config(preset)["data"]
        assert data["train_splits"] == ["train", "DET/train"]
        assert data["key_frames"] == {"train": "ImageSets/VID/VID_train_15frames.txt",
                                      "DET/train": "ImageSets/DET/DET_train_30classes.txt"}

"""The Cityscapes snippet reader on a fake tree, its labelId table and its errors."""
import numpy as np
import pytest
from PIL import Image

from stpn.data.formats.cityscapes import LABELLED_INDEX, cityscapes_train_ids, read_cityscapes
from stpn.data.formats.errors import DatasetFormatError
from tests.vss_fake_datasets import fake_cityscapes, write_png


def test_known_label_ids_map_to_the_official_train_ids():
    ids = np.array([7, 8, 11, 21, 23, 24, 26, 33, 0, 1, 4, 9, 14, 29, 30, 255], np.uint8)
    assert cityscapes_train_ids(ids).tolist() == [0, 1, 2, 8, 10, 11, 13, 18] + [255] * 8
    all_ids = cityscapes_train_ids(np.arange(256, dtype=np.uint8))
    assert sorted(set(all_ids.tolist()) - {255}) == list(range(19))  # each train id once


def test_snippets_come_back_in_order_with_the_20th_frame_labelled(tmp_path):
    sequences = read_cityscapes(fake_cityscapes(tmp_path))
    assert [s.name for s in sequences] == ["aachen/aachen_000000", "bochum/bochum_000003"]
    bochum = sequences[1]
    assert len(bochum.frames) == 30 and bochum.frames[0].name == "bochum_000003_000275_leftImg8bit.png"
    assert list(bochum.labels) == [LABELLED_INDEX]
    assert bochum.labels[LABELLED_INDEX].name == "bochum_000003_000294_gtFine_labelIds.png"
    assert bochum.frames[LABELLED_INDEX].name == "bochum_000003_000294_leftImg8bit.png"
    labels = cityscapes_train_ids(np.asarray(Image.open(bochum.labels[LABELLED_INDEX])))
    assert labels[0, 5] == 0 and labels[-1, 5] == 13 and labels[0, 0] == 255


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="leftImg8bit_sequence/val"):
        read_cityscapes(fake_cityscapes(tmp_path), "val")


def test_snippet_without_its_label_or_its_labelled_frame(tmp_path):
    root = fake_cityscapes(tmp_path)
    label = root / "gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png"
    label.unlink()
    with pytest.raises(DatasetFormatError, match="aachen_000000_000000_leftImg8bit.png.*no \\*_gtFine_labelIds"):
        read_cityscapes(root)
    write_png(label, np.zeros((32, 64), np.uint8))
    (root / "leftImg8bit_sequence/train/aachen/aachen_000000_000019_leftImg8bit.png").unlink()
    with pytest.raises(DatasetFormatError, match="aachen_000000_000019_gtFine_labelIds.png.*labelled frame 000019"):
        read_cityscapes(root)


def test_label_of_the_wrong_size_is_named(tmp_path):
    root = fake_cityscapes(tmp_path)
    label = root / "gtFine/train/bochum/bochum_000003_000294_gtFine_labelIds.png"
    write_png(label, np.zeros((16, 64), np.uint8))
    with pytest.raises(DatasetFormatError,
                       match="bochum_000003_000294_gtFine_labelIds.png: size: label image is 64x16"):
        read_cityscapes(root)

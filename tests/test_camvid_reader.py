"""The CamVid reader (SegNet layout, optional sequence frames) on a fake tree, and its errors."""
import numpy as np
import pytest
from PIL import Image

from stpn.data.formats.camvid import camvid_train_ids, parse_frame_name, read_camvid
from stpn.data.formats.errors import DatasetFormatError
from tests.vss_fake_datasets import fake_camvid, frame, write_png


def test_names_and_label_decoding(tmp_path):
    assert parse_frame_name(tmp_path / "0006R0_f00930.png") == ("0006R0", 930)
    assert parse_frame_name(tmp_path / "Seq05VD_f00000.png") == ("Seq05VD", 0)
    assert camvid_train_ids(np.array([0, 3, 10, 11])).tolist() == [0, 3, 10, 255]
    with pytest.raises(DatasetFormatError, match="x.png: labels: value 12"):
        camvid_train_ids(np.array([12]), tmp_path / "x.png")


def test_without_sequences_every_annotated_frame_stands_alone(tmp_path):
    sequences = read_camvid(fake_camvid(tmp_path))
    assert [s.name for s in sequences] == ["0001TP_006690", "0006R0_f00930"]
    assert all(len(s.frames) == 1 and list(s.labels) == [0] and s.label_format == "camvid" for s in sequences)
    labels = camvid_train_ids(np.asarray(Image.open(sequences[0].labels[0])))
    assert labels[0, 0] == 0 and labels[0, 52] == 10 and labels[0, 63] == 255


def test_sequence_frames_are_paired_by_name(tmp_path):
    root = fake_camvid(tmp_path, sequences=True)
    sequences = read_camvid(root)
    first = sequences[0]
    assert len(first.frames) == 30 and list(first.labels) == [29]
    assert first.frames[0].name == "0001TP_006661.png" and first.frames[0].parent.name == "0001TP"
    assert first.frames[-1] == root / "train" / "0001TP_006690.png"  # the annotated file itself
    assert sequences[1].frames[0].name == "0006R0_f00901.png"


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found: .*/train$"):
        read_camvid(tmp_path)
    root = fake_camvid(tmp_path / "a")
    (root / "trainannot/0006R0_f00930.png").unlink()
    with pytest.raises(DatasetFormatError, match="train/0006R0_f00930.png: label: image without its label"):
        read_camvid(root)
    root = fake_camvid(tmp_path / "b")
    write_png(root / "trainannot/0001TP_006690.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetFormatError, match="0001TP_006690.png: size"):
        read_camvid(root)
    root = fake_camvid(tmp_path / "c", sequences=True)
    write_png(root / "sequences/0001TP/0001TP_006689.png", frame(0, 128, 64))
    with pytest.raises(DatasetFormatError, match="0001TP_006689.png: size.*resize"):
        read_camvid(root)

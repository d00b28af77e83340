"""Dataset formats: write → read round trips (every format) and malformed input → DatasetFormatError
naming the file and the field."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from stpn.data.formats import (
    DatasetFormatError, ProblemLog, detect_format, read_cocovid, read_got10k, read_imagenet_det,
    read_imagenet_vid, read_key_frames, read_ytvis, read_ytvis_results, write_cocovid, write_got10k,
    write_imagenet_det, write_imagenet_vid, write_ytvis, write_ytvis_results, ytvis_result,
)
from stpn.data.formats.got10k import cover_level
from stpn.data.formats.vid_xml import integer_box
from stpn.data.types import FrameAnnotation, Instance, Video, load_frame

CATEGORIES = ["cat", "dog", "zebra"]


def _ellipse(height: int, width: int, box: np.ndarray) -> np.ndarray:
    ys, xs = np.mgrid[:height, :width] + 0.5
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    return ((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0


def make_video(name: str, num_frames: int = 5, height: int = 48, width: int = 64, seed: int = 0) -> Video:
    """Two moving objects (track 3: a cat, track 7: a zebra that leaves in frame 2 and is partly
    hidden in frame 1) with fractional boxes, masks and deteriorations, drawn into the frames."""
    rng = np.random.default_rng(seed)
    frames, annotations = [], []
    for t in range(num_frames):
        image = np.full((height, width, 3), 40, np.uint8)
        instances = []
        for track_id, category, x0, colour in ((3, 0, 4.3, (250, 30, 30)), (7, 2, 30.6, (30, 30, 250))):
            if track_id == 7 and t == 2:
                continue
            s = t % 6  # back and forth, so any length stays inside a 48 x 64 frame
            box = np.array([x0 + 2.25 * s, 6.7 + s, x0 + 20.45 + s, 30.2 + 1.5 * s], np.float32)
            box += np.float32(rng.uniform(0, 0.1))
            mask = _ellipse(height, width, box)
            image[mask] = colour
            inst = Instance(track_id, category, box, mask)
            if track_id == 3 and t == 3:
                inst.deteriorations = ("motion_blur",)
            if track_id == 7 and t == 1:
                inst.visible_fraction, inst.deteriorations = 0.4, ("occlusion",)
            instances.append(inst)
        frames.append(image)
        annotations.append(FrameAnnotation(instances, ("noise", "jpeg") if t == 1 else ()))
    return Video(name, frames, annotations, height, width)


def make_videos() -> list[Video]:
    return [make_video("clip_a", seed=1), make_video("group/clip_b", num_frames=4, seed=2)]


def make_still(name: str = "still_0") -> Video:
    video = make_video(name, num_frames=1, seed=5)
    return video


def assert_same_video(read: Video, original: Video, box=lambda b: b, atol=0.0, masks=True, extras=True) -> None:
    assert (read.height, read.width, len(read)) == (original.height, original.width, len(original))
    assert len(read.frames) == len(original.frames)
    for t, (a, b) in enumerate(zip(read.annotations, original.annotations)):
        assert [i.track_id for i in a.instances] == [i.track_id for i in b.instances], t
        if extras:
            assert a.deteriorations == b.deteriorations
        for x, y in zip(a.instances, b.instances):
            assert x.category_id == y.category_id
            np.testing.assert_allclose(x.box, box(y.box), atol=atol, rtol=0)
            assert x.box.dtype == np.float32
            if masks:
                assert x.mask is not None and np.array_equal(x.mask, y.mask)
            if extras:
                assert (x.deteriorations, x.visible_fraction) == (y.deteriorations, y.visible_fraction)
    frame = load_frame(read.frames[0])
    assert frame.shape == (original.height, original.width, 3)
    assert np.abs(frame.astype(int) - original.frames[0].astype(int)).mean() < 6  # JPEG q90


def vid_box(video: Video):
    return lambda b: np.array(integer_box(b, video.width, video.height), np.float32)


# --------------------------------------------------------------------------- round trips


def test_vid_round_trip(tmp_path):
    videos = make_videos()
    summary = write_imagenet_vid(iter(videos), CATEGORIES, tmp_path)
    assert (summary.videos, summary.frames) == (2, 9)
    assert (tmp_path / "Data/VID/train/group/clip_b/000003.JPEG").is_file()
    assert (tmp_path / "Annotations/VID/train/clip_a/000000.xml").is_file()
    dataset = read_imagenet_vid(tmp_path, "train")
    assert dataset.categories == CATEGORIES
    assert [v.name for v in dataset.videos] == ["clip_a", "group/clip_b"]
    for read, original in zip(dataset.videos, videos):
        assert_same_video(read, original, box=vid_box(original))
    assert detect_format(tmp_path) == "vid"


def test_vid_rounds_boxes_to_whole_pixels_and_keeps_them_apart():
    assert integer_box(np.array([10.4, 2.6, 10.45, 3.0]), 64, 48) == [10, 3, 11, 4]
    assert integer_box(np.array([0.2, 0.0, 64.0, 48.0]), 64, 48) == [0, 0, 64, 48]


def test_vid_without_sidecar_keeps_the_occluded_flag_only(tmp_path):
    write_imagenet_vid(make_videos(), CATEGORIES, tmp_path)
    for sidecar in tmp_path.rglob("stpn_extras.json"):
        sidecar.unlink()
    video = read_imagenet_vid(tmp_path).videos[0]
    occluded = video.annotations[1].instances[1]
    assert occluded.track_id == 7 and occluded.visible_fraction == 0.5 and occluded.mask is None
    assert video.annotations[1].deteriorations == ()
    assert video.annotations[0].instances[0].visible_fraction == 1.0


def test_vid_reads_synsets_and_key_frame_lists(tmp_path):
    video = make_video("v", num_frames=3)
    write_imagenet_vid([video], ["airplane", "n02419796", "bear"], tmp_path, split="val", key_frames=2)
    (tmp_path / "categories.txt").unlink()  # fall back to the 30 VID classes
    dataset = read_imagenet_vid(tmp_path, "val")
    assert len(dataset.categories) == 30 and dataset.categories[:3] == ["airplane", "antelope", "bear"]
    labels = [[i.category_id for i in a.instances] for a in dataset.videos[0].annotations]
    assert labels[0] == [0, 2]  # cat → "airplane" (0), zebra → "bear" (2)
    pairs = read_key_frames(tmp_path / "ImageSets/VID_val_2frames.txt", dataset, "val")
    assert pairs == [(0, 0), (0, 2)]


def test_det_round_trip(tmp_path):
    stills = [make_still("a/img_0"), make_still("img_1")]
    write_imagenet_det(stills, CATEGORIES, tmp_path)
    dataset = read_imagenet_det(tmp_path)
    assert [v.name for v in dataset.videos] == ["a/img_0", "img_1"]
    for read, original in zip(dataset.videos, stills):
        assert_same_video(read, original, box=vid_box(original))
    with pytest.raises(ValueError, match="still images"):
        write_imagenet_det([make_video("v", num_frames=2)], CATEGORIES, tmp_path / "x")


def test_det_drops_classes_outside_the_list(tmp_path):
    write_imagenet_det([make_still()], CATEGORIES, tmp_path)
    image = read_imagenet_det(tmp_path, categories=["cat", "dog"]).videos[0]
    assert [i.track_id for i in image.annotations[0].instances] == [3]


def test_cocovid_round_trip(tmp_path):
    videos = make_videos() + [make_still()]
    write_cocovid(iter(videos), CATEGORIES, tmp_path, split="val")
    data = json.loads((tmp_path / "annotations/val.json").read_text())
    assert {"videos", "images", "annotations", "categories"} <= set(data)
    assert data["images"][0]["frame_id"] == 0 and "instance_id" in data["annotations"][0]
    dataset = read_cocovid(tmp_path, "val")
    assert dataset.categories == CATEGORIES
    assert [v.name for v in dataset.videos] == [v.name for v in videos]
    for read, original in zip(dataset.videos, videos):
        assert_same_video(read, original)  # boxes bit-exact
    assert detect_format(tmp_path) == "cocovid"


def test_ytvis_round_trip(tmp_path):
    videos = make_videos()
    write_ytvis(videos, CATEGORIES, tmp_path)
    data = json.loads((tmp_path / "train.json").read_text())
    track7 = next(a for a in data["annotations"] if a["track_id"] == 7)
    assert track7["segmentations"][2] is None and track7["bboxes"][2] is None
    assert len(track7["segmentations"]) == data["videos"][0]["length"] == 5
    dataset = read_ytvis(tmp_path)
    assert dataset.categories == CATEGORIES
    for read, original in zip(dataset.videos, videos):
        assert_same_video(read, original)
    assert detect_format(tmp_path) == "ytvis"


def test_ytvis_needs_masks(tmp_path):
    video = make_video("v")
    video.annotations[2].instances[0].mask = None
    with pytest.raises(ValueError, match="needs masks"):
        write_ytvis([video], CATEGORIES, tmp_path)


def test_ytvis_results_round_trip(tmp_path):
    masks = [make_video("v").annotations[t].instances[0].mask for t in range(3)] + [None]
    path = write_ytvis_results([ytvis_result(1, 2, 0.75, masks)], tmp_path / "results.json")
    (result,) = read_ytvis_results(path)
    assert (result["video_id"], result["category_id"], result["score"]) == (1, 2, 0.75)
    assert result["segmentations"][3] is None
    from stpn.data.formats.geometry import decode_mask

    assert np.array_equal(decode_mask(result["segmentations"][1], 48, 64), masks[1])


def test_got10k_round_trip_one_sequence_per_track(tmp_path):
    videos = make_videos()
    write_got10k(videos, CATEGORIES, tmp_path, split="val")
    names = ["clip_a_3", "clip_a_7", "group/clip_b_3", "group/clip_b_7"]
    assert (tmp_path / "val/list.txt").read_text().split() == names
    seq = tmp_path / "val/clip_a_7"
    assert (seq / "00000001.jpg").is_file() and not (seq / "00000000.jpg").exists()
    assert (seq / "absence.label").read_text().split() == ["0", "0", "1", "0", "0"]
    assert (seq / "cover.label").read_text().split() == ["8", "4", "0", "8", "8"]
    assert len((seq / "groundtruth.txt").read_text().splitlines()) == 5
    dataset = read_got10k(tmp_path, "val")
    assert dataset.categories == CATEGORIES
    sources = [(videos[0], 3), (videos[0], 7), (videos[1], 3), (videos[1], 7)]
    for read, (original, track_id) in zip(dataset.videos, sources):
        only_track = Video(original.name, original.frames, [
            FrameAnnotation([i for i in a.instances if i.track_id == track_id], a.deteriorations)
            for a in original.annotations], original.height, original.width)
        assert_same_video(read, only_track, atol=2e-4)
    assert detect_format(tmp_path) == "got10k"


def test_got10k_sequence_spans_the_track_only(tmp_path):
    video = make_video("v", num_frames=6)
    for t in (0, 5):  # track 7 enters at frame 1 and leaves after frame 4
        video.annotations[t].instances = [i for i in video.annotations[t].instances if i.track_id != 7]
    write_got10k([video], CATEGORIES, tmp_path)
    meta = (tmp_path / "train/v_7/meta_info.ini").read_text()
    assert "first_frame: 1" in meta and "source_video: v" in meta and "object_class: zebra" in meta
    sequence = read_got10k(tmp_path).videos[1]
    assert sequence.name == "v_7" and len(sequence) == 4
    assert [len(a.instances) for a in sequence.annotations] == [1, 0, 1, 1]  # absent in source frame 2
    source_box = video.annotations[3].instances[1].box
    np.testing.assert_allclose(sequence.annotations[2].instances[0].box, source_box, atol=2e-4)
    assert np.abs(load_frame(sequence.frames[0]).astype(int) - video.frames[1]).mean() < 6


def test_vid_split_without_annotations_reads_unannotated(tmp_path):
    write_imagenet_vid(make_videos(), CATEGORIES, tmp_path, split="test")
    shutil.rmtree(tmp_path / "Annotations/VID/test")
    dataset = read_imagenet_vid(tmp_path, "test")
    assert [(v.height, v.width, len(v)) for v in dataset.videos] == [(48, 64, 5), (48, 64, 4)]
    assert all(not a.instances for v in dataset.videos for a in v.annotations)


def test_got10k_cover_levels():
    assert [cover_level(v) for v in (0.0, 0.01, 0.125, 0.126, 0.5, 0.99, 1.0)] == [0, 1, 1, 2, 4, 8, 8]


def test_got10k_test_split_with_first_box_only(tmp_path):
    write_got10k([make_video("v")], ["cat"] * 0 + CATEGORIES, tmp_path, split="test")
    seq = tmp_path / "test/v_3"
    (seq / "groundtruth.txt").write_text((seq / "groundtruth.txt").read_text().splitlines()[0] + "\n")
    for name in ("absence.label", "cover.label", "stpn_extras.json"):
        (seq / name).unlink(missing_ok=True)
    video = read_got10k(tmp_path, "test").videos[0]
    assert [len(a.instances) for a in video.annotations] == [1, 0, 0, 0, 0]


def test_conversion_copies_jpeg_frames(tmp_path):
    write_imagenet_vid(make_videos(), CATEGORIES, tmp_path / "vid")
    dataset = read_imagenet_vid(tmp_path / "vid")
    write_cocovid(dataset.videos, dataset.categories, tmp_path / "coco")
    again = read_cocovid(tmp_path / "coco")
    for a, b in zip(again.videos, dataset.videos):
        assert Path(a.frames[2]).read_bytes() == Path(b.frames[2]).read_bytes()
        assert_same_video(a, Video(b.name, [load_frame(f) for f in b.frames], b.annotations, b.height, b.width))


def test_writers_reject_inconsistent_videos(tmp_path):
    video = make_video("v")
    video.annotations[1].instances[0].box = np.array([30, 5, 20, 9], np.float32)
    with pytest.raises(ValueError, match="frame 1 track 3.*no area"):
        write_imagenet_vid([video], CATEGORIES, tmp_path)
    video = make_video("v")
    video.annotations[1].instances[0].box = np.array([30, 5, 70, 9], np.float32)
    with pytest.raises(ValueError, match="outside the 64x48 image"):
        write_ytvis([video], CATEGORIES, tmp_path)
    video = make_video("v")
    video.annotations[0].instances[0].category_id = 5
    with pytest.raises(ValueError, match="outside the 3 categories"):
        write_cocovid([video], CATEGORIES, tmp_path)
    with pytest.raises(ValueError, match="relative path"):
        write_cocovid([make_video("../escape")], CATEGORIES, tmp_path)
    with pytest.raises(ValueError, match="2 frames but 5"):
        bad = make_video("v")
        write_got10k([Video("v", bad.frames[:2], bad.annotations, 48, 64)], CATEGORIES, tmp_path)


# --------------------------------------------------------------------------- malformed input


# Each corruption: (edit of a freshly written dataset at root r, file expected in the error, field).


def delete(rel: str):
    def edit(r: Path) -> None:
        target = r / rel
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return edit


def empty(rel: str):
    return lambda r: [p.unlink() for p in (r / rel).iterdir() if p.is_file()]


def write(rel: str, text: str):
    return lambda r: (r / rel).write_text(text)


def replace(rel: str, old: str, new: str):
    def edit(r: Path) -> None:
        text = (r / rel).read_text()
        assert old in text
        (r / rel).write_text(text.replace(old, new, 1))
    return edit


def edit_json(rel: str, change):
    def edit(r: Path) -> None:
        data = json.loads((r / rel).read_text())
        change(data)
        (r / rel).write_text(json.dumps(data))
    return edit


VID_DATA, VID_ANN = "Data/VID/train/clip_a", "Annotations/VID/train/clip_a"
XML0, SIDECAR = f"{VID_ANN}/000000.xml", f"{VID_ANN}/stpn_extras.json"
VID_CORRUPTIONS = {
    "missing frame file": (delete(f"{VID_DATA}/000004.JPEG"), f"{VID_ANN}/000004.xml", "frame file"),
    "frame numbering gap": (delete(f"{VID_DATA}/000002.JPEG"), VID_DATA, "frames"),
    "broken xml": (write(f"{VID_ANN}/000001.xml", "<annotation><size>"), f"{VID_ANN}/000001.xml", "xml"),
    "box outside": (replace(XML0, "<xmax>25</xmax>", "<xmax>90</xmax>"), XML0, "object[0].bndbox"),
    "box without area": (replace(XML0, "<xmin>4</xmin>", "<xmin>30</xmin>"), XML0, "object[0].bndbox"),
    "unknown class": (replace(XML0, "<name>cat</name>", "<name>unicorn</name>"), XML0, "object[0].name"),
    "missing size": (replace(XML0, "<width>64</width>", ""), XML0, "size"),
    "bad track id": (replace(XML0, "<trackid>3</trackid>", "<trackid>x</trackid>"), XML0, "object[0].trackid"),
    "length mismatch": (replace("ImageSets/VID_train_videos.txt", "1 0 5", "1 0 6"),
                        "ImageSets/VID_train_videos.txt", "line 1"),
    "empty video": (empty(VID_DATA), VID_DATA, "frames"),
    "missing annotation folder": (delete(VID_ANN), VID_ANN, "annotations"),
    "bad sidecar": (write(SIDECAR, "{not json"), SIDECAR, "json"),
    "unknown deterioration": (replace(SIDECAR, '"noise"', '"rain"'), SIDECAR, "frames[1].deteriorations"),
}

COCO = "annotations/train.json"
COCO_CORRUPTIONS = {
    "broken json": (write(COCO, '{"videos": ['), COCO, "json"),
    "missing key": (edit_json(COCO, lambda d: d.pop("images")), COCO, "images"),
    "missing frame file": (delete("images/train/clip_a/000003.jpg"), COCO, "images[3].file_name"),
    "box outside": (edit_json(COCO, lambda d: d["annotations"][1].update(bbox=[50, 0, 30, 10])),
                    COCO, "annotations[1].bbox"),
    "bad bbox": (edit_json(COCO, lambda d: d["annotations"][1].update(bbox=[1, 2])), COCO, "annotations[1].bbox"),
    "unknown category": (edit_json(COCO, lambda d: d["annotations"][0].update(category_id=9)),
                         COCO, "annotations[0].category_id"),
    "unknown image": (edit_json(COCO, lambda d: d["annotations"][0].update(image_id=999)),
                      COCO, "annotations[0].image_id"),
    "frame id gap": (edit_json(COCO, lambda d: d["images"][2].update(frame_id=7)), COCO, "videos[0].frame_id"),
    "empty video": (edit_json(COCO, lambda d: d["videos"].append({"id": 9, "name": "empty"})), COCO, "videos[2]"),
    "bad segmentation": (edit_json(COCO, lambda d: d["annotations"][0]["segmentation"].update(size=[10, 10])),
                         COCO, "annotations[0].segmentation"),
    "wrong type": (edit_json(COCO, lambda d: d["images"][0].update(frame_id="0")), COCO, "images[0].frame_id"),
    "repeated category": (edit_json(COCO, lambda d: d["categories"].append({"id": 1, "name": "bird"})),
                          COCO, "categories[3]"),
}

YT = "train.json"
YTVIS_CORRUPTIONS = {
    "broken json": (write(YT, "[1, 2"), YT, "json"),
    "missing frame file": (delete("train/JPEGImages/clip_a/00001.jpg"), YT, "videos[0].file_names"),
    "video length mismatch": (edit_json(YT, lambda d: d["videos"][0].update(length=9)), YT, "videos[0].length"),
    "track length mismatch": (edit_json(YT, lambda d: d["annotations"][0]["segmentations"].pop()),
                              YT, "annotations[0].segmentations"),
    "bad rle": (edit_json(YT, lambda d: d["annotations"][0]["segmentations"][1].update(size=[5, 5])),
                YT, "annotations[0].segmentations[1]"),
    "box outside": (edit_json(YT, lambda d: d["annotations"][1]["bboxes"].__setitem__(0, [60, 5, 20, 5])),
                    YT, "annotations[1].bboxes[0]"),
    "unknown category": (edit_json(YT, lambda d: d["annotations"][1].update(category_id=0)),
                         YT, "annotations[1].category_id"),
    "empty video": (edit_json(YT, lambda d: d["videos"][1].update(file_names=[])), YT, "videos[1].file_names"),
    "null mask with box": (edit_json(YT, lambda d: d["annotations"][0]["segmentations"].__setitem__(0, None)),
                           YT, "annotations[0].segmentations[0]"),
    "repeated video id": (edit_json(YT, lambda d: d["videos"][1].update(id=1)), YT, "videos[1].id"),
}

SEQ = "train/clip_a_3"
GT = f"{SEQ}/groundtruth.txt"
GOT_CORRUPTIONS = {
    "groundtruth lines differ from frames": (write(GT, "1,2,3,4\n1,2,3,4\n"), GT, "lines"),
    "missing frame file": (delete(f"{SEQ}/00000002.jpg"), SEQ, "frames"),
    "box outside": (write(GT, "50,1,30,3\n" * 5), GT, "line 1"),
    "bad box line": (write(GT, "1,2,3\n" * 5), GT, "line 1"),
    "cover out of range": (write(f"{SEQ}/cover.label", "8\n9\n8\n8\n8\n"), f"{SEQ}/cover.label", "line 2"),
    "absence length": (write(f"{SEQ}/absence.label", "0\n0\n"), f"{SEQ}/absence.label", "lines"),
    "unknown class": (replace(f"{SEQ}/meta_info.ini", "object_class: cat", "object_class: unicorn"),
                      f"{SEQ}/meta_info.ini", "object_class"),
    "missing groundtruth": (delete(GT), GT, "file"),
    "empty sequence": (empty(SEQ), SEQ, "frames"),
    "listed but missing": (delete(SEQ), SEQ, "frames"),
}


def _malformed_cases():
    formats = {"vid": (write_imagenet_vid, read_imagenet_vid, VID_CORRUPTIONS),
               "cocovid": (write_cocovid, read_cocovid, COCO_CORRUPTIONS),
               "ytvis": (write_ytvis, read_ytvis, YTVIS_CORRUPTIONS),
               "got10k": (write_got10k, read_got10k, GOT_CORRUPTIONS)}
    for fmt, (write, read, corruptions) in formats.items():
        for name, (corrupt, file, field) in corruptions.items():
            yield pytest.param(write, read, corrupt, file, field, id=f"{fmt}-{name}")


@pytest.mark.parametrize("write, read, corrupt, file, field", list(_malformed_cases()))
def test_malformed_input_names_file_and_field(tmp_path, write, read, corrupt, file, field):
    write(make_videos(), CATEGORIES, tmp_path)
    read(tmp_path)  # intact: reads
    corrupt(tmp_path)
    with pytest.raises(DatasetFormatError) as info:
        read(tmp_path)
    assert Path(info.value.file) == tmp_path / file
    assert info.value.field == field
    assert str(tmp_path / file) in str(info.value) and field in str(info.value)
    log = ProblemLog(strict=False)  # the collecting log sees the same first problem and returns a dataset
    read(tmp_path, log=log)
    assert (Path(log.problems[0].file), log.problems[0].field) == (tmp_path / file, field)


def test_collecting_log_keeps_every_problem(tmp_path):
    write_cocovid(make_videos(), CATEGORIES, tmp_path)

    def change(d):
        d["annotations"][0]["category_id"] = 9
        d["annotations"][5]["bbox"] = [60, 0, 30, 10]
        d["images"][1]["video_id"] = 42  # its two annotations then point at an unusable image

    edit_json(COCO, change)(tmp_path)
    log = ProblemLog(strict=False)
    dataset = read_cocovid(tmp_path, log=log)
    fields = sorted(p.field for p in log.problems)
    assert fields == ["annotations[0].category_id", "annotations[2].image_id", "annotations[3].image_id",
                      "annotations[5].bbox", "images[1].video_id", "videos[0].frame_id"]
    assert [v.name for v in dataset.videos] == ["group/clip_b"]  # the broken video is skipped


def test_ytvis_results_malformed(tmp_path):
    good = ytvis_result(1, 1, 0.5, [make_video("v").annotations[0].instances[0].mask])
    for entry, field in (({**good, "score": "high"}, "[0].score"), ({**good, "video_id": None}, "[0].video_id"),
                         ({**good, "segmentations": [{"size": [48, 64]}]}, "[0].segmentations[0]")):
        path = write_ytvis_results([entry], tmp_path / "r.json")
        with pytest.raises(DatasetFormatError) as info:
            read_ytvis_results(path)
        assert info.value.field == field and info.value.file == str(path)


def test_unrecognised_layout(tmp_path):
    with pytest.raises(DatasetFormatError, match="no known dataset layout"):
        detect_format(tmp_path)


@pytest.mark.parametrize("write, read", [(write_imagenet_vid, read_imagenet_vid), (write_cocovid, read_cocovid),
                                         (write_ytvis, read_ytvis), (write_got10k, read_got10k)])
def test_numpy_scalars_in_annotations_are_written(tmp_path, write, read):
    video = make_video("v", num_frames=3)
    video.height, video.width = np.int64(48), np.int64(64)
    for a in video.annotations:
        for i in a.instances:
            i.track_id, i.category_id = np.int64(i.track_id), np.int64(i.category_id)
            i.visible_fraction = np.float32(i.visible_fraction)
    write([video], CATEGORIES, tmp_path)
    assert sum(len(v) for v in read(tmp_path).videos) >= 3


def test_ytvis_mask_of_the_wrong_size_names_the_file_and_the_entry(tmp_path):
    write_ytvis(make_videos(), CATEGORIES, tmp_path)
    data = json.loads((tmp_path / "train.json").read_text())
    annotation = data["annotations"][0]
    t = next(i for i, s in enumerate(annotation["segmentations"]) if s is not None)
    annotation["segmentations"][t]["size"] = [annotation["height"] + 1, annotation["width"]]
    (tmp_path / "train.json").write_text(json.dumps(data))
    with pytest.raises(DatasetFormatError) as info:
        read_ytvis(tmp_path)
    message = str(info.value)
    assert "train.json" in message and f"segmentations[{t}]" in message and "differs from the image size" in message
    assert "\n" not in message

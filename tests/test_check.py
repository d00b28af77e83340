"""check_dataset: every problem collected (not just the first), statistics counted correctly."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stpn.data.check import check_dataset, dataset_statistics
from stpn.data.formats import FORMATS, write_dataset, write_imagenet_det, write_imagenet_vid
from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset
from tests.test_formats import CATEGORIES, make_still, make_videos


def _count(videos, what):
    return sum(what(a) for v in videos for a in v.annotations)


@pytest.mark.parametrize("fmt", FORMATS)
def test_clean_dataset_statistics(tmp_path, fmt):
    videos = make_videos()
    write_dataset(videos, CATEGORIES, tmp_path, fmt)
    report = check_dataset(tmp_path)
    assert report.ok, report.problems
    assert report.format == fmt and report.splits == ["train"]
    s = report.statistics
    tracks = {(v.name, i.track_id): i.category_id for v in videos for a in v.annotations for i in a.instances}
    # GOT-10k writes one sequence per track
    assert s.videos == (len(tracks) if fmt == "got10k" else len(videos))
    if fmt != "got10k":
        assert s.frames == sum(len(v) for v in videos)
    for c, name in enumerate(CATEGORIES):
        assert s.objects_per_class[name] == _count(videos, lambda a: sum(i.category_id == c for i in a.instances))
        assert s.tracks_per_class[name] == sum(cat == c for cat in tracks.values())
    assert sum(s.speed_groups.values()) == sum(s.objects_per_class.values())
    for name in ("motion_blur", "occlusion"):
        expected = _count(videos, lambda a: sum(name in i.deteriorations for i in a.instances))
        assert s.object_deteriorations[name] == expected
    if fmt != "got10k":  # GOT-10k repeats frame-wide deteriorations in every track's sequence
        assert s.frame_deteriorations["noise"] == _count(videos, lambda a: "noise" in a.deteriorations)
    table = report.format_table()
    assert "No problems found." in table and "dog" in table and fmt in table


def test_exact_formats_keep_the_speed_groups(tmp_path):
    videos = make_videos()
    write_dataset(videos, CATEGORIES, tmp_path, "cocovid")
    expected = dataset_statistics(VideoDataset(CATEGORIES, videos)).speed_groups
    assert check_dataset(tmp_path).statistics.speed_groups == expected


def test_speed_groups_from_motion():
    box = np.array([10, 10, 30, 30], np.float32)
    still = [FrameAnnotation([Instance(0, 0, box)]) for _ in range(5)]
    jumping = [FrameAnnotation([Instance(0, 0, box + 25 * (t % 2))]) for t in range(5)]
    blank = [np.zeros((64, 64, 3), np.uint8)] * 5
    videos = [Video("s", blank, still, 64, 64), Video("j", blank, jumping, 64, 64)]
    stats = dataset_statistics(VideoDataset(["a"], videos))
    assert stats.speed_groups == {"slow": 5, "fast": 5}
    assert stats.videos == 2 and stats.frames == 10 and stats.annotated_frames == 10


def test_every_problem_is_collected(tmp_path):
    videos = make_videos() + [make_videos()[0]]
    videos[2].name = "clip_c"
    write_imagenet_vid(videos, CATEGORIES, tmp_path)
    write_imagenet_vid(make_videos()[:1], CATEGORIES, tmp_path, split="val")
    ann = tmp_path / "Annotations/VID/train"
    (ann / "clip_a/000001.xml").write_text("<annotation>")
    xml = ann / "group/clip_b/000000.xml"
    xml.write_text(xml.read_text().replace("<name>cat</name>", "<name>unicorn</name>"))
    (tmp_path / "Data/VID/train/clip_c/000004.JPEG").unlink()
    Image.new("RGB", (20, 10)).save(tmp_path / "Data/VID/val/clip_a/000000.JPEG")
    report = check_dataset(tmp_path)
    assert not report.ok and report.splits == ["train", "val"]
    found = {(p.file.replace(str(tmp_path), ""), p.field) for p in report.problems}
    assert found == {
        ("/Annotations/VID/train/clip_a/000001.xml", "xml"),
        ("/Annotations/VID/train/group/clip_b/000000.xml", "object[0].name"),
        ("/Annotations/VID/train/clip_c/000004.xml", "frame file"),
        # consequences of the missing frame: the list and the side-car no longer match the length
        ("/ImageSets/VID_train_videos.txt", "line 3"),
        ("/Annotations/VID/train/clip_c/stpn_extras.json", "frames"),
        ("/Data/VID/val/clip_a/000000.JPEG", "size"),
    }
    assert report.statistics.videos == 4  # damaged videos are still read and counted
    table = report.format_table()
    assert f"Problems ({len(report.problems)}):" in table
    assert all(str(p) in table for p in report.problems)


def test_track_changing_class_is_a_problem(tmp_path):
    video = make_videos()[0]
    write_imagenet_vid([video], CATEGORIES, tmp_path)
    xml = tmp_path / "Annotations/VID/train/clip_a/000003.xml"
    xml.write_text(xml.read_text().replace("<name>cat</name>", "<name>dog</name>"))
    (problem,) = check_dataset(tmp_path).problems
    assert problem.field == "track 3" and problem.file.endswith("000003.JPEG")


def test_vid_check_includes_det_images(tmp_path):
    write_imagenet_vid(make_videos(), CATEGORIES, tmp_path)
    write_imagenet_det([make_still("s0"), make_still("s1")], CATEGORIES, tmp_path)
    report = check_dataset(tmp_path)
    assert report.ok and report.splits == ["train", "DET/train"]
    assert report.statistics.still_images == 2 and report.statistics.videos == 4


def test_unknown_layout_is_reported_not_raised(tmp_path):
    report = check_dataset(tmp_path)
    assert not report.ok and report.problems[0].field == "layout"
    assert "Problems (1)" in report.format_table()

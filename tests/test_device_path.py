"""Inputs reach the model on the model's device, and bf16 autocast at inference.

CI has no GPU, so the model is put on PyTorch's ``meta`` device: a frame or support tensor left
on the CPU meets meta weights and the first layer fails. The heads (data-dependent ops that
``meta`` cannot run) are replaced by stand-ins that assert what reaches them.
"""

import numpy as np
import pytest
import torch

from stpn.data.synthetic import iter_videos
from stpn.data.types import VideoDataset
from stpn.detection.inference import detect_video, prepare_frame
from stpn.detection.run import predict_dataset
from stpn.engine.device import model_device, pick_device, step_under
from stpn.tracking.online import OnlineTracker
from tests.test_detection_model import tiny
from tests.test_detection_selsa import tiny as tiny_selsa
from tests.tracking_fake import BrightSquareTracker, FakeOutput

META = torch.device("meta")


def on_meta(x):
    tensors = x if isinstance(x, (list, tuple)) else [x]
    for t in tensors:
        if isinstance(t, (list, tuple)):
            on_meta(t)
        elif isinstance(t, torch.Tensor):
            assert t.device == META, f"a tensor on {t.device} reached a model on meta"


def heads_on_meta(model, seen):
    """Replace the heads by a check that their inputs are on meta; CPU stand-in detections."""

    def detect_from_maps(maps, sizes, padded, support=None):
        on_meta(maps)
        if support is not None:
            on_meta(support)
        seen.append(len(sizes))
        return [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "labels": torch.zeros(0, dtype=torch.long)}
                for _ in sizes]

    def support_frames(frames, sizes):
        on_meta(frames)
        return [torch.zeros(2, 3, 8, device=META) for _ in sizes]

    model.detect_from_maps = detect_from_maps
    model.support_frames = support_frames
    return model


@pytest.mark.parametrize("predictor", ["transformer", None])
@pytest.mark.parametrize("mode", ["per-video", "sliding", "causal"])
def test_frames_and_supports_go_to_the_model_device(predictor, mode):
    seen = []
    model = heads_on_meta(tiny(predictor).to(META), seen)
    frames = [torch.rand(3, 64, 64) for _ in range(5)]  # CPU frames, as read from a file
    out = list(detect_video(model, frames, mode, 2, 1, batch_size=2))
    assert [t for t, _ in out] == list(range(5)) and sum(seen) == 5
    assert all(d["boxes"].device.type == "cpu" for _, d in out)


def test_a_stream_and_prompt_frames_go_to_the_model_device():
    model = heads_on_meta(tiny("transformer").to(META), [])
    frames = [torch.rand(3, 64, 64) for _ in range(4)]
    assert len(list(detect_video(model, iter(frames), "causal", 2, 1))) == 4
    other = [torch.rand(3, 64, 64) for _ in range(3)]
    assert len(list(detect_video(model, frames, "per-video", 2, prompt_frames=other))) == 4


def test_selsa_supports_go_to_the_model_device():
    model = heads_on_meta(tiny_selsa("transformer").to(META), [])
    frames = [torch.rand(3, 64, 64) for _ in range(4)]
    assert len(list(detect_video(model, frames, "sliding", 2, 1, batch_size=3))) == 4


def test_the_unmoved_frame_would_fail():
    """The check above can fail: a CPU frame does not run through meta weights."""
    model = tiny("transformer").to(META)
    with pytest.raises((RuntimeError, NotImplementedError)):
        model.extractor.embed_frames(prepare_frame(torch.rand(3, 64, 64))[None])


def test_predict_dataset_runs_on_the_model_device():
    dataset = VideoDataset(["a", "b", "c"], list(iter_videos(2, num_frames=3, size=64, seed=0)))
    model = heads_on_meta(tiny("transformer").to(META), [])
    detections, fps = predict_dataset(model, dataset, "per-video", 2, progress=False, test_size=64)
    assert len(detections) == 6 and fps > 0


def test_bf16_autocast_at_inference():
    model = tiny("transformer").eval()
    dtypes = []
    linear = next(m for m in model.extractor.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    frames = [torch.rand(3, 64, 64) for _ in range(3)]
    plain = list(detect_video(model, frames, "sliding", 2, 1))
    assert set(dtypes) == {torch.float32}
    dtypes.clear()
    half = list(detect_video(model, frames, "sliding", 2, 1, bf16=True))
    assert set(dtypes) == {torch.bfloat16}
    assert not torch.is_autocast_enabled("cpu")  # the context does not leak to the caller
    for (_, a), (_, b) in zip(plain, half):
        assert b["boxes"].dtype == b["scores"].dtype == torch.float32 and b["boxes"].device.type == "cpu"
        assert torch.isfinite(b["boxes"]).all()


def test_step_under_keeps_the_context_inside_each_step():
    states = []

    def gen():
        for i in range(3):
            states.append(torch.is_autocast_enabled("cpu"))
            yield i

    for _ in step_under(lambda: torch.autocast("cpu", dtype=torch.bfloat16), gen()):
        states.append(torch.is_autocast_enabled("cpu"))
    assert states == [True, False] * 3


class MetaTracker(BrightSquareTracker):
    """The MixFormer interface on meta: asserts its inputs are there, answers a fixed box."""

    def __init__(self):
        super().__init__(has_stpn=True)
        self.to(META)

    def encode_templates(self, template, online_template):
        on_meta([template, online_template])
        return (template, online_template)

    def embed_support(self, frames):
        on_meta(frames)
        return torch.zeros(frames.shape[0], 4, 2, device=META)

    def predict_prompts(self, support, mask=None):
        on_meta(support)
        return torch.zeros(support.shape[0], 9, 2, device=META)

    def track(self, search, memory, prompts=None, with_score=True):
        on_meta([search, *memory, prompts])
        return FakeOutput(torch.tensor([[0.4, 0.4, 0.6, 0.6]]), torch.tensor([4.0]))


def test_tracker_crops_and_supports_go_to_the_model_device():
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    tracker = OnlineTracker(MetaTracker(), num_support=2, support_stride=1)
    assert tracker.device == META
    tracker.init(image, [20, 10, 12, 12])
    for _ in range(3):
        box, score = tracker.update(image)
        assert box.shape == (4,) and score > 0.9


def test_tracker_bf16_runs_under_autocast():
    model = BrightSquareTracker()
    calls = []
    track = model.track
    model.track = lambda *a, **k: calls.append(torch.is_autocast_enabled("cpu")) or track(*a, **k)
    image = np.zeros((48, 64, 3), dtype=np.uint8)
    image[10:22, 20:32] = 255
    for bf16 in (False, True):
        tracker = OnlineTracker(model, bf16=bf16)
        tracker.init(image, [20, 10, 12, 12])
        tracker.update(image)
    assert calls == [False, True] and not torch.is_autocast_enabled("cpu")


def test_pick_device():
    assert pick_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        pick_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pick_device("cuda")
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")
    assert model_device(torch.nn.Linear(1, 1).to(META)) == META


@pytest.mark.parametrize("command", [
    ["eval", "--config", "c.yaml", "--checkpoint", "run"],
    ["detect", "v.mp4", "--checkpoint", "run"],
    ["track", "v.mp4", "--box", "1,2,3,4", "--checkpoint", "run"],
    ["eval-track", "--data", "d", "--checkpoint", "run"],
])
def test_every_inference_command_has_device_flags(command):
    from stpn.cli import build_parser

    args = build_parser().parse_args(command + ["--device", "cuda:1", "--bf16"])
    assert args.device == "cuda:1" and args.bf16
    assert build_parser().parse_args(command).device is None


@pytest.mark.parametrize("command", [["train", "--config", "c.yaml", "--out", "r"], ["train-track", "--config", "c.yaml"]])
def test_training_commands_take_a_device(command):
    from stpn.cli import build_parser

    assert build_parser().parse_args(command + ["--device", "cpu"]).device == "cpu"


def test_a_bad_device_is_a_one_line_error(capsys):
    from stpn.cli import main

    assert main(["detect", "v.mp4", "--checkpoint", "nowhere", "--device", "gpu0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown device 'gpu0'" in err

"""Detector training through the shared engine, reloading a run, and dataset prediction."""
import numpy as np
import torch

from stpn.data.types import FrameAnnotation, Instance, Video, VideoDataset
from stpn.detection.config import DetectorConfig, build_from_config
from stpn.detection.run import load_detector, predict_dataset, train_detector
from stpn.engine import TrainConfig
from tests.test_detection_model import HEADS, SWIN


def moving_square_videos(n=2, frames=6, size=64):
    rng = np.random.default_rng(0)
    videos = []
    for v in range(n):
        arrays, annotations = [], []
        for t in range(frames):
            img = (rng.random((size, size, 3)) * 60).astype(np.uint8)
            x = 4 + 5 * t
            img[10:30, x : x + 20] = 220
            arrays.append(img)
            box = np.array([x, 10, x + 20, 30], np.float32)
            annotations.append(FrameAnnotation([Instance(track_id=1, category_id=v % 2, box=box)]))
        videos.append(Video(f"v{v}", arrays, annotations, size, size))
    return VideoDataset(["square", "bar"], videos)


def test_train_reload_and_predict(tmp_path):
    torch.manual_seed(0)
    config = DetectorConfig(class_names=["square", "bar"], predictor="relation", fpn_channels=16,
                            swin_kwargs=SWIN, head_kwargs=HEADS)
    model = build_from_config(config)
    train_cfg = TrainConfig(lr=1e-4, max_iters=3, batch_size=2, log_every=1, progress=False)
    history = train_detector(model, config, moving_square_videos(), train_cfg, tmp_path / "run")
    assert len(history.losses) == 3 and all(np.isfinite(history.losses))
    loaded, loaded_config = load_detector(tmp_path / "run")
    assert loaded_config == config
    for a, b in zip(loaded.state_dict().values(), model.state_dict().values()):
        torch.testing.assert_close(a, b.cpu())
    detections, fps = predict_dataset(loaded, moving_square_videos(1), num_support=3, progress=False)
    assert [d["frame_index"] for d in detections] == list(range(6)) and fps > 0

"""Training clips, the unlabelled phase and train-vss / eval-vss on fake Cityscapes and CamVid trees."""
import argparse
import json

import numpy as np
import pytest
import torch

from stpn.data.formats.cityscapes import read_cityscapes
from stpn.data.normalisation import IMAGENET_MEAN, IMAGENET_STD
from stpn.vss.cli import add_vss_commands, run_vss_command
from stpn.vss.model import build_segmenter, pseudo_labels
from stpn.vss.recorded_data import RecordedClips, WithUnlabelledFrames, augment, clip_indices
from stpn.vss.run import load_vss_config
from tests.vss_fake_datasets import fake_camvid, fake_cityscapes


def parse(argv):
    parser = argparse.ArgumentParser(prog="stpn")
    add_vss_commands(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_clip_indices_repeat_the_first_frame():
    assert clip_indices(19, 8) == list(range(12, 20))
    assert clip_indices(1, 4) == [0, 0, 0, 1]


def test_augment_crops_pads_and_keeps_labels_aligned():
    torch.manual_seed(0)
    columns = np.arange(32)[None].repeat(16, 0)  # each pixel holds its column index
    labels = torch.from_numpy(columns)
    frames = np.repeat(columns[None, ..., None], 3, axis=-1).repeat(3, 0).astype(np.uint8)  # (3, 16, 32, 3)
    for _ in range(5):
        clip, out_labels = augment(frames, labels, crop=8, scale=(1.0, 1.0), flip=True)
        assert clip.shape == (3, 3, 8, 8) and out_labels.shape == (8, 8)
        pixels = (clip[1, 0] * IMAGENET_STD[0] + IMAGENET_MEAN[0]) * 255  # undo the normalisation
        assert torch.allclose(pixels, out_labels.float(), atol=1e-3)  # frames and labels cut (and flipped) alike
    big_clip, big_labels = augment(frames, labels, crop=40, scale=(1.0, 1.0), flip=False)
    assert big_clip.shape == (3, 3, 40, 40) and int((big_labels == 255).sum()) == 40 * 40 - 16 * 32
    assert (big_clip[:, :, 16:] == 0).all()  # padding: the mean colour
    for _ in range(5):
        _, scaled = augment(frames, labels, crop=6, scale=(2.0, 2.0), flip=False)
        assert scaled.shape == (6, 6) and (scaled == scaled[:1]).all()  # rows stay rows
        steps = scaled[0, 1:] - scaled[0, :-1]
        assert set(steps.tolist()) <= {0, 1} and int(steps.sum()) in (2, 3)  # every column twice
    _, half = augment(frames, labels, crop=16, scale=(0.5, 0.5), flip=False)
    assert (half[:8, :16] < 255).all() and (half[8:] == 255).all()  # 8 x 16 image padded to 16 x 16
    assert (half[0, 1:] - half[0, :-1] == 2).all()  # every other column


def test_recorded_clips_and_the_unlabelled_phase(tmp_path):
    sequences = read_cityscapes(fake_cityscapes(tmp_path))
    clips = RecordedClips(sequences, clip_length=3, crop=16, scale=(0.5, 1.0))
    assert len(clips) == 2 and len(clips.unlabelled) == 2 * 29
    clip, labels = clips[0]
    assert clip.shape == (3, 3, 16, 16) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) <= {0, 13, 255}
    mixed = WithUnlabelledFrames(clips)
    flags = [bool(mixed[i % 2][2]) for i in range(20)]
    assert len(mixed) == 2 and any(flags) and not all(flags)
    torch.manual_seed(1)
    for i in range(20):
        clip, labels, labelled = mixed[0]
        if not labelled:
            assert (labels == 255).all() and clip.shape == (3, 3, 16, 16)
            break


def test_pseudo_labels_keep_only_confident_pixels():
    logits = torch.tensor([[10.0, 0.1], [0.0, 0.0], [0.0, 0.2]]).reshape(1, 3, 1, 2)  # (B, C, H, W)
    assert pseudo_labels(logits).tolist() == [[[0, 255]]]
    model = build_segmenter(num_classes=3, temporal=False)
    clips, labels = torch.randn(2, 1, 3, 32, 32), torch.zeros(2, 32, 32, dtype=torch.long)
    losses = model(clips, labels, torch.tensor([False, False]))
    assert all(torch.isfinite(v) for v in losses.values())  # no confident pixel: loss 0, not NaN


CITYSCAPES = """
model: {{temporal: true, num_key_frames: 2, dim: 16, heads: 2}}
data: {{format: cityscapes, root: {root}, crop: 32, scale: [0.5, 1.0], unlabelled_from: 0.5}}
eval_data: {{format: cityscapes, root: {root}, split: train, context: 2}}
train: {{lr: 0.001, batch_size: 2, max_iters: 2, progress: false, checkpoint_each_epoch: false}}
"""


def test_train_and_eval_on_fake_cityscapes(tmp_path, capsys):
    root = fake_cityscapes(tmp_path / "cs")
    config = tmp_path / "vss_cs.yaml"
    config.write_text(CITYSCAPES.format(root=root))
    cfg = load_vss_config(config)
    assert cfg["data"].num_classes == 19 and cfg["data"].unlabelled_from == 0.5
    run = tmp_path / "run"
    assert run_vss_command(parse(["train-vss", "--config", str(config), "--out", str(run)])) == 0
    assert json.loads((run / "vss.json").read_text())["model"]["num_classes"] == 19
    assert "2 iterations" in capsys.readouterr().out  # phase 1 (1 iteration) + phase 2 (1)
    metrics_file = tmp_path / "m.json"
    assert run_vss_command(parse(["eval-vss", "--checkpoint", str(run), "--json", str(metrics_file)])) == 0
    metrics = json.loads(metrics_file.read_text())
    assert metrics["labelled_frames"] == 2 and metrics["frames"] == 2 * 3  # frames 17, 18, 19 of each snippet
    assert 0 <= metrics["miou"] <= 1 and metrics["tc"] is None  # no flow given: TC not measured
    for flags, message in [(["--flow", "raft"], "--flow raft needs --flow-weights"),
                           (["--flow", "exact"], "only for the benchmark"), (["--seed", "1"], "--seed applies")]:
        assert run_vss_command(parse(["eval-vss", "--checkpoint", str(run), *flags])) == 2
        assert message in capsys.readouterr().err
    from torchvision.models.optical_flow import raft_small

    weights = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None, progress=False).state_dict(), weights)
    assert run_vss_command(parse(["eval-vss", "--checkpoint", str(run), "--flow", "raft", "--flow-weights",
                                  str(weights), "--json", str(metrics_file)])) == 0
    assert 0 <= json.loads(metrics_file.read_text())["tc"] <= 1  # 2 pairs per snippet, RAFT flow


def test_train_and_eval_on_fake_camvid(tmp_path):
    root = fake_camvid(tmp_path / "camvid", sequences=True)
    fake_camvid(tmp_path / "camvid", split="val", names=("0016E5_07959",))
    config = tmp_path / "vss_camvid.yaml"
    config.write_text(f"""
model: {{temporal: false}}
data: {{format: camvid, root: {root}, crop: 24}}
train: {{lr: 0.001, batch_size: 2, max_iters: 1, progress: false, checkpoint_each_epoch: false}}
""")
    assert load_vss_config(config)["eval_data"].split == "val"  # default: the val split
    run = tmp_path / "run"
    assert run_vss_command(parse(["train-vss", "--config", str(config), "--out", str(run), "--workers", "1"])) == 0
    metrics_file = tmp_path / "m.json"
    assert run_vss_command(parse(["eval-vss", "--checkpoint", str(run), "--json", str(metrics_file)])) == 0
    metrics = json.loads(metrics_file.read_text())
    assert metrics["labelled_frames"] == 1 and metrics["frames"] == 1 and 0 <= metrics["miou"] <= 1


@pytest.mark.parametrize("data, message", [
    ("{format: cityscapes, root: R, crops: 32}", "unknown `data` keys ['crops']"),
    ("{format: kitti, root: R}", "`data.format` must be one of synthetic, cityscapes, camvid, got 'kitti'"),
    ("{format: camvid}", "missing `data.root`"),
    ("{num_videos: 2, root: R}", "unknown `data` keys ['root']"),
])
def test_bad_data_sections_are_one_line_errors(tmp_path, capsys, data, message):
    config = tmp_path / "bad.yaml"
    config.write_text(CITYSCAPES.format(root="R").replace(
        "{format: cityscapes, root: R, crop: 32, scale: [0.5, 1.0], unlabelled_from: 0.5}", data))
    assert run_vss_command(parse(["train-vss", "--config", str(config), "--out", str(tmp_path / "r")])) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.yaml" in err and message in err and len(err.splitlines()) == 1


def test_missing_dataset_folder_is_a_one_line_error(tmp_path, capsys):
    config = tmp_path / "vss_cs.yaml"
    config.write_text(CITYSCAPES.format(root=tmp_path / "nowhere"))
    assert run_vss_command(parse(["train-vss", "--config", str(config), "--out", str(tmp_path / "r")])) == 2
    err = capsys.readouterr().err.strip()
    assert "nowhere/leftImg8bit_sequence/train" in err and len(err.splitlines()) == 1


def test_unlabelled_rows_train_on_the_pseudo_labels(monkeypatch):
    import stpn.vss.model as model_module

    torch.manual_seed(0)
    model = build_segmenter(num_classes=3, temporal=False).eval()
    clips = torch.randn(2, 1, 3, 32, 32)
    ones, ignored = torch.ones(2, 32, 32, dtype=torch.long), torch.full((2, 32, 32), 255)
    monkeypatch.setattr(model_module, "pseudo_labels", lambda logits: torch.ones_like(logits[:, 0], dtype=torch.long))
    with torch.no_grad():
        as_labelled = model(clips, ones)
        as_pseudo = model(clips, ignored, torch.tensor([False, False]))
        mixed = model(clips, torch.cat([ones[:1], ignored[1:]]), torch.tensor([True, False]))
        kept = model(clips, ignored, torch.tensor([True, True]))
    assert torch.allclose(as_labelled["seg"], as_pseudo["seg"]) and torch.allclose(as_labelled["seg"], mixed["seg"])
    assert kept["seg"] == 0  # labelled rows keep their (here all ignored) labels


def test_two_phase_training_resumes_exactly(tmp_path, monkeypatch):
    """Interrupted after iteration 1 of the labelled phase, --resume ends with the weights of an
    uninterrupted run (phase 2 resumes the first phase's checkpoint at the switch)."""
    import stpn.vss.train as train_module
    from stpn.engine import TrainConfig
    from stpn.vss.sources import RecordedVideos

    recorded = RecordedVideos("cityscapes", str(fake_cityscapes(tmp_path / "cs")), crop=24, unlabelled_from=0.5)
    kwargs = dict(num_classes=19, temporal=True, num_key_frames=1, dim=16, heads=2)
    config = TrainConfig(lr=1e-3, batch_size=2, max_iters=4, progress=False, checkpoint_each_epoch=False)

    def trained(out, resume=None):
        torch.manual_seed(0)
        model = build_segmenter(**kwargs)
        history = train_module.train_segmenter(model, kwargs, recorded.load(), config, out, recorded, resume=resume,
                                               recorded=recorded)
        return model, history

    whole, history = trained(tmp_path / "whole")
    assert (history.start_iteration, history.end_iteration) == (2, 4)  # the second phase ran from the switch
    real_fit, calls = train_module.fit, []

    def interrupted_fit(*args, **kw):
        calls.append(kw.get("stop_after"))
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real_fit(*args, **{**kw, "stop_after": 1})

    monkeypatch.setattr(train_module, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        trained(tmp_path / "split")
    assert calls == [2, None]
    monkeypatch.setattr(train_module, "fit", real_fit)
    resumed, _ = trained(tmp_path / "split", resume="auto")
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name

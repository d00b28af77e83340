from dataclasses import replace

import numpy as np
import pytest
import torch

from stpn.data.types import VideoDataset
from stpn.droptrack.build import build_droptrack
from stpn.droptrack.checkpoint import load_droptrack
from stpn.droptrack.objective import DropTrackObjective
from stpn.droptrack.train import droptrack_pair_settings, train_droptrack
from stpn.engine import TrainConfig
from stpn.tracking.online import OnlineTracker
from stpn.tracking.pairs import TrackingPairs, collate_tracking
from stpn.tracking.sequences import sequences_from_dataset
from tests.test_tracking_pairs import square_video

KWARGS = dict(variant="tiny", embed_dim=32, depth=2, num_heads=2, head_channels=16, template_size=32, search_size=64)
SETTINGS = droptrack_pair_settings({"num_support": 2, "support_stride": 2, "brightness_jitter": 0.0})


def sequences():
    return sequences_from_dataset(VideoDataset(["square"], [square_video("a"), square_video("b", 10)]))


def tracker(**overrides):
    torch.manual_seed(0)
    return build_droptrack(**{**KWARGS, **overrides})


def fixed_batch(n=4):
    pairs = TrackingPairs(sequences(), replace(SETTINGS, template_size=32, search_size=64))
    return collate_tracking([pairs.sample(i, salt=1) for i in range(n)])


def config(**overrides):
    base = dict(lr=1e-3, weight_decay=1e-4, max_iters=2, batch_size=2, progress=False, log_every=1,
                checkpoint_each_epoch=False)
    return TrainConfig(**{**base, **overrides})


def test_pair_settings_are_ostracks():
    assert (SETTINGS.search_factor, SETTINGS.centre_jitter, SETTINGS.scale_jitter) == (4.0, 3.0, 0.25)


def test_objective_state_dict_is_the_trackers():
    model = tracker(stpn=True)
    objective = DropTrackObjective(model)
    assert objective.state_dict().keys() == model.state_dict().keys()
    assert sorted(n for n, _ in objective.named_parameters()) == sorted(n for n, _ in model.named_parameters())


@pytest.mark.parametrize("stpn", [False, True])
def test_training_steps_reduce_the_loss_on_a_fixed_batch(stpn):
    model = tracker(stpn=stpn)
    objective = DropTrackObjective(model).train()
    optimizer = torch.optim.AdamW(objective.parameters(), lr=5e-3)
    batch = fixed_batch()
    if not stpn:
        batch = replace(batch, support=None, support_mask=None)
    losses = []
    for _ in range(30):
        terms = objective(batch)
        assert set(terms) == {"loss_focal", "loss_giou", "loss_l1"}
        loss = sum(terms.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_an_stpn_tracker_needs_support_frames():
    batch = replace(fixed_batch(2), support=None, support_mask=None)
    with pytest.raises(ValueError, match="needs support frames"):
        DropTrackObjective(tracker(stpn=True))(batch)


def test_run_directory_round_trips_and_tracks_online(tmp_path):
    model = tracker(stpn=True)
    train_droptrack(model, {**KWARGS, "stpn": True}, sequences(), SETTINGS, config(), tmp_path / "run")
    loaded, online = load_droptrack(tmp_path / "run")
    assert online == {"template_factor": 2.0, "search_factor": 4.0, "num_support": 2, "support_stride": 2}
    for key, value in model.state_dict().items():
        assert torch.equal(value.cpu(), loaded.state_dict()[key]), key
    online_tracker = OnlineTracker(loaded, **online)
    video = square_video("c", 4)
    frames = video.frames
    box = video.annotations[0].instances[0].box
    online_tracker.init(frames[0], [box[0], box[1], box[2] - box[0], box[3] - box[1]])
    for frame in frames[1:]:
        xywh, score = online_tracker.update(frame)
        assert xywh.shape == (4,) and np.isfinite(xywh).all() and score is None
    assert online_tracker.support_indices and len(online_tracker.support_indices) == 2


def test_pretrained_run_is_stored_as_its_architecture(tmp_path):
    from stpn.pretraining.export import export_encoder
    from stpn.pretraining.model import build_pair_mae

    vit = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    mae = build_pair_mae("twinmae", "vit_tiny_patch16_224", decoder_dim=16, decoder_depth=1, decoder_heads=2, **vit)
    export_encoder(mae, tmp_path / "pre", {"variant": "vit_tiny_patch16_224", **vit})
    kwargs = dict(pretrained=str(tmp_path / "pre"), head_channels=16, template_size=32, search_size=64)
    model = build_droptrack(**kwargs)
    train_droptrack(model, kwargs, sequences(), replace(SETTINGS, num_support=0), config(max_iters=1), tmp_path / "run")
    (tmp_path / "pre" / "encoder.safetensors").unlink()  # the trained tracker no longer needs the run
    loaded, _ = load_droptrack(tmp_path / "run")
    assert torch.equal(loaded.template_pos, model.template_pos.detach().cpu())


def test_usable_as_a_got10k_toolkit_tracker():
    pytest.importorskip("got10k")
    from PIL import Image

    from stpn.tracking.toolkit import ToolkitTracker

    video = square_video("d", 3)
    toolkit = ToolkitTracker(tracker().eval(), name="droptrack", template_factor=2.0, search_factor=4.0)
    box = video.annotations[0].instances[0].box
    toolkit.init(Image.fromarray(video.frames[0]), [box[0], box[1], box[2] - box[0], box[3] - box[1]])
    out = toolkit.update(Image.fromarray(video.frames[1]))
    assert out.shape == (4,) and (out[2:] > 0).all()

"""The benchmark as semantic segmentation: replayed geometry, class maps, exact flow."""
import numpy as np
import torch

from stpn.data import synthetic
from stpn.vss.metrics import TemporalConsistency
from stpn.vss.synthetic import camera_flow, segmentation_video, video_geometry


def test_replayed_tracks_are_the_generators():
    video = synthetic.generate_video(1, 4, 96, seed=3, severity=0.0)
    _, tracks = video_geometry(1, 4, 96, seed=3)
    for t, annotation in enumerate(video.annotations):
        for instance in annotation.instances:
            track = tracks[instance.track_id - 1]
            assert track.look.category_id == instance.category_id
            if instance.visible_fraction == 1.0:
                ys, xs = np.nonzero(instance.mask)
                assert np.allclose([xs.mean() + 0.5, ys.mean() + 0.5], track.centers[t], atol=1.0)


def test_labels_flow_and_ground_truth_consistency():
    video = segmentation_video(0, 6, 96, seed=0, severity=0.0)
    assert video.frames.shape == (6, 96, 96, 3) and video.labels.shape == (6, 96, 96)
    assert video.flows.shape == (5, 2, 96, 96) and video.visible.shape == (5, 96, 96)
    assert set(np.unique(video.labels)) <= {0, 1, 2, 3} and (video.labels > 0).any()
    exact = TemporalConsistency(4)
    for t in range(5):
        now, later = torch.from_numpy(video.labels[t]).long(), torch.from_numpy(video.labels[t + 1]).long()
        exact.update(now, later, torch.from_numpy(video.flows[t]), torch.from_numpy(video.visible[t]))
    assert exact.compute() > 0.99
    assert video.visible.mean() > 0.9


def test_camera_flow_of_a_pure_pan_is_a_translation():
    camera, _ = video_geometry(0, 3, 64, seed=0)
    camera.centers = np.array([[150.0, 150.0], [152.0, 150.0], [154.0, 150.0]])
    camera.extents = np.full(3, 128.0)
    camera.flip = False
    flow = camera_flow(camera, 0, 64)
    assert np.allclose(flow[0], -1.0) and np.allclose(flow[1], 0.0)  # 2 source px = 1 output px
    camera.flip = True
    assert np.allclose(camera_flow(camera, 0, 64)[0], 1.0)

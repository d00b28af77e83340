"""Streaming inference keeps the last key frames, nearest first; training clips line up with labels."""
import numpy as np
import torch

from stpn.vss.data import SegmentationClips
from stpn.vss.inference import StreamingSegmenter
from stpn.vss.model import build_segmenter
from stpn.vss.synthetic import SegmentationVideo


def test_memory_holds_the_last_key_frames_nearest_first():
    model = build_segmenter(3, temporal=True, num_key_frames=2, dim=8, heads=2)
    seen = []
    segment = model.segment

    def recording(images, keys=()):
        out = segment(images, keys)
        seen.append([float(k.sum()) for k in keys])
        return out

    model.segment = recording
    segmenter = StreamingSegmenter(model)
    frames = [np.full((16, 16, 3), 40 * i, np.uint8) for i in range(4)]
    sums = []
    for frame in frames:
        labels = segmenter.step(frame)
        assert labels.shape == (16, 16)
        sums.append(float(segmenter.memory[-1].sum()))
    assert seen[0] == [] and seen[1] == [sums[0]]
    assert seen[2] == [sums[1], sums[0]] and seen[3] == [sums[2], sums[1]]  # at most 2, nearest first
    segmenter.reset()
    segmenter.step(frames[0])
    assert seen[-1] == []


def test_clips_end_at_the_labelled_frame():
    frames = np.stack([np.full((8, 8, 3), 10 * t, np.uint8) for t in range(10)])
    labels = np.stack([np.full((8, 8), t % 4, np.uint8) for t in range(10)])
    video = SegmentationVideo("v", frames, labels, np.zeros((9, 2, 8, 8), np.float32), np.ones((9, 8, 8), bool),
                              np.zeros(10, bool))
    clips = SegmentationClips([video], clip_length=8, history=7, flip=False)
    assert len(clips) == 3
    clip, target = clips[2]
    assert clip.shape == (8, 3, 8, 8) and int(target[0, 0]) == 9 % 4
    brightness = clip.mean(dim=(1, 2, 3))
    assert torch.all(brightness[1:] > brightness[:-1])  # frames 2..9 in order
    assert len(SegmentationClips([video], clip_length=1, history=7)) == 3  # same current frames

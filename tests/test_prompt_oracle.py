"""The oracle diagnostic (benchmarks/prompt_oracle.py) hands the detector flat support frames
that name the key frame's class, normalised like real frames."""
import torch
from torch import nn
from torchvision.models.detection.image_list import ImageList

from benchmarks.prompt_oracle import OracleSupport, class_frames
from stpn.data.normalisation import normalise
from stpn.detection.clip_batch import ClipBatch


class Recorder(nn.Module):
    def forward(self, batch, targets):
        self.batch = batch
        return {"loss": torch.zeros(())}


def test_support_frames_name_the_key_frames_class():
    images = ImageList(torch.zeros(3, 3, 32, 32), [(32, 32)] * 3)
    batch = ClipBatch(images, torch.randn(3, 2, 3, 32, 32), None)
    targets = [{"boxes": torch.zeros(1, 4), "labels": torch.tensor([2])},
               {"boxes": torch.zeros(2, 4), "labels": torch.tensor([1, 1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    recorder = Recorder()
    OracleSupport(recorder)(batch, targets)
    support = recorder.batch.support
    assert support.shape == (3, 2, 3, 32, 32)
    assert torch.equal(support[0], normalise(class_frames(1, 2, 32, 32)))
    assert torch.equal(support[1], normalise(class_frames(0, 2, 32, 32)))
    assert torch.equal(support[2], normalise(class_frames(None, 2, 32, 32)))
    assert not torch.equal(support[0], support[1])
    assert recorder.batch.images is images  # the key frames are untouched

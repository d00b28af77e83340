"""One normalise-and-pad: the routine itself, and its callers (detection's clip batches and
frames, tracking's images) give its numbers bit for bit."""
import numpy as np
import pytest
import torch

from stpn.data.normalisation import IMAGENET_MEAN, IMAGENET_STD, normalise, normalise_and_pad, padded_size


def test_normalise_and_pad_by_hand():
    torch.manual_seed(0)
    frames = [torch.rand(3, 40, 70), torch.rand(3, 33, 64)]
    out = normalise_and_pad(frames, size_divisible=32)
    assert out.shape == (2, 3, 64, 96) and padded_size((33, 64)) == (64, 64)
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    assert torch.equal(out[0, :, :40, :70], (frames[0] - mean) / std)
    assert torch.equal(out[1, :, :33, :64], (frames[1] - mean) / std)
    assert not out[0, :, 40:].any() and not out[1, :, :, 64:].any()  # zeros at the bottom / right
    clips = normalise_and_pad([torch.rand(2, 3, 20, 20)], 16)  # leading dims are kept
    assert clips.shape == (1, 2, 3, 32, 32)
    assert normalise(torch.rand(3, 4, 4, dtype=torch.float64)).dtype == torch.float64
    with pytest.raises(ValueError, match="no frames"):
        normalise_and_pad([])


def test_every_caller_gives_the_routines_numbers():
    from stpn.detection.clip_batch import make_clip_batch
    from stpn.detection.inference import prepare_frame
    from stpn.tracking.online import normalise_image

    torch.manual_seed(1)
    key, support = torch.rand(3, 50, 70), torch.rand(2, 3, 50, 70)
    batch = make_clip_batch([key], [support])
    assert torch.equal(batch.images.tensors, normalise_and_pad([key]))
    assert torch.equal(batch.support, normalise_and_pad([support]))
    assert torch.equal(prepare_frame(key), normalise_and_pad([key])[0])
    image = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    as_float = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
    assert torch.equal(normalise_image(image, torch.device("cpu")), normalise(as_float)[None])

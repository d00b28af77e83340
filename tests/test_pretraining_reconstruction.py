"""Reconstruction pictures: unpatchify inverts patchify; visible patches come back as given."""
import torch

from stpn.pretraining.model import build_pair_mae, patchify
from stpn.pretraining.reconstruction import reconstruct_pairs, save_reconstruction_figure, unpatchify


def test_unpatchify_inverts_patchify():
    frames = torch.randn(2, 2, 3, 16, 24)
    assert torch.equal(unpatchify(patchify(frames, 8), (2, 3), 8), frames)


def test_visible_patches_are_kept_and_the_figure_is_written(tmp_path):
    torch.manual_seed(0)
    model = build_pair_mae("dropmae", "vit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=32, depth=1,
                           num_heads=2, decoder_dim=16, decoder_depth=1, decoder_heads=2)
    frames = torch.randn(2, 2, 3, 32, 32)
    views = reconstruct_pairs(model, frames, seed=1)
    masked = patchify(views["masked"], 8)
    visible = masked.abs().sum(-1) > 0
    assert visible.sum(1).eq(8).all()  # 25 % of 32 tokens
    rebuilt = patchify(views["reconstructed"], 8)
    assert torch.allclose(rebuilt[visible], patchify(frames, 8)[visible])
    assert not torch.allclose(rebuilt[~visible], patchify(frames, 8)[~visible])
    path = save_reconstruction_figure(model, frames, tmp_path / "r.png")
    assert path.read_bytes()[:4] == b"\x89PNG"

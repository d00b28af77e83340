"""OSTrack's candidate elimination in DropTrack: counts, ranking, re-padding, off = unchanged."""
import math

import pytest
import torch

from stpn.droptrack.build import build_droptrack
from stpn.droptrack.candidate_elimination import centre_index, eliminate, restore_search

# 4 blocks, 32-px template (4x4 tokens), 64-px search (8x8 = 64 tokens)
TINY = dict(variant="tiny", embed_dim=32, depth=4, num_heads=2, head_channels=16, template_size=32, search_size=64)


def _inputs(batch=2):
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, 3, 32, 32, generator=g), torch.randn(batch, 3, 64, 64, generator=g)


def _pair(**ce):
    torch.manual_seed(0)
    plain = build_droptrack(**TINY).eval()
    torch.manual_seed(0)
    return plain, build_droptrack(**TINY, **ce).eval()


def test_centre_token_is_ostracks_ctr_point():
    assert [centre_index(s) for s in (8, 12, 7, 14)] == [3 * 8 + 3, 5 * 12 + 5, 3 * 7 + 3, 6 * 14 + 6]


def test_keeps_ceil_of_the_ratio_per_layer_and_the_output_shape():
    _, model = _pair(ce_layers=(1, 2, 3), ce_keep_ratio=0.7)
    template, search = _inputs()
    joint = model.joint_tokens(search, model.encode_templates(template))
    counts = [k.shape[1] for k in joint.kept]
    assert counts == [math.ceil(0.7 * 64), math.ceil(0.7 * 45), math.ceil(0.7 * 32)] == [45, 32, 23]
    for earlier, later in zip(joint.kept, joint.kept[1:]):  # each layer keeps a subset of the last
        for b in range(2):
            assert set(later[b].tolist()) <= set(earlier[b].tolist())
    assert joint.tokens.shape == (2, 64, 32)
    dropped = torch.ones(2, 64, dtype=torch.bool)
    dropped.scatter_(1, joint.kept[-1], False)
    assert (joint.tokens[dropped] == 0).all() and (joint.tokens[~dropped].abs().sum(-1) > 0).all()
    out = model(template, None, search)
    assert out.maps.score.shape == (2, 1, 8, 8) and out.boxes.shape == (2, 4)


def _captured_attention(model, layer, template, search):
    """The block's softmax probabilities (B, H, L, L), taken from timm's unfused path."""
    seen = {}
    attn = model.vit.blocks[layer].attn
    attn.fused_attn = False
    handle = attn.attn_drop.register_forward_hook(lambda _m, inputs, _o: seen.setdefault("p", inputs[0]))
    model.joint_tokens(search, model.encode_templates(template))
    handle.remove()
    return seen["p"]


@pytest.mark.parametrize("template_range", ["centre", "all"])
def test_first_layer_keeps_the_search_tokens_the_template_attends_to_most(template_range):
    _, model = _pair(ce_layers=(1,), ce_keep_ratio=0.5, ce_template=template_range)
    template, search = _inputs()
    probs = _captured_attention(model, 1, template, search)  # (B, H, 16 + 64, 16 + 64)
    rows = [centre_index(4)] if template_range == "centre" else list(range(16))
    scores = probs[:, :, rows, 16:].mean((1, 2))  # (B, 64)
    expected = scores.topk(32, dim=1).indices.sort(1).values
    kept = model.joint_tokens(search, model.encode_templates(template)).kept[0]
    assert torch.equal(kept, expected)


def test_elimination_off_is_identical_to_the_plain_blocks():
    plain, model = _pair()
    assert model.ce_layers == ()
    template, search = _inputs()
    memory = model.encode_templates(template)
    x = torch.cat([memory.tokens, model._patch_tokens(search) + model.search_pos + model.search_embed], 1)
    for block in model.vit.blocks:
        x = block(model.vit.norm_pre(x) if block is model.vit.blocks[0] else x)
    reference = model.vit.norm(x)[:, -64:]
    joint = model.joint_tokens(search, memory)
    assert joint.kept == [] and torch.equal(joint.tokens, reference)
    assert torch.equal(plain(template, None, search).boxes, model(template, None, search).boxes)
    _, keep_all = _pair(ce_layers=(1, 2), ce_keep_ratio=1.0)
    assert torch.allclose(keep_all.joint_tokens(search, keep_all.encode_templates(template)).tokens, reference)


def test_elimination_with_stpn_prompts_keeps_the_prompts():
    torch.manual_seed(0)
    model = build_droptrack(**TINY, stpn=True, ce_layers=(2,)).eval()
    template, search = _inputs()
    support = torch.randn(2, 3, 3, 64, 64)
    out = model(template, None, search, support=support)
    assert out.maps.score.shape == (2, 1, 8, 8)
    prompts = model.predict_prompts(model.embed_support(support.flatten(0, 1)).unflatten(0, (2, 3)))
    kept = model.joint_tokens(search, model.encode_templates(template), prompts).kept
    assert [k.shape[1] for k in kept] == [45]


def test_gradients_reach_kept_tokens_in_training():
    torch.manual_seed(0)
    model = build_droptrack(**TINY, ce_layers=(1, 3)).train()
    template, search = _inputs()
    out = model(template, None, search)
    (out.maps.score.sum() + out.maps.size.sum()).backward()
    assert model.vit.blocks[3].mlp.fc1.weight.grad.abs().sum() > 0 and model.search_pos.grad.abs().sum() > 0


def test_eliminate_and_restore_round_trip():
    x = torch.arange(2 * 6 * 1, dtype=torch.float).view(2, 6, 1) + 1  # 2 prefix + 4 search tokens
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.2], [0.8, 0.1, 0.2, 0.7]])
    index = torch.tensor([[3, 5, 6, 9], [0, 1, 2, 3]])
    out, kept = eliminate(x, 2, scores, 0.5, index)
    assert kept.tolist() == [[5, 6], [0, 3]] and out[:, :2].equal(x[:, :2])
    assert out[:, 2:, 0].tolist() == [[4.0, 5.0], [9.0, 12.0]]
    grid = restore_search(out[:, 2:], kept, 10)
    assert grid[0, :, 0].tolist() == [0, 0, 0, 0, 0, 4, 5, 0, 0, 0]


@pytest.mark.parametrize("kwargs, match", [({"ce_layers": (4,)}, "ce_layers"), ({"ce_layers": (2, 1)}, "ce_layers"),
                                           ({"ce_keep_ratio": 0.0}, "ce_keep_ratio"), ({"ce_template": "box"}, "ce_template")])
def test_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_droptrack(**TINY, **kwargs)


def test_keep_ratio_ramp_is_ostracks_adjust_keep_rate():
    from stpn.droptrack.candidate_elimination import KeepRatioRamp

    ramp = KeepRatioRamp(start_epoch=20, warm_epochs=50)
    assert [ramp.keep_ratio(e, 0.7) for e in (0, 19, 20, 70, 99)] == pytest.approx([1, 1, 1, 0.7, 0.7])
    assert ramp.keep_ratio(45, 0.7) == pytest.approx(0.85)
    assert ramp.keep_ratio(30, 0.7) == pytest.approx(0.7 + 0.3 * (math.cos(math.pi / 5) + 1) / 2)
    with pytest.raises(ValueError, match="warm_epochs"):
        KeepRatioRamp(warm_epochs=-1)


def _ramped_training(tmp_path, monkeypatch, **run):
    """Tiny tracker (elimination in block 1, final keep 0.5), 2 iterations an epoch, ramp 1 → 0.5
    at epoch 1; returns (history, the keep ratio of every training forward)."""
    from stpn.droptrack.candidate_elimination import KeepRatioRamp
    from stpn.droptrack.model import DropTrack
    from stpn.droptrack.train import droptrack_pair_settings, train_droptrack
    from stpn.engine import TrainConfig
    from tests.test_droptrack_train import sequences

    seen = []
    original = DropTrack.joint_tokens

    def spy(self, search, memory, prompts=None, ce_keep_ratio=None):
        if self.training:
            seen.append(ce_keep_ratio)
        return original(self, search, memory, prompts, ce_keep_ratio)

    monkeypatch.setattr(DropTrack, "joint_tokens", spy)
    kwargs = {**TINY, "depth": 2, "ce_layers": [1], "ce_keep_ratio": 0.5}
    torch.manual_seed(0)
    model = build_droptrack(**kwargs)
    config = TrainConfig(lr=1e-3, epochs=3, batch_size=2, progress=False, checkpoint_each_epoch=False, seed=3)
    settings = droptrack_pair_settings({"brightness_jitter": 0.0})
    history = train_droptrack(model, kwargs, sequences(), settings, config, tmp_path, samples_per_epoch=4,
                              keep_ramp=KeepRatioRamp(start_epoch=1, warm_epochs=0), **run)
    return history, seen


def test_training_follows_the_ramp_and_resumes_exactly(tmp_path, monkeypatch):
    full, seen = _ramped_training(tmp_path / "full", monkeypatch)
    assert seen == [1.0, 1.0, 0.5, 0.5, 0.5, 0.5]
    _ramped_training(tmp_path / "split", monkeypatch, stop_after=3)
    resumed, seen = _ramped_training(tmp_path / "split", monkeypatch, resume="auto")
    assert seen == [0.5, 0.5, 0.5] and resumed.losses == full.losses[3:]

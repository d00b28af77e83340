"""MixFormer tracker on the mixed-attention CvT (+ STPN): shapes, asymmetric attention, template
caching, prompts, weights, heads, frozen BatchNorm, stage-2 freezing. Tiny variant, CPU."""
import pytest
import torch

from stpn.backbones.cvt import build_cvt
from stpn.tracking.build import build_mixformer
from stpn.tracking.mixed_attention import StreamLayout, TemplateMemory, mixed_attention
from stpn.tracking.model import TrackerOutput
from tests.norm_helpers import randomise_norms

T, S = 64, 128  # tiny geometry: 4x4 template and 8x8 search tokens at stride 16


def prepare(model):
    """Eval mode, random norms, unit-gain linears in the backbone (at CvT's init, std 0.02, the
    attention branches are ~1e-2 of the residual stream and streams barely interact), and
    sharper corner maps, so that outputs visibly depend on every input."""
    randomise_norms(model)
    with torch.no_grad():
        for m in model.backbone.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.normal_(0, m.in_features**-0.5)
        for tower in (model.box_head.top_left, model.box_head.bottom_right):
            tower[-1].weight.mul_(200.0)
    return model.eval()


@pytest.fixture(scope="module")
def stpn_model():
    torch.manual_seed(0)
    model = build_mixformer("tiny", stpn=True, template_size=T, search_size=S)
    return prepare(model)


@pytest.fixture(scope="module")
def plain_model():
    torch.manual_seed(1)
    return prepare(build_mixformer("tiny", template_size=T, search_size=S))


def images(b, size, seed):
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def prompts_for(model, b=2, seed=5):
    return torch.randn(b, 9, model.backbone.prompt_dims[0], generator=torch.Generator().manual_seed(seed))


def close(a, b, atol=1e-5):
    return (a - b).abs().max().item() <= atol


@torch.no_grad()
def test_output_shapes_and_box_range(stpn_model):
    m = stpn_model
    assert (m.template_size, m.search_size, m.num_prompts, m.has_stpn) == (T, S, 9, True)
    support = torch.randn(2, 3, 3, S, S)
    out = m(images(2, T, 0), images(2, T, 1), images(2, S, 2), support=support, with_score=True)
    assert isinstance(out, TrackerOutput)
    assert out.boxes.shape == (2, 4) and out.score_logits.shape == (2,)
    assert out.boxes.min() >= 0 and out.boxes.max() <= 1
    assert m(images(2, T, 0), images(2, T, 1), images(2, S, 2)).score_logits is None


@torch.no_grad()
def test_online_templates(plain_model):
    m = plain_model
    t, s = images(2, T, 0), images(2, S, 2)
    # no online template = the template itself (how MixFormer starts a sequence)
    assert close(m(t, None, s, with_score=True).score_logits, m(t, t, s, with_score=True).score_logits, 0)
    # the online template is read
    assert not close(m(t, images(2, T, 1), s).boxes, m(t, t, s).boxes, 1e-4)
    # several online templates: (B, M, 3, T, T)
    two = torch.stack([images(2, T, 1), images(2, T, 3)], 1)
    memory = m.encode_templates(t, two)
    assert len(memory.template_maps) == 3
    assert close(m.track(s, memory).boxes, m(t, two, s).boxes)


@torch.no_grad()
def test_asymmetric_attention(stpn_model):
    backbone, p = stpn_model.backbone, prompts_for(stpn_model)
    templates = [images(2, T, 0), images(2, T, 1)]
    mem_a, search_a = backbone.forward_mixed(templates, images(2, S, 2), p)
    mem_b, _ = backbone.forward_mixed(templates, images(2, S, 3), None)  # other search, no prompts
    # template tokens never see the search tokens or the prompts
    for x, y in zip(mem_a.keys + mem_a.values + mem_a.template_maps, mem_b.keys + mem_b.values + mem_b.template_maps):
        assert close(x, y, 0)
    # ... but the search tokens see the templates
    _, search_c = backbone.forward_mixed([images(2, T, 4), templates[1]], images(2, S, 2), p)
    assert not close(search_a, search_c, 1e-3)
    assert not close(search_a, backbone.track_search(images(2, S, 2), None, p), 1e-3)


@torch.no_grad()
def test_mixed_attention_equals_masked_full_attention(stpn_model):
    """Independent reference: one attention over all streams, template queries masked from the
    prompt and search keys."""
    attention = stpn_model.backbone.stages[1].layers[0].attention.attention  # width 32, 2 heads
    layout = StreamLayout(((4, 4), (4, 4)), (8, 8), 9)
    normed = torch.randn(2, 32 + 9 + 64, 32)
    ours = mixed_attention(attention, normed, layout)

    def as_map(t, h, w):
        return t.transpose(1, 2).reshape(2, 32, h, w)

    parts = [attention.project(None, as_map(normed[:, :16], 4, 4)),
             attention.project(None, as_map(normed[:, 16:32], 4, 4)),
             attention.project(normed[:, 32:41], as_map(normed[:, 41:], 8, 8))]
    q, k, v = (torch.cat(x, 1) for x in zip(*parts))
    num_template_keys = sum(p[1].shape[1] for p in parts[:2])
    allowed = torch.ones(q.shape[1], k.shape[1], dtype=torch.bool)
    allowed[:32, num_template_keys:] = False
    heads = lambda x: x.unflatten(-1, (2, 16)).transpose(1, 2)  # noqa: E731
    logits = heads(q) @ heads(k).transpose(-1, -2) * attention.scale
    reference = (logits.masked_fill(~allowed, float("-inf")).softmax(-1) @ heads(v)).transpose(1, 2).flatten(2)
    assert close(ours, reference)


@pytest.mark.parametrize("with_prompts", [False, True])
@torch.no_grad()
def test_template_cache_equals_forward(stpn_model, with_prompts):
    m = stpn_model
    t, ot, s = images(2, T, 0), images(2, T, 1), images(2, S, 2)
    p = prompts_for(m) if with_prompts else None
    joint = m(t, ot, s, prompts=p, with_score=True)
    memory = m.encode_templates(t, ot)
    assert isinstance(memory, TemplateMemory) and len(memory.keys) == m.backbone.num_blocks
    cached = m.track(s, memory, p)
    assert close(cached.boxes, joint.boxes) and close(cached.score_logits, joint.score_logits)
    assert not close(joint.boxes, m(t, ot, images(2, S, 3), prompts=p).boxes, 1e-4)  # boxes follow search


@torch.no_grad()
def test_search_stream_without_templates_is_plain_prompted_cvt(stpn_model):
    """With no template keys the search stream is exactly PromptCvT's prompted pass."""
    backbone, s, p = stpn_model.backbone, images(2, S, 2), prompts_for(stpn_model)
    assert close(backbone.track_search(s, None, p), backbone.forward_features(s, p)[-1])
    assert close(backbone.track_search(s, None), backbone.forward_features(s)[-1])


@torch.no_grad()
def test_support_embeddings_and_prompts(stpn_model):
    m = stpn_model
    frames = torch.randn(3, 3, S, S)
    with torch.enable_grad():
        emb = m.embed_support(frames)
    assert emb.shape == (3, (S // 16) ** 2, 64) and not emb.requires_grad  # no_grad by default
    assert close(emb[1:2], m.embed_support(frames[1:2]))  # per frame: cacheable
    assert close(emb, m.backbone.embed(frames).flatten(2).transpose(1, 2), 0)  # plain CvT, no template
    support, mask = frames[None].expand(2, -1, -1, -1, -1), torch.tensor([[True, True, False], [True, False, False]])
    p = m.predict_prompts(emb[None].expand(2, -1, -1, -1), mask)
    assert p.shape == (2, 9, 16)
    t, ot, s = images(2, T, 0), images(2, T, 1), images(2, S, 2)
    assert close(m(t, ot, s, support=support, support_mask=mask).boxes, m(t, ot, s, prompts=p).boxes)
    assert not close(m(t, ot, s, prompts=p).boxes, m(t, ot, s).boxes, 1e-4)  # prompts matter


@pytest.mark.parametrize("predictor", ["avg", "transformer", "mixer"])
def test_other_predictors(predictor):
    m = build_mixformer("tiny", stpn=True, predictor=predictor, template_size=T, search_size=S).eval()
    emb = torch.randn(1, 2, (S // 16) ** 2, 64)
    assert m.predict_prompts(emb).shape == (1, 9, 16)


def test_input_validation(stpn_model, plain_model):
    m, t, s = stpn_model, images(1, T, 0), images(1, S, 2)
    cases = [
        (lambda: m(t, t, images(1, T, 2)), "search must be 128x128"),
        (lambda: m(images(1, S, 0), None, s), "template must be 64x64"),
        (lambda: m(t, images(2, T, 1), s), "online_template batch size"),
        (lambda: m(t, t, images(2, S, 2)), "search batch size"),
        (lambda: m(t.flatten(1), t, s), "template"),
        (lambda: m(t, t, s, prompts=torch.zeros(1, 5, 16)), "N_P"),
        (lambda: m(t, t, s, prompts=torch.zeros(1, 9, 32)), "N_P"),
        (lambda: m(t, t, s, support=torch.zeros(1, 2, 3, T, T)), "support frames must be 128x128"),
        (lambda: m(t, t, s, support=torch.zeros(1, 3, S, S)), "support must be"),
        (lambda: m(t, t, s, support=torch.zeros(1, 1, 3, S, S), prompts=torch.zeros(1, 9, 16)), "not both"),
        (lambda: plain_model(t, t, s, support=torch.zeros(1, 1, 3, S, S)), "without STPN"),
        (lambda: plain_model(t, t, s, prompts=torch.zeros(1, 9, 16)), "without STPN"),
        (lambda: plain_model.predict_prompts(torch.zeros(1, 1, 64, 64)), "without STPN"),
        (lambda: m.track(s, "memory"), "TemplateMemory"),
        (lambda: m.track(images(2, S, 2), m.encode_templates(t)), "batch size"),
        (lambda: build_mixformer("tiny", template_size=72), "multiple of the backbone stride 16"),
        (lambda: build_mixformer("tiny", search_size=0), "multiple"),
        (lambda: build_mixformer("cvt-99"), "unknown MixFormer variant"),
        (lambda: build_mixformer("tiny", stpn=True, predictor="nope"), "unknown predictor"),
        (lambda: build_mixformer("tiny", cls_token=(False, False, True)), "class token"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


def test_cvt21_geometry_and_parameter_count():
    with torch.device("meta"):  # shapes only, no memory, no compute
        plain = build_mixformer("cvt-21")
        stpn = build_mixformer("cvt-21", stpn=True)
        memory, search_map = stpn.backbone.forward_mixed(
            [torch.empty(1, 3, 128, 128)] * 2, torch.empty(1, 3, 320, 320), torch.empty(1, 9, 64)
        )
    assert search_map.shape == (1, 384, 20, 20)
    assert [tuple(t.shape) for t in memory.template_maps] == [(1, 384, 8, 8)] * 2
    assert memory.keys[-1].shape == (1, 2 * 4 * 4, 384)  # stride-2 key projection of two 8x8 maps
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert 31.1e6 < count(plain.backbone) < 31.3e6  # CvT-21 without classifier
    assert count(stpn) - count(plain) == count(stpn.predictor) < 50_000  # released "att", d = 64


def test_cvt_weights_load_into_backbone(tmp_path):
    torch.manual_seed(0)
    cvt = build_cvt(variant="cvt-13")  # has CvT-13's class token, which MixFormer drops
    randomise_norms(cvt)
    path = tmp_path / "cvt13.pth"
    torch.save(cvt.state_dict(), path)
    tracker = build_mixformer("cvt-13", weights=str(path))
    own = tracker.backbone.state_dict()
    reference = {k: v for k, v in cvt.state_dict().items() if not k.endswith("cls_token")}
    assert own.keys() == reference.keys()
    assert all(torch.equal(own[k], reference[k]) for k in own)
    assert all(k.startswith("backbone.encoder.stages.") for k in tracker.state_dict() if "backbone" in k)


def test_frozen_batch_norm_in_backbone():
    m = build_mixformer("tiny", template_size=T, search_size=S).train()
    norms = [x for x in m.backbone.modules() if isinstance(x, torch.nn.BatchNorm2d)]
    assert norms and all(not x.training for x in norms) and m.backbone.training
    assert all(not p.requires_grad for x in norms for p in x.parameters())
    before = [x.running_mean.clone() for x in norms]
    m(images(2, T, 0), None, images(2, S, 2))
    assert all(torch.equal(a, x.running_mean) for a, x in zip(before, norms))


def test_score_head_gradients_do_not_reach_boxes():
    torch.manual_seed(0)
    m = build_mixformer("tiny", stpn=True, template_size=T, search_size=S).train()
    out = m(images(2, T, 0), None, images(2, S, 2), support=torch.randn(2, 2, 3, S, S), with_score=True)
    out.score_logits.sum().backward()
    assert all(p.grad is None for p in m.box_head.parameters())
    assert all(p.grad is not None for p in m.score_head.parameters())
    assert any(p.grad is not None for p in m.backbone.parameters())  # features do get score gradients


def test_stage_two_freezing_by_name_prefix():
    torch.manual_seed(0)
    m = build_mixformer("tiny", stpn=True, template_size=T, search_size=S).train()
    for name, p in m.named_parameters():
        p.requires_grad_(name.startswith("score_head."))
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {"score_head." + n for n, _ in m.score_head.named_parameters()}
    assert any(n.startswith("predictor.") for n, _ in m.named_parameters())
    out = m(images(2, T, 0), None, images(2, S, 2), support=torch.randn(2, 2, 3, S, S), with_score=True)
    (out.score_logits.sum() + out.boxes.sum()).backward()
    assert {n for n, p in m.named_parameters() if p.grad is not None} == trainable


@torch.no_grad()
def test_the_tracker_runs_the_one_stpn(stpn_model, plain_model):
    """The tracker's support embeddings and prompts are STPN's for the same inputs."""
    from stpn.prompts.stpn import STPN

    m = stpn_model
    assert isinstance(m.stpn, STPN) and m.stpn.backbone is m.backbone and m.stpn.predictor is m.predictor
    assert plain_model.stpn is None and not plain_model.support_grad and not plain_model.has_stpn
    frames, mask = torch.randn(2, 3, 3, S, S), torch.tensor([[True, False, True], [True, True, True]])
    reference = STPN(m.backbone, m.predictor)
    ours = m.predict_prompts(m.embed_support(frames.flatten(0, 1)).unflatten(0, (2, 3)), mask)
    assert torch.equal(ours, reference.predict_prompts(reference.embed_support(frames), mask))


@torch.no_grad()
def test_mixer_tracker_takes_the_native_search_grid():
    """The Mixer token-count rule (stpn.prompts.build.support_tokens): a tracker's search crops
    have a fixed size, so the Mixer mixes the native (S/16)² tokens, unpooled."""
    torch.manual_seed(0)
    m = build_mixformer("tiny", stpn=True, predictor="mixer", template_size=T, search_size=S).eval()
    assert m.predictor.num_tokens == (S // 16) ** 2 and m.stpn.support_grid == (S // 16, S // 16)
    frames = torch.randn(2, 3, S, S)
    native = m.backbone.embed(frames).flatten(2).transpose(1, 2)
    assert torch.equal(m.embed_support(frames), native)


def test_state_dict_keys_are_unchanged_so_saved_trackers_load(stpn_model, plain_model, tmp_path):
    """The STPN shares the tracker's modules without being a child: the keys stay
    backbone.* / box_head.* / score_head.* / predictor.*, as trackers were saved before."""
    from stpn.tracking.checkpoint import load_tracker, save_tracker

    for m in (stpn_model, plain_model):
        parts = [p for p in ("backbone", "box_head", "score_head", "predictor") if getattr(m, p) is not None]
        expected = {f"{p}.{key}" for p in parts for key in getattr(m, p).state_dict()}
        assert set(m.state_dict()) == expected
    model_kwargs = dict(variant="tiny", stpn=True, template_size=T, search_size=S)
    loaded, _ = load_tracker(save_tracker(tmp_path, stpn_model, model_kwargs))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), stpn_model.state_dict().values()))
    assert loaded.stpn.backbone is loaded.backbone  # the loaded weights are the STPN's


def test_compatibility_checks_are_stpns():
    from stpn.prompts.build import build_predictor
    from stpn.tracking.model import MixFormer

    m = build_mixformer("tiny", template_size=T, search_size=S)
    parts = (m.backbone, m.box_head, m.score_head)
    for predictor, message in ((build_predictor("att", 64, 16, 5), "N_P=9"),
                               (build_predictor("att", 32, 16, 9), "support_dim"),
                               (build_predictor("att", 64, 32, 9), "prompt width"),
                               (build_predictor("att", 64, 16, 9, deep_dims=m.backbone.prompt_dims), "shallow")):
        with pytest.raises(ValueError, match=message):
            MixFormer(*parts, predictor, T, S)

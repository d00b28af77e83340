"""MinVIS association (stpn.vis.association): un-permuting queries, top-k, mask threshold."""
import pytest
import torch

from stpn.vis.association import QueryAssociation, associate, match_to_previous


def permuted_video(num_frames=5, num_queries=6, num_classes=3, dim=8, seed=0):
    """A video whose queries are shuffled every frame: returns the shuffled outputs and the
    permutations (``outputs[t][perm[t]]`` is the frame in the reference order)."""
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(num_queries, dim, generator=g)
    class_logits = torch.randn(num_frames, num_queries, num_classes + 1, generator=g)
    mask_logits = torch.randn(num_frames, num_queries, 4, 5, generator=g)
    perms = [torch.arange(num_queries)] + [torch.randperm(num_queries, generator=g) for _ in range(num_frames - 1)]
    shuffled = [torch.empty_like(x) for x in (class_logits, mask_logits)]
    frame_embeddings = []
    for t, perm in enumerate(perms):
        inverse = torch.argsort(perm)
        shuffled[0][t], shuffled[1][t] = class_logits[t][inverse], mask_logits[t][inverse]
        noisy = embeddings + 0.05 * torch.randn(num_queries, dim, generator=g)  # drifts a little
        frame_embeddings.append(3.0 * noisy[inverse])  # scale: the cosine must not care
    return class_logits, mask_logits, shuffled, torch.stack(frame_embeddings), perms


def test_permuted_queries_are_unpermuted_exactly():
    class_logits, mask_logits, shuffled, embeddings, perms = permuted_video()
    association = QueryAssociation()
    for t in range(len(perms)):
        order = association.add(shuffled[0][t], shuffled[1][t], embeddings[t])
        assert torch.equal(order, perms[t])
    assert torch.equal(torch.stack(association.class_logits), class_logits)
    assert torch.equal(torch.stack(association.mask_logits), mask_logits)


def test_matching_is_against_the_previous_frame_after_reordering():
    # frame 1 is frame 0 with slots 0 and 1 swapped, frame 2 is frame 1 swapped back: matching
    # each frame against the raw (unordered) previous frame would give the identity for frame 2
    e = torch.eye(3)
    association = QueryAssociation()
    logits, masks = torch.zeros(3, 2), torch.zeros(3, 2, 2)
    association.add(logits, masks, e)
    assert association.add(logits, masks, e[[1, 0, 2]]).tolist() == [1, 0, 2]
    assert association.add(logits, masks, e).tolist() == [0, 1, 2]
    assert match_to_previous(e, e[[2, 0, 1]]).tolist() == [1, 2, 0]


def test_video_scores_are_the_softmax_of_mean_logits_without_no_object():
    class_logits = torch.tensor([[[4.0, 0.0, 0.0]], [[0.0, 2.0, 0.0]]])  # 1 query, 2 classes + no-object
    instances = associate(class_logits, torch.ones(2, 1, 2, 2), torch.ones(2, 1, 4), out_size=(8, 8), top_k=2)
    expected = torch.tensor([2.0, 1.0, 0.0]).softmax(0)[:2]  # mean logits (2, 1, 0)
    assert [i.category for i in instances] == [0, 1]
    assert [i.score for i in instances] == pytest.approx(expected.tolist())


def test_top_k_over_query_class_pairs_sorted_best_first():
    g = torch.Generator().manual_seed(1)
    class_logits = torch.randn(3, 7, 5, generator=g)  # 7 queries, 4 classes
    instances = associate(class_logits, torch.randn(3, 7, 4, 4, generator=g), torch.randn(1, 7, 6).expand(3, 7, 6),
                          out_size=(16, 16))
    scores = class_logits.mean(0).softmax(-1)[:, :-1]
    expected = scores.flatten().sort(descending=True).values[:10]
    assert len(instances) == 10
    assert [i.score for i in instances] == pytest.approx(expected.tolist())
    assert [scores[i.query, i.category].item() for i in instances] == pytest.approx(expected.tolist())
    assert len({(i.query, i.category) for i in instances}) == 10
    assert len(associate(class_logits[:, :2], torch.zeros(3, 2, 4, 4), torch.ones(3, 2, 6), (8, 8))) == 8  # 2 x 4


def test_masks_are_upsampled_logits_above_zero_at_the_output_size():
    # one query whose logits are negative on the left column, positive on the right
    mask_logits = torch.tensor([[[-1.0, 1.0], [-1.0, 1.0]]])[None]  # (T=1, Q=1, 2, 2)
    (instance,) = associate(torch.tensor([[[1.0, 0.0]]]), mask_logits, torch.ones(1, 1, 3), out_size=(6, 10), top_k=1)
    assert instance.masks.shape == (1, 6, 10) and instance.masks.dtype == torch.bool
    assert not instance.masks[0, :, :5].any() and instance.masks[0, :, 5:].all()
    # crop before resizing: the image fills the left half of a padded input (logits 2 x 2 -> input 8 x 8)
    (cropped,) = associate(torch.tensor([[[1.0, 0.0]]]), mask_logits, torch.ones(1, 1, 3), out_size=(8, 4),
                           top_k=1, image_size=(8, 4), padded_size=(8, 8))
    assert not cropped.masks.any()  # the positive half lies in the padding


def test_one_frame_video():
    class_logits = torch.tensor([[[0.0, 3.0, 0.0], [2.0, 0.0, 0.0]]])
    instances = associate(class_logits, torch.ones(1, 2, 3, 3), torch.randn(1, 2, 4), out_size=(3, 3), top_k=2)
    assert [(i.category, i.masks.shape) for i in instances] == [(1, (1, 3, 3)), (0, (1, 3, 3))]


def test_bad_shapes_are_errors():
    association = QueryAssociation()
    with pytest.raises(ValueError, match="query counts differ"):
        association.add(torch.zeros(3, 2), torch.zeros(2, 4, 4), torch.zeros(3, 5))
    with pytest.raises(ValueError, match="no frames were added"):
        association.instances((4, 4))

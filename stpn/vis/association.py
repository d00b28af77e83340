"""MinVIS query association: per-frame Mask2Former outputs → video instances (docs/vis_eval.md).

Frames are segmented independently; the same object is found by the same query *slot* after
each frame's queries are reordered to match the previous frame's (already reordered) ones:

1. L2-normalise the frame's query embeddings ``(Q, D)`` (the decoder's final LayerNormed
   outputs);
2. cost = 1 − cosine similarity against the previous frame's reordered embeddings; Hungarian
   assignment (``scipy.optimize.linear_sum_assignment``) gives the permutation;
3. reorder the frame's class logits, mask logits and embeddings with it.

After the last frame the video's class scores are the mean over frames of the per-frame class
logits, then softmax, the no-object column dropped; the ``top_k`` (10) best (query, class) pairs
become instances (sorted by score, best first), each with the masks of its query: its per-frame
mask logits upsampled (bilinear) to the padded network input, cropped to the valid image, resized
(bilinear) to the output size, then ``> 0``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

TOP_K = 10


@dataclass
class VideoInstance:
    """One predicted object track: ``category`` (0-based index into the model's class names),
    ``score`` in [0, 1], ``masks`` ``(T, H, W)`` bool on the CPU, ``query`` the query slot (in
    the first frame's order) it came from."""

    category: int
    score: float
    masks: Tensor
    query: int = -1


def match_to_previous(previous: Tensor, current: Tensor) -> Tensor:
    """The permutation ``order`` ``(Q,)`` such that ``current[order]`` lines up with ``previous``.

    ``previous`` ``(Q, D)`` L2-normalised (reordered) embeddings of the last frame, ``current``
    ``(Q, D)`` L2-normalised embeddings of this frame; cost ``1 − previous @ current.T``."""
    if previous.shape != current.shape:
        raise ValueError(f"query embeddings {tuple(current.shape)} do not match the previous frame's "
                         f"{tuple(previous.shape)}")
    cost = (1 - previous @ current.T).cpu().double().numpy()
    rows, cols = linear_sum_assignment(cost)  # rows come back as 0..Q-1 in order
    return torch.as_tensor(cols, dtype=torch.long, device=current.device)


class QueryAssociation:
    """Collect one video's per-frame outputs with :meth:`add`, then :meth:`instances`.

    Class and mask logits are kept (reordered) on the CPU in float32: ``(T, Q, C + 1)`` and
    ``(T, Q, h, w)``; only the embeddings of the last frame are kept."""

    def __init__(self) -> None:
        self.previous: Optional[Tensor] = None
        self.class_logits: list[Tensor] = []
        self.mask_logits: list[Tensor] = []
        self.orders: list[Tensor] = []

    def add(self, class_logits: Tensor, mask_logits: Tensor, embeddings: Tensor) -> Tensor:
        """One frame: ``class_logits`` ``(Q, C + 1)``, ``mask_logits`` ``(Q, h, w)``, ``embeddings``
        ``(Q, D)``. Returns the permutation applied, ``(Q,)`` (identity for the first frame)."""
        if class_logits.dim() != 2 or mask_logits.dim() != 3 or embeddings.dim() != 2:
            raise ValueError(f"one frame's outputs must be (Q, C+1), (Q, h, w), (Q, D); got "
                             f"{tuple(class_logits.shape)}, {tuple(mask_logits.shape)}, {tuple(embeddings.shape)}")
        if not class_logits.shape[0] == mask_logits.shape[0] == embeddings.shape[0]:
            raise ValueError(f"query counts differ: {class_logits.shape[0]} class logits, "
                             f"{mask_logits.shape[0]} masks, {embeddings.shape[0]} embeddings")
        current = F.normalize(embeddings.float(), dim=-1)
        if self.previous is None:
            order = torch.arange(len(current), device=current.device)
        else:
            order = match_to_previous(self.previous, current)
        self.previous = current[order]
        self.class_logits.append(class_logits[order].detach().float().cpu())
        self.mask_logits.append(mask_logits[order].detach().float().cpu())
        self.orders.append(order.cpu())
        return order

    def __len__(self) -> int:
        return len(self.class_logits)

    def video_scores(self) -> Tensor:
        """``(Q, C)``: softmax of the per-frame class logits' mean, no-object column dropped."""
        if not self.class_logits:
            raise ValueError("no frames were added")
        return torch.stack(self.class_logits).mean(0).softmax(-1)[:, :-1]

    def select(self, top_k: int = TOP_K) -> tuple[Tensor, Tensor, Tensor]:
        """The ``top_k`` best (query, class) pairs, best first: ``(queries, classes, scores)``,
        each ``(K,)`` with ``K = min(top_k, Q·C)``."""
        scores = self.video_scores()
        best, flat = scores.flatten().topk(min(top_k, scores.numel()))  # sorted, best first
        return flat // scores.shape[1], flat % scores.shape[1], best

    def frame_masks(self, queries: Tensor, t: int, out_size: Sequence[int], image_size: Optional[Sequence[int]] = None,
                    padded_size: Optional[Sequence[int]] = None) -> Tensor:
        """``(K, H, W)`` bool masks of the query slots ``queries`` in frame ``t``.

        ``out_size`` ``(H, W)``: the masks' size (the original frames). ``padded_size``: the
        network input the mask logits cover (default 4x their size); ``image_size``: the part
        of it holding the image (default all of it)."""
        logits = self.mask_logits[t]
        padded = tuple(padded_size) if padded_size is not None else (4 * logits.shape[-2], 4 * logits.shape[-1])
        crop = tuple(image_size) if image_size is not None else padded
        chosen = F.interpolate(logits[queries][None], size=padded, mode="bilinear", align_corners=False)
        chosen = chosen[..., : crop[0], : crop[1]]
        if tuple(chosen.shape[-2:]) != tuple(out_size):
            chosen = F.interpolate(chosen, size=tuple(out_size), mode="bilinear", align_corners=False)
        return chosen[0] > 0

    def instances(self, out_size: Sequence[int], image_size: Optional[Sequence[int]] = None,
                  padded_size: Optional[Sequence[int]] = None, top_k: int = TOP_K) -> list[VideoInstance]:
        """The ``top_k`` best (query, class) pairs as :class:`VideoInstance` (best first), masks
        ``(T, *out_size)`` (sizes as :meth:`frame_masks`). For long videos draw frame by frame
        with :meth:`select` and :meth:`frame_masks` instead: this holds all masks at once."""
        queries, classes, scores = self.select(top_k)
        masks = torch.stack([self.frame_masks(queries, t, out_size, image_size, padded_size)
                             for t in range(len(self))], dim=1)
        return [VideoInstance(int(c), float(s), m, int(q)) for c, s, m, q in zip(classes, scores, masks, queries)]


def associate(class_logits: Tensor, mask_logits: Tensor, embeddings: Tensor, out_size: Sequence[int],
              top_k: int = TOP_K, **sizes) -> list[VideoInstance]:
    """A whole video at once: ``class_logits`` ``(T, Q, C + 1)``, ``mask_logits`` ``(T, Q, h, w)``,
    ``embeddings`` ``(T, Q, D)`` → the ``top_k`` instances, masks ``(T, *out_size)``.
    ``sizes``: ``image_size`` / ``padded_size`` of :meth:`QueryAssociation.instances`."""
    association = QueryAssociation()
    for frame in zip(class_logits, mask_logits, embeddings):
        association.add(*frame)
    return association.instances(out_size, top_k=top_k, **sizes)

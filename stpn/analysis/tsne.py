"""Silhouette scores and t-SNE pictures of RoI features, by class, per motion-speed group.

* The silhouette score (scikit-learn's ``silhouette_score``, Euclidean) is computed in the
  feature space of the box head, not on the 2-D embedding (which distorts distances): per speed
  group, for degraded and for clean objects, and for all. It needs two classes and more objects
  than classes; otherwise it is NaN ("n/a").
* The picture: scikit-learn's ``TSNE`` (PCA initialisation, a fixed seed, perplexity at most 30
  and below a third of the points) of each speed group, at most ``max_points`` objects drawn at
  random (seeded) so that it stays quick; the silhouette in the title is that of all objects of
  the group. Colour is the class; degraded objects are crosses, clean ones dots.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from stpn.analysis.figures import pyplot
from stpn.analysis.roi_features import ObjectFeatures
from stpn.data.motion_speed import SPEED_GROUPS

SUBSETS = ("all", *SPEED_GROUPS, "degraded", "clean")
MIN_POINTS = 5  # fewer objects in a group: no picture


def silhouette(features: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of ``features`` ``(N, D)`` by ``labels`` ``(N,)``; NaN where undefined."""
    from sklearn.metrics import silhouette_score

    classes = len(np.unique(labels))
    if classes < 2 or len(labels) <= classes:
        return math.nan
    return float(silhouette_score(features, labels))


def subset_mask(objects: ObjectFeatures, subset: str) -> np.ndarray:
    """Which objects belong to ``subset`` (one of :data:`SUBSETS`)."""
    if subset == "all":
        return np.ones(len(objects), bool)
    if subset in SPEED_GROUPS:
        return objects.speeds == subset
    if subset in ("degraded", "clean"):
        return objects.degraded == (subset == "degraded")
    raise ValueError(f"unknown subset {subset!r}; choose one of {', '.join(SUBSETS)}")


def silhouettes(objects: ObjectFeatures) -> dict[str, dict[str, float]]:
    """``{subset: {"silhouette": s, "objects": n}}`` for every subset of :data:`SUBSETS`."""
    table = {}
    for subset in SUBSETS:
        part = objects.subset(subset_mask(objects, subset))
        table[subset] = {"silhouette": silhouette(part.features, part.labels), "objects": len(part)}
    return table


def embed_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """``(N, D)`` → ``(N, 2)`` t-SNE embedding."""
    from sklearn.manifold import TSNE

    perplexity = max(1.0, min(30.0, (len(features) - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def tsne_figure(objects: ObjectFeatures, class_names: Sequence[str], title: str, max_points: int = 300,
                seed: int = 0):
    """One scatter plot per speed group (coloured by class), silhouette in each title."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(SPEED_GROUPS), figsize=(4 * len(SPEED_GROUPS), 4), squeeze=False)
    rng = np.random.default_rng(seed)
    scores = silhouettes(objects)
    for ax, group in zip(axes[0], SPEED_GROUPS):
        part = objects.subset(subset_mask(objects, group))
        ax.set_title(f"{group}: {len(part)} objects, silhouette {_fmt(scores[group]['silhouette'])}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if len(part) < MIN_POINTS:
            ax.text(0.5, 0.5, "too few objects", ha="center", va="center", transform=ax.transAxes)
            continue
        if len(part) > max_points:
            part = part.subset(np.sort(rng.choice(len(part), max_points, replace=False)))
        points = embed_2d(part.features, seed)
        for c, name in enumerate(class_names):
            for degraded, marker in ((False, "o"), (True, "x")):
                mine = (part.labels == c) & (part.degraded == degraded)
                if mine.any():
                    ax.scatter(points[mine, 0], points[mine, 1], s=10, marker=marker, color=f"C{c}", alpha=0.8,
                               label=f"{name}{' (degraded)' if degraded else ''}")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def format_silhouettes(tables: dict[str, dict[str, dict[str, float]]]) -> str:
    """Plain-text table: one row per model, one column per subset, ``score (objects)``."""
    header = ["model"] + list(SUBSETS)
    rows = [[name] + [f"{_fmt(t[s]['silhouette'])} ({t[s]['objects']})" for s in SUBSETS] for name, t in tables.items()]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in [header, *rows])

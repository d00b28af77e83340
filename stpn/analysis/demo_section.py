"""The analysis part of ``runs/demo/report.html``: EigenCAM pictures of a few degraded
validation frames and the t-SNE plots with silhouette scores, for every demo detector.

Kept cheap (seconds on two CPU cores): the ``frames`` most degraded frames on which every model
detects something (one per video), and the RoI features of the first ``videos`` validation
videos. The CAM rescales the FPN levels to level "2" (stride 16) rather than to the pool level
``stpn explain`` uses by default: on the demo's 128-pixel frames the pool map has 2 × 2 cells,
too few to show where a model looks.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Mapping

from stpn.analysis.explain import explain_frames
from stpn.analysis.figures import html_img, png_bytes
from stpn.analysis.frames import most_degraded_frames
from stpn.analysis.models import load_analysed_detector
from stpn.analysis.roi_features import ground_truth_features
from stpn.analysis.tsne import SUBSETS, silhouettes, tsne_figure
from stpn.data.types import VideoDataset

DEMO_CAM_LEVEL = "2"
SCORE_THRESH = 0.5  # as the example frames of the report


def _silhouette_table(tables: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    head = "".join(f"<th>{s}</th>" for s in SUBSETS)
    rows = []
    for name, table in tables.items():
        cells = "".join(
            f"<td>{'n/a' if math.isnan(table[s]['silhouette']) else format(table[s]['silhouette'], '.3f')} "
            f"({table[s]['objects']})</td>" for s in SUBSETS)
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
    return f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"


def analysis_section(run_dirs: Mapping[str, str | Path], dataset: VideoDataset, frames: int = 3, videos: int = 4,
                     max_points: int = 150) -> str:
    """HTML (``<h2>`` sections, PNGs embedded) for the detectors of ``run_dirs`` (by name) on
    the validation ``dataset``."""
    detectors = [load_analysed_detector(path, "cpu", name=name) for name, path in run_dirs.items()]
    candidates = most_degraded_frames(dataset, len(dataset.videos))
    pictures, skipped = explain_frames(dataset, detectors, candidates, SCORE_THRESH, DEMO_CAM_LEVEL,
                                       skip_empty=True, progress=False, limit=frames)
    cams = "".join(f"<p class=cap>{html.escape(p.caption)}</p>{html_img(p.png, 1050)}" for p in pictures)
    if skipped:
        cams += f"<p class=cap>Passed over (a model detects nothing there): {html.escape('; '.join(skipped))}.</p>"
    tables, plots = {}, []
    for detector in detectors:
        objects = ground_truth_features(detector, dataset, range(min(videos, len(dataset.videos))), progress=False)
        tables[detector.name] = silhouettes(objects)
        figure = tsne_figure(objects, dataset.categories, f"{detector.name}: box-head features of ground-truth objects",
                             max_points)
        plots.append(html_img(png_bytes(figure), 1000))
    return f"""<h2>Where the models look: EigenCAM on degraded frames</h2><p>The most degraded validation
frames (one per video) on which every model detects something with score &ge; {SCORE_THRESH}; EigenCAM
(pytorch-grad-cam) on the FPN output, all levels rescaled to level {DEMO_CAM_LEVEL} (stride 16) and
concatenated.</p>{cams or '<p>No degraded frame with detections from every model.</p>'}
<h2>RoI features by motion speed: t-SNE and silhouette</h2><p>Box-head features (RoIAlign on the
ground-truth boxes) of every object in the first {min(videos, len(dataset.videos))} validation videos;
silhouette score by class in the feature space (objects in brackets; n/a: fewer than two classes).
Higher means the classes are better separated.</p>{_silhouette_table(tables)}{''.join(plots)}"""

"""The demo's HTML report: metrics table, loss curves, AP50 by deterioration, example frames.

Everything is embedded (PNG as base64), so ``report.html`` is one self-contained file.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Sequence

import numpy as np


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _image_png(array: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def loss_figure(curves: dict[str, Sequence[float]]) -> str:
    """Total training loss per iteration for each model (a moving average of 20)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, losses in curves.items():
        losses = np.asarray(losses, dtype=float)
        window = min(20, len(losses))
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid") if window else losses
        ax.plot(np.arange(len(smooth)) + window, smooth, label=name)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss (moving average)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def deterioration_figure(ap50: dict[str, dict[str, float]]) -> str:
    """Grouped bars: AP50 per deterioration type (x) for each model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(ap50)
    kinds = list(next(iter(ap50.values())))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / max(len(models), 1)
    for i, name in enumerate(models):
        values = [100 * ap50[name].get(k, float("nan")) for k in kinds]
        ax.bar(np.arange(len(kinds)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(kinds)) + width * (len(models) - 1) / 2)
    ax.set_xticklabels([k.replace("_", " ") for k in kinds], rotation=20)
    ax.set_ylabel("AP50")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _png(fig)


def write_report(
    path: str | Path,
    title: str,
    table_html: str,
    loss_curves: dict[str, Sequence[float]],
    ap50_by_deterioration: dict[str, dict[str, float]],
    examples: Sequence[tuple[str, Sequence[np.ndarray]]],
    example_headers: Sequence[str],
    notes: str = "",
    sections: str = "",
) -> Path:
    """Write the report. ``examples``: (caption, [RGB panels, one per ``example_headers``]);
    ``sections``: more HTML at the end (the analysis, :mod:`stpn.analysis.demo_section`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for caption, images in examples:
        cells = "".join(f'<td><img src="data:image/png;base64,{_image_png(im)}"></td>' for im in images)
        rows.append(f"<tr>{cells}</tr><tr><td colspan={len(images)} class=cap>{html.escape(caption)}</td></tr>")
    header = "".join(f"<th>{html.escape(m)}</th>" for m in example_headers)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} table{{border-collapse:collapse}}
td,th{{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right}} .cap{{text-align:left;color:#555}}
td img{{width:384px}}</style></head><body>
<h1>{html.escape(title)}</h1>{notes}
<h2>Results</h2>{table_html}
<h2>Training loss</h2><img style="width:600px" src="data:image/png;base64,{loss_figure(loss_curves)}">
<h2>AP50 by deterioration type</h2><img style="width:700px" src="data:image/png;base64,{deterioration_figure(ap50_by_deterioration)}">
<h2>Example degraded frames</h2><p>One frame per deterioration type (the first in the validation
videos; low light is left out, nothing can be seen on it), next to a clean frame of the same video;
ground truth in white, detections with score &ge; 0.5 with their class.</p><table><tr>{header}</tr>{''.join(rows)}</table>
{sections}
</body></html>"""
    path.write_text(page)
    return path

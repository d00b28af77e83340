"""The picture of one explained frame: the frame with its ground truth, then for each model its
detections (class names and scores) and its EigenCAM over the frame, side by side.

Small frames are enlarged (an integer factor, to a short side of at least 384 pixels) before
the boxes are drawn, so that the class names can be read; the CAM is enlarged with them.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from stpn.analysis.cam import FrameCam
from stpn.analysis.figures import pyplot
from stpn.data.video import draw_boxes

MIN_SHOWN_SIDE = 384
GT_COLOR = (255, 255, 255)


def enlarge(image: np.ndarray, factor: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 → ``(factor·H, factor·W, 3)`` (bicubic)."""
    if factor == 1:
        return image
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((w * factor, h * factor), Image.BICUBIC))


def cam_overlay(frame: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """The CAM ``(H, W)`` in [0, 1] as a heat map over the frame ``(H, W, 3)`` uint8 (the
    library's ``show_cam_on_image``)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(frame.astype(np.float32) / 255, cam, use_rgb=True)


def explain_figure(frame: np.ndarray, gt_boxes: np.ndarray, gt_names: Sequence[str],
                   results: Mapping[str, FrameCam], class_names: Mapping[str, Sequence[str]], title: str,
                   first_caption: str = "ground truth"):
    """A one-row figure: the frame with its ground truth, then per model (``results`` by name)
    detections and CAM. ``gt_boxes``: ``(M, 4)`` xyxy; ``class_names[model]``: that detector's
    classes (1-based labels index them from 1)."""
    factor = max(1, math.ceil(MIN_SHOWN_SIDE / min(frame.shape[:2])))
    shown = enlarge(frame, factor)
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4) * factor
    panels = [(first_caption, draw_boxes(shown, gt, list(gt_names) or None, colors=[GT_COLOR] * len(gt)))]
    for name, result in results.items():
        det = result.detections
        labels = [class_names[name][int(i) - 1] for i in det["labels"]]
        panels.append((f"{name}: detections", draw_boxes(shown, det["boxes"].numpy() * factor, labels,
                                                         det["scores"].numpy())))
        panels.append((f"{name}: EigenCAM", enlarge(cam_overlay(frame, result.cam), factor)))
    plt = pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for ax, (caption, image) in zip(axes[0], panels):
        ax.imshow(image)
        ax.set_title(caption, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig

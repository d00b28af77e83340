"""mIoU, temporal consistency and speed on recorded videos (Cityscapes, CamVid).

For every labelled frame ``t`` of a sequence the segmenter starts afresh on frame
``max(0, t - context)`` and runs frame by frame up to ``t`` (so STT has up to ``context`` key
frames, as in streaming use); mIoU is scored on the labelled frames, at the label's resolution
(the prediction is upsampled to the frame). TC (:class:`~stpn.vss.metrics.TemporalConsistency`)
is measured over the consecutive pairs of those windows with the given ``flow`` (RAFT,
:mod:`stpn.vss.raft_flow`); without one, or when no window has two frames (CamVid without its
sequence frames), ``tc`` is NaN. ``miou_degraded`` and ``tc_visible`` are benchmark-only: NaN.
"""
from __future__ import annotations

import time
from typing import Optional, Sequence

import torch

from stpn.data.formats.cityscapes import LabelledSequence
from stpn.vss.evaluate import FlowFn
from stpn.vss.inference import StreamingSegmenter
from stpn.vss.metrics import TemporalConsistency, confusion_matrix, iou_from_confusion, mean_iou
from stpn.vss.model import VideoSegmenter
from stpn.vss.recorded_data import read_frame, read_labels


def evaluate_sequences(model: VideoSegmenter, sequences: Sequence[LabelledSequence], context: int = 7,
                       device: torch.device | str = "cpu", flow: Optional[FlowFn] = None) -> dict[str, float]:
    """``miou``, ``tc``, per-class ``iou_<c>``, ``frames`` (segmented), ``labelled_frames``,
    ``fps``; ``miou_degraded`` and ``tc_visible`` NaN (module docstring)."""
    classes = model.num_classes
    segmenter = StreamingSegmenter(model, device)
    confusion = torch.zeros(classes, classes, dtype=torch.int64)
    tc = TemporalConsistency(classes)
    frames = labelled = 0
    seconds = 0.0
    was_training = model.training
    for sequence in sequences:
        for t in sorted(sequence.labels):
            segmenter.reset()
            previous = None
            for i in range(max(0, t - context), t + 1):
                frame = read_frame(sequence.frames[i])
                start = time.perf_counter()
                pred = segmenter.step(frame)
                if torch.device(device).type == "cuda":
                    torch.cuda.synchronize()
                seconds += time.perf_counter() - start
                frames += 1
                if previous is not None and flow is not None:
                    tc.update(previous[1], pred, flow(previous[0], frame))
                previous = (frame, pred)
            target = torch.from_numpy(read_labels(sequence, t)).long()
            if target.shape != previous[1].shape:
                raise ValueError(f"{sequence.labels[t]}: label {tuple(target.shape)} differs from its frame "
                                 f"{tuple(previous[1].shape)}")
            confusion += confusion_matrix(previous[1], target, classes)
            labelled += 1
    model.train(was_training)
    nan = float("nan")
    out = {"miou": mean_iou(confusion) if labelled else nan, "miou_degraded": nan, "tc": tc.compute(),
           "tc_visible": nan, "frames": float(frames), "labelled_frames": float(labelled),
           "fps": frames / seconds if seconds else nan}
    out.update({f"iou_{c}": float(v) for c, v in enumerate(iou_from_confusion(confusion))})
    return out

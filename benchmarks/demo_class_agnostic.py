"""How much of the demo's detection is finding the objects and how much naming them: class-aware
against class-agnostic AP50 of the trained demo detectors, on degraded and on clean frames.

Reads a finished ``stpn demo`` output folder (its ``results.json`` and run folders), rebuilds the
same validation videos, runs every trained detector again in the per-video test mode and scores
its detections twice: as they are, and with every class folded into one ("object"). The
class-agnostic AP50 is what the detector would score if it named every object it finds
correctly, so it bounds what STPN's prompts can add by naming alone; the gap between the two is
the part lost to naming.

Choices: folding the classes keeps every box, and a class-agnostic NMS (IoU 0.5, the threshold of
the detectors' own per-class NMS) then removes the near-copies one object gets under several
classes, which would otherwise count as false positives.

Run: ``python -m benchmarks.demo_class_agnostic runs/demo`` (after ``stpn demo``; prints one table,
mean ± half the range over the training seeds, and writes ``class_agnostic.json`` into the folder).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch
from torchvision.ops import nms

from stpn.data import synthetic
from stpn.data.types import VideoDataset
from stpn.demo import jobs
from stpn.demo.run import MODELS, data_seeds, demo_detector_config
from stpn.detection.config import build_from_config
from stpn.detection.run import predict_dataset
from stpn.engine.checkpoint import EXPORT_FILE
from stpn.metrics.coco_detection import detection_report
from stpn.metrics.seeds import mean_and_spread

NMS_IOU = 0.5
COLUMNS = ("AP50_degraded", "AP50_clean")


def fold_dataset(dataset: VideoDataset) -> VideoDataset:
    """The same videos with one category, ``object``."""
    videos = [dataclasses.replace(v, annotations=[
        dataclasses.replace(a, instances=[dataclasses.replace(i, category_id=0) for i in a.instances])
        for a in v.annotations]) for v in dataset.videos]
    return VideoDataset(["object"], videos)


def fold_detections(detections: list[dict]) -> list[dict]:
    """Per-frame detections with every label set to 1, after a class-agnostic NMS at ``NMS_IOU``."""
    folded = []
    for det in detections:
        boxes = torch.as_tensor(det["boxes"], dtype=torch.float32).reshape(-1, 4)
        scores = torch.as_tensor(det["scores"], dtype=torch.float32).reshape(-1)
        keep = nms(boxes, scores, NMS_IOU)
        folded.append({**det, "boxes": boxes[keep], "scores": scores[keep],
                       "labels": torch.ones(len(keep), dtype=torch.int64)})
    return folded


def score(val_set: VideoDataset, detections: list[dict]) -> dict[str, float]:
    """``{"aware"|"agnostic": {column: AP50 × 100}}`` of one detector's detections."""
    aware = detection_report(val_set, detections)
    agnostic = detection_report(fold_dataset(val_set), fold_detections(detections))
    return {"aware": {c: 100 * aware[c] for c in COLUMNS}, "agnostic": {c: 100 * agnostic[c] for c in COLUMNS}}


def validation_set(settings: dict) -> VideoDataset:
    """The demo's validation videos for the settings saved in its ``results.json``."""
    seed = data_seeds(settings["data_seed"])["val"]
    videos = jobs.generate_videos(settings["val_videos"], settings["frames"], settings["size"], seed,
                                  settings["severity"], settings["single_class"], None, "validation videos", True)
    return VideoDataset(list(synthetic.CATEGORIES), videos)


def trained_detector(run: dict, settings: dict, classes: list[str]):
    """A finished demo run's detector (its exported weights), in eval mode."""
    from safetensors.torch import load_file

    weights = Path(run["run_dir"]) / EXPORT_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights}: no trained detector there (run stpn demo first)")
    config = demo_detector_config(classes, MODELS[run["model"]], settings["size"], settings["support_grad"])
    model = build_from_config(config)
    model.load_state_dict(load_file(str(weights)))
    return model.eval()


def measure(out_dir: Path) -> dict:
    """Every run of the demo folder ``out_dir`` scored class-aware and class-agnostic."""
    results_file = out_dir / "results.json"
    if not results_file.is_file():
        raise FileNotFoundError(f"{results_file}: not found (run stpn demo --out {out_dir} first)")
    try:
        results = json.loads(results_file.read_text())
        settings, runs = results["settings"], results["runs"]
        val_set = validation_set(settings)
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{results_file}: not the results.json of stpn demo ({type(error).__name__}: {error})")
    scores = []
    for run in runs:
        model = trained_detector(run, settings, val_set.categories)
        detections, _ = predict_dataset(model, val_set, "per-video", settings["num_support"], progress=False)
        scores.append({"model": run["model"], "seed": run["seed"], **score(val_set, detections)})
        print(f"{run['model']} (seed {run['seed']}): {scores[-1]}", file=sys.stderr)
    return {"data_seed": settings["data_seed"], "runs": scores, "nms_iou": NMS_IOU}


def format_table(measured: dict) -> str:
    """A markdown table: per model, class-aware and class-agnostic AP50 (mean ± half-range)."""
    lines = ["| model | AP50 degraded | class-agnostic | AP50 clean | class-agnostic |", "|---|---|---|---|---|"]
    for name in dict.fromkeys(r["model"] for r in measured["runs"]):
        mine = [r for r in measured["runs"] if r["model"] == name]
        cells = [mean_and_spread(r[kind][c] for r in mine) for c in COLUMNS for kind in ("aware", "agnostic")]
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {s:.1f}" for m, s in cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir", help="a finished stpn demo output folder (holds results.json)")
    args = p.parse_args(argv)
    out = Path(args.out_dir)
    try:
        measured = measure(out)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    (out / "class_agnostic.json").write_text(json.dumps(measured, indent=1))
    print(f"data seed {measured['data_seed']}, per-video test mode, AP50 × 100:\n{format_table(measured)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Tiny fake Cityscapes / CamVid trees on disk (64 x 32 PNGs written with PIL) for the tests."""
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT = 64, 32


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def frame(seed: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def fake_cityscapes(root: Path, split: str = "train", snippets=(("aachen", 0, 0), ("bochum", 3, 275)),
                    length: int = 30) -> Path:
    """Snippets ``(city, seq, first frame number)`` of ``length`` frames; the label (labelIds:
    road 7 on the top half, car 26 below, one column of license plate... as 0 unlabelled) on
    the 20th frame."""
    for city, seq, first in snippets:
        for k in range(length):
            number = first + k
            write_png(root / "leftImg8bit_sequence" / split / city / f"{city}_{seq:06d}_{number:06d}_leftImg8bit.png",
                      frame(seq * 1000 + k))
        label = np.full((HEIGHT, WIDTH), 7, np.uint8)
        label[HEIGHT // 2:] = 26
        label[:, 0] = 0
        write_png(root / "gtFine" / split / city / f"{city}_{seq:06d}_{first + 19:06d}_gtFine_labelIds.png", label)
    return root


def fake_camvid(root: Path, split: str = "train", names=("0001TP_006690", "0006R0_f00930"),
                sequences: bool = False) -> Path:
    """Annotated frames (labels: class id = column // 5, so 0..10 and void 11 in the last nine
    columns) and, with ``sequences``, the 29 frames before each in ``sequences/{seq}/``."""
    label = np.minimum(np.arange(WIDTH)[None].repeat(HEIGHT, 0) // 5, 11).astype(np.uint8)
    for i, name in enumerate(names):
        write_png(root / split / f"{name}.png", frame(i))
        write_png(root / f"{split}annot" / f"{name}.png", label)
        if sequences:
            seq, number = name.rsplit("_", 1)
            prefix = "f" if number.startswith("f") else ""
            digits = number.lstrip("f")
            for n in range(int(digits) - 29, int(digits)):
                write_png(root / "sequences" / seq / f"{seq}_{prefix}{n:0{len(digits)}d}.png", frame(100 + n))
    return root

"""Imports run down the layers, and the predictor vocabulary and the Mixer token rule have one home."""
import ast
from pathlib import Path

import pytest

from stpn.detection.build import build_vid_detector
from stpn.prompts.build import PREDICTOR_ALIASES, build_predictor, canonical_predictor
from tests.test_detection_model import HEADS, SWIN

STPN = Path(__file__).resolve().parents[1] / "stpn"
# package → packages it must never import (also not inside functions)
FORBIDDEN = {
    "tracking": ("stpn.detection", "stpn.demo"),
    "detection": ("stpn.tracking", "stpn.demo"),
    "data": ("stpn.metrics", "stpn.detection", "stpn.tracking", "stpn.demo"),
    "metrics": ("stpn.detection", "stpn.tracking", "stpn.engine", "stpn.demo"),
    "prompts": ("stpn.detection", "stpn.tracking", "stpn.engine", "stpn.demo"),
    "backbones": ("stpn.detection", "stpn.tracking", "stpn.engine", "stpn.demo"),
    "engine": ("stpn.detection", "stpn.tracking", "stpn.demo"),
    "analysis": ("stpn.tracking", "stpn.demo"),
    "vis": ("stpn.tracking", "stpn.demo", "stpn.vss"),
}


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_run_down_the_layers(package):
    bad = [f"{path.relative_to(STPN)} imports {module}"
           for path in sorted((STPN / package).rglob("*.py")) for module in imported_modules(path)
           if module.startswith(FORBIDDEN[package])]
    assert not bad, bad


def test_one_vocabulary_for_the_predictors():
    assert canonical_predictor("att") == "relation" and canonical_predictor("avg") == "topk"
    assert canonical_predictor("mixer") == "mixer"
    with pytest.raises(ValueError, match="unknown predictor 'attn'.*released att, avg"):
        canonical_predictor("attn")
    for alias, name in PREDICTOR_ALIASES.items():
        assert type(build_predictor(alias, 32, 16)) is type(build_predictor(name, 32, 16))
    # the detector takes the released names too (tracking always did)
    detector = build_vid_detector(num_classes=2, predictor="avg", fpn_channels=16, swin_kwargs=SWIN, **HEADS)
    assert type(detector.extractor.predictor).__name__ == "TopKAveragePredictor"


def test_one_mixer_token_rule_for_both_tasks():
    """The Mixer mixes a fixed token count: detection pools to MIXER_GRID (or the given grid),
    the tracker takes its fixed search crop's native grid; the other predictors take any grid."""
    from stpn.prompts.build import MIXER_GRID, support_tokens
    from stpn.tracking.build import build_mixformer

    assert support_tokens("mixer") == (MIXER_GRID, {"num_tokens": 49})
    assert support_tokens("mixer", [3, 2]) == ((3, 2), {"num_tokens": 6})
    assert support_tokens("mixer", default_grid=(8, 8)) == ((8, 8), {"num_tokens": 64})
    assert support_tokens("att") == (None, {}) and support_tokens("topk", [2, 2]) == ((2, 2), {})
    detector = build_vid_detector(num_classes=2, predictor="mixer", fpn_channels=16, swin_kwargs=SWIN, **HEADS)
    assert detector.extractor.support_grid == MIXER_GRID and detector.extractor.predictor.num_tokens == 49
    tracker = build_mixformer("tiny", stpn=True, predictor="mixer", template_size=64, search_size=128)
    assert tracker.stpn.support_grid == (8, 8) and tracker.predictor.num_tokens == 64

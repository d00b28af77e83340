"""A backbone learning-rate multiplier means the same weights in the per-frame and the STPN
detector (``VideoFasterRCNN.backbone_prefix``), and never the predictor or the heads."""
import pytest

from stpn.demo.run import demo_detector_config
from stpn.detection.config import build_from_config
from stpn.engine import TrainConfig
from stpn.engine.optim import build_param_groups


@pytest.mark.parametrize("predictor", [None, "relation"])
def test_backbone_multiplier_covers_exactly_the_backbone(predictor):
    model = build_from_config(demo_detector_config(["a", "b"], predictor, 64))
    groups = build_param_groups(model, TrainConfig(lr=1e-3, max_iters=1, lr_multipliers={model.backbone_prefix: 0.1}))
    slow = {n for g in groups if g["lr"] == pytest.approx(1e-4) for n in g["param_names"]}
    backbone = model.extractor.backbone if predictor else model.extractor
    expected = {f"{model.backbone_prefix}.{n}" for n, _ in backbone.named_parameters()}
    assert slow == expected
    if predictor:
        assert not any(".predictor." in n for n in slow)

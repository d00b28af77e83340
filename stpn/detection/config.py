"""What a video detector is made of, as plain data: saved in checkpoints, read from YAML presets
(``configs/*.yaml``), turned into a model by :func:`build_from_config`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional

from stpn.detection.build import build_vid_detector
from stpn.detection.detector import VideoFasterRCNN


@dataclass
class DetectorConfig:
    """Arguments of :func:`stpn.detection.build.build_vid_detector` plus the class names."""

    class_names: list[str]
    variant: str = "swin_tiny_patch4_window7_224"
    predictor: Optional[str] = "relation"
    num_prompts: int = 5
    support_grad: bool = False
    fpn_channels: int = 256
    selsa: bool = False
    selsa_heads: int = 16
    selsa_support_proposals: int = 300
    swin_kwargs: dict[str, Any] = field(default_factory=dict)
    head_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "", section: Optional[str] = None) -> "DetectorConfig":
        """Strict (:func:`stpn.strict_fields.from_dict`): unknown keys, a missing ``class_names``
        and wrong types are one-line errors naming ``where``."""
        from stpn.strict_fields import from_dict

        config = from_dict(cls, data, where, kind="detector config keys", section=section)
        tupled = {key: {k: tuple(v) if isinstance(v, list) else v for k, v in getattr(config, key).items()}
                  for key in ("swin_kwargs", "head_kwargs")}  # JSON / YAML give lists where tuples are meant
        return replace(config, **tupled)


def build_from_config(config: DetectorConfig, weights: Optional[str] = None) -> VideoFasterRCNN:
    """The detector a config describes; ``weights``: a local timm Swin checkpoint."""
    return build_vid_detector(
        num_classes=len(config.class_names),
        variant=config.variant,
        predictor=config.predictor,
        num_prompts=config.num_prompts,
        support_grad=config.support_grad,
        weights=weights,
        fpn_channels=config.fpn_channels,
        selsa=config.selsa,
        selsa_heads=config.selsa_heads,
        selsa_support_proposals=config.selsa_support_proposals,
        swin_kwargs=config.swin_kwargs,
        **config.head_kwargs,
    )

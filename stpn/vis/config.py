"""What a video instance segmenter is made of, as plain data: read from the ``model`` section of
``configs/ytvis19_*.yaml`` / ``configs/vis_synthetic_*.yaml``, saved in the run directory
(:mod:`stpn.vis.checkpoint`), turned into a model by :func:`build_from_config`."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Optional

from stpn.vis.head import mask2former_config
from stpn.vis.model import VideoInstanceSegmenter, build_vis_model


@dataclass
class SegmenterConfig:
    """Arguments of :func:`stpn.vis.model.build_vis_model`. ``class_names`` may be left out of a
    config: training fills them in from the dataset's categories. ``head_kwargs`` are
    :func:`stpn.vis.head.mask2former_config` arguments (checked), ``swin_kwargs``
    :func:`stpn.backbones.swin.build_swin` ones."""

    class_names: Optional[list[str]] = None
    variant: str = "swin_tiny_patch4_window7_224"
    predictor: Optional[str] = None
    num_prompts: int = 5
    support_grad: bool = False
    support_grid: Optional[tuple[int, int]] = None
    swin_kwargs: dict[str, Any] = field(default_factory=dict)
    head_kwargs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["support_grid"] = list(self.support_grid) if self.support_grid is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "", section: Optional[str] = "model") -> "SegmenterConfig":
        """Strict: unknown keys (also inside ``head_kwargs``) and wrong types are one-line errors
        naming ``where``."""
        from stpn.strict_fields import check_kwargs, from_dict

        config = from_dict(cls, data, where, kind="segmenter config keys", section=section)
        head = check_kwargs(mask2former_config, config.head_kwargs, where, skip=("num_classes",),
                            section=f"{section}.head_kwargs" if section else "head_kwargs")
        swin = {k: tuple(v) if isinstance(v, list) else v for k, v in config.swin_kwargs.items()}
        return replace(config, head_kwargs=head, swin_kwargs=swin)


def build_from_config(config: SegmenterConfig, backbone_weights: Optional[str] = None) -> VideoInstanceSegmenter:
    """The segmenter ``config`` describes (``class_names`` must be set)."""
    if not config.class_names:
        raise ValueError("the segmenter config has no class_names")
    return build_vis_model(
        config.class_names, variant=config.variant, predictor=config.predictor, num_prompts=config.num_prompts,
        support_grad=config.support_grad, support_grid=config.support_grid, swin_kwargs=config.swin_kwargs,
        head_kwargs=config.head_kwargs, backbone_weights=backbone_weights,
    )

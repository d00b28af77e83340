"""How a trained video model runs at test time, and the one place for the defaults.

:class:`InferenceSettings` is saved with every detector run (``inference`` in ``detector.json``)
and read by ``stpn eval``, ``stpn detect`` and :func:`stpn.detection.run.predict_dataset`;
command-line flags override single fields (:meth:`InferenceSettings.override`). The samplers
(:mod:`stpn.prompts.sampling`), the streaming extractor and SELSA's support cache take their
default ``mode`` / ``K`` / ``S`` from :data:`DEFAULT_INFERENCE` too.

The defaults are the authors' released test mode: ``K = 14`` frames spread over the whole video,
prompts predicted once per video (``per-video``); ``S = 8`` for the sliding and causal windows
(the paper's stride). ``test_size`` ``None`` runs at the frames' own resolution; the VID
presets store 600 (the recipe's test scale).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Optional

MODES = ("per-video", "sliding", "causal")


def check_mode(mode: str) -> str:
    """``mode`` with ``_`` read as ``-`` (``per_video``), or a ``ValueError`` listing the modes."""
    if not isinstance(mode, str) or mode.replace("_", "-") not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    return mode.replace("_", "-")


@dataclass(frozen=True)
class InferenceSettings:
    """Test-time settings: support ``mode``, ``num_support`` (``K``), ``stride`` (``S``, unused in
    per-video mode), ``test_size`` (short side frames are resized to; ``None``: as they are) and
    ``batch_size`` (key frames run together; results do not depend on it)."""

    mode: str = "per-video"
    num_support: int = 14
    stride: int = 8
    test_size: Optional[int] = None
    batch_size: int = 4

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", check_mode(self.mode))
        for name in ("num_support", "stride", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.test_size is not None and (isinstance(self.test_size, bool) or not isinstance(self.test_size, int)
                                           or self.test_size < 1):
            raise ValueError(f"test_size must be a positive integer or null, got {self.test_size!r}")

    def override(self, **changes: Any) -> "InferenceSettings":
        """A copy with the given fields changed; ``None`` values change nothing (an unset flag)
        and ``test_size=0`` means the frames' own resolution (``None``)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if changes.get("test_size") == 0:
            changes["test_size"] = None
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "inference settings") -> "InferenceSettings":
        """Strict: unknown keys and wrong types are one-line errors naming ``where``."""
        from stpn.strict_fields import from_dict

        return from_dict(cls, data, where)


DEFAULT_INFERENCE = InferenceSettings()

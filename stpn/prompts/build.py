"""``build_predictor``: a plain factory for the four DVP predictors (no registry)."""
from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from stpn.prompts.deep import DeepPrompts
from stpn.prompts.predictors import MixerPredictor, TransformerPredictor
from stpn.prompts.released_predictors import RelationPredictor, TopKAveragePredictor

PREDICTORS = ("transformer", "mixer", "relation", "topk")


def build_predictor(
    name: str,
    support_dim: int,
    prompt_dim: int,
    num_prompts: int = 5,
    deep_dims: Optional[Sequence[int]] = None,
    **kwargs,
) -> nn.Module:
    """``name``: ``"transformer"`` / ``"mixer"`` (paper) or ``"relation"`` / ``"topk"``
    (released "att" / "avg"). ``deep_dims``: one width per block for STPN deep (the base
    predictor then outputs width ``prompt_dim``, projected per block). ``kwargs`` go to the
    predictor (e.g. ``num_heads``, ``num_tokens``)."""
    if name == "transformer":
        predictor = TransformerPredictor(support_dim, prompt_dim, num_prompts, **kwargs)
    elif name == "mixer":
        predictor = MixerPredictor(support_dim, prompt_dim, num_prompts, **kwargs)
    elif name == "relation":
        predictor = RelationPredictor(support_dim, prompt_dim, num_prompts, **kwargs)
    elif name == "topk":
        predictor = TopKAveragePredictor(support_dim, prompt_dim, num_prompts, **kwargs)
    else:
        raise ValueError(f"unknown predictor {name!r}; choose one of {', '.join(PREDICTORS)}")
    return DeepPrompts(predictor, deep_dims) if deep_dims is not None else predictor

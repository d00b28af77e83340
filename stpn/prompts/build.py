"""``build_predictor``: a plain factory for the four DVP predictors (no registry)."""
from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from stpn.prompts.deep import DeepPrompts
from stpn.prompts.predictors import MixerPredictor, TransformerPredictor
from stpn.prompts.released_predictors import RelationPredictor, TopKAveragePredictor

PREDICTORS = ("transformer", "mixer", "relation", "topk")
# the authors' released code names the two released predictors "att" and "avg"
PREDICTOR_ALIASES = {"att": "relation", "avg": "topk"}
MIXER_GRID = (7, 7)  # the Mixer's support grid where the input size varies (detection)


def canonical_predictor(name: str) -> str:
    """``name`` with a released alias (``att``, ``avg``) replaced by ours; unknown names are a
    ``ValueError`` listing the choices."""
    name = PREDICTOR_ALIASES.get(name, name)
    if name not in PREDICTORS:
        choices = ", ".join(PREDICTORS) + f" (or the released {', '.join(PREDICTOR_ALIASES)})"
        raise ValueError(f"unknown predictor {name!r}; choose one of {choices}")
    return name


def support_tokens(
    name: str, support_grid: Optional[Sequence[int]] = None, default_grid: Sequence[int] = MIXER_GRID
) -> tuple[Optional[tuple[int, int]], dict]:
    """The support grid an STPN pools to and the predictor options it implies.

    The Mixer predictor mixes a fixed number of tokens per support frame, so it needs a fixed
    support grid: ``support_grid``, else ``default_grid`` (:data:`MIXER_GRID`, or the native
    grid where the input size is fixed, as for a tracker's search crops), and ``num_tokens`` =
    its area. The other predictors take any token count: ``support_grid`` as given (None: the
    backbone's native grid) and no options.

    Returns ``(support_grid for STPN, extra build_predictor keyword arguments)``.
    """
    if canonical_predictor(name) != "mixer":
        return (tuple(support_grid) if support_grid is not None else None), {}
    grid = tuple(support_grid or default_grid)
    return grid, {"num_tokens": grid[0] * grid[1]}


def build_predictor(
    name: str,
    support_dim: int,
    prompt_dim: int,
    num_prompts: int = 5,
    deep_dims: Optional[Sequence[int]] = None,
    **kwargs,
) -> nn.Module:
    """Build a DVP predictor ``(B, K, N, d_L), (B, K) → (B, N_P, d)``.

    Args:
        name: ``"transformer"`` / ``"mixer"`` (the paper's eq. 2–4 / 5–7) or ``"relation"`` /
            ``"topk"`` (the authors' released "att" / "avg"; those names work too).
        support_dim: width ``d_L`` of the support embeddings (``backbone.support_dim``).
        prompt_dim: width ``d`` of the prompts (``backbone.prompt_dims[0]`` for shallow STPN).
        num_prompts: ``N_P``.
        deep_dims: one width per block for STPN deep (``backbone.prompt_dims``); the predictor
            then returns a list of ``(B, N_P, deep_dims[i])`` through
            :class:`~stpn.prompts.deep.DeepPrompts`, its base output keeping width ``prompt_dim``.
        **kwargs: passed to the predictor, e.g. ``num_heads`` (transformer, relation),
            ``mlp_ratio`` (transformer), ``num_tokens`` / ``token_hidden`` / ``channel_hidden``
            (mixer).
    """
    name = canonical_predictor(name)
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

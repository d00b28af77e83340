"""AdamW or SGD (``config.optimizer``) with the usual transformer parameter groups.

No weight decay on: parameters of normalisation layers (any module subclassing torch's norm
classes: LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm, BatchNorm*/InstanceNorm*/SyncBatchNorm),
1-D biases (names ending in ``bias``), names containing a keyword of ``config.no_decay_keywords``
(position embeddings, relative-position bias tables, class tokens) and, if
``config.no_decay_prompt_queries``, the DVP predictors' learnable queries (parameters named
``query``). This is mmdetection's Swin recipe (``norm``, ``absolute_pos_embed``,
``relative_position_bias_table`` at decay 0) extended with timm's rule for biases. Other 1-D
parameters (e.g. layer-scale gammas) keep their decay: the recipes do not exempt them.
Frozen parameters (``requires_grad=False``) are left out.
"""
from __future__ import annotations

from typing import Optional

from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.optim import SGD, AdamW, Optimizer

from stpn.engine.config import DEFAULT_NO_DECAY_KEYWORDS, TrainConfig

NORM_CLASSES: tuple[type, ...] = (nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, _NormBase) + (
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()
)
PROMPT_QUERY_NAMES = ("query",)


def _norm_parameter_names(model: nn.Module) -> set[str]:
    names = set()
    for module_name, module in model.named_modules():
        if isinstance(module, NORM_CLASSES):
            prefix = f"{module_name}." if module_name else ""
            names.update(prefix + n for n, _ in module.named_parameters(recurse=False))
    return names


def no_weight_decay_names(
    model: nn.Module,
    keywords: tuple[str, ...] = DEFAULT_NO_DECAY_KEYWORDS,
    prompt_queries: bool = False,
) -> set[str]:
    """Names of the trainable parameters of ``model`` that get no weight decay."""
    norm_names = _norm_parameter_names(model)
    out = set()
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        leaf = name.rsplit(".", 1)[-1]
        if (
            name in norm_names
            or (param.ndim <= 1 and leaf.endswith("bias"))
            or any(k in name for k in keywords)
            or (prompt_queries and leaf in PROMPT_QUERY_NAMES)
        ):
            out.add(name)
    return out


def lr_multiplier(name: str, multipliers: dict[str, float]) -> float:
    """The multiplier of the first key of ``multipliers`` that matches whole dotted components
    of ``name`` (``"backbone"`` matches ``a.backbone.b`` but not ``a.backbone_x.b``); 1 if none."""
    dotted = f".{name}."
    for key, value in multipliers.items():
        if f".{key.strip('.')}." in dotted:
            return value
    return 1.0


def build_param_groups(model: nn.Module, config: TrainConfig) -> list[dict]:
    """Optimiser groups, one per (decay?, LR multiplier); each group carries ``name`` (e.g.
    ``"decay"``, ``"no_decay"``, ``"no_decay_x0.1"``) and ``param_names`` for inspection."""
    skip = no_weight_decay_names(model, config.no_decay_keywords, config.no_decay_prompt_queries)
    groups: dict[tuple[bool, float], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = name not in skip
        mult = lr_multiplier(name, config.lr_multipliers)
        key = (decay, mult)
        if key not in groups:
            label = ("decay" if decay else "no_decay") + ("" if mult == 1.0 else f"_x{mult:g}")
            groups[key] = {
                "name": label,
                "params": [],
                "param_names": [],
                "lr": config.lr * mult,
                "weight_decay": config.weight_decay if decay else 0.0,
            }
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    if not groups:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    return list(groups.values())


def build_optimizer(model: nn.Module, config: TrainConfig, groups: Optional[list[dict]] = None) -> Optimizer:
    """``config.optimizer`` over :func:`build_param_groups` (or the given ``groups``): AdamW
    (``betas``, ``eps``) or SGD (``momentum``, no Nesterov; the decay is torch's L2 term)."""
    groups = build_param_groups(model, config) if groups is None else groups
    if config.optimizer == "adamw":
        return AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=False)
    raise ValueError(f"optimizer must be one of adamw / sgd, got {config.optimizer!r}")

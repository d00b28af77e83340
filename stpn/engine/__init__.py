"""Task-agnostic training engine: AdamW / SGD groups, warm-up + step / cosine / poly LR, bf16 autocast, gradient
clipping, DDP under torchrun, exactly resumable checkpoints, safetensors export, scalar logs."""
from stpn.engine.checkpoint import export_safetensors, load_checkpoint, load_safetensors, save_checkpoint
from stpn.engine.config import TrainConfig
from stpn.engine.data import ResumableBatchSampler, SampleKey, SeededDataset, make_train_loader
from stpn.engine.distributed import (
    all_gather_objects,
    barrier,
    cleanup_distributed,
    gather_to_main,
    get_rank,
    get_world_size,
    init_distributed,
    is_main_process,
)
from stpn.engine.loop import TrainHistory, fit, train_one_epoch
from stpn.engine.optim import build_optimizer, build_param_groups, no_weight_decay_names
from stpn.engine.presets import recipe, vis_recipe, vod_recipe, vot_stage1_recipe, vot_stage2_recipe
from stpn.engine.rng import seed_everything
from stpn.engine.schedule import WarmupStepSchedule, build_scheduler
from stpn.engine.sharding import evaluate_sharded, shard_indices
from stpn.engine.step import NonFiniteLossError, train_step

__all__ = [
    "NonFiniteLossError",
    "ResumableBatchSampler",
    "SampleKey",
    "SeededDataset",
    "TrainConfig",
    "TrainHistory",
    "WarmupStepSchedule",
    "all_gather_objects",
    "barrier",
    "build_optimizer",
    "build_param_groups",
    "build_scheduler",
    "cleanup_distributed",
    "evaluate_sharded",
    "export_safetensors",
    "fit",
    "gather_to_main",
    "get_rank",
    "get_world_size",
    "init_distributed",
    "is_main_process",
    "load_checkpoint",
    "load_safetensors",
    "make_train_loader",
    "no_weight_decay_names",
    "recipe",
    "save_checkpoint",
    "seed_everything",
    "shard_indices",
    "train_one_epoch",
    "train_step",
    "vis_recipe",
    "vod_recipe",
    "vot_stage1_recipe",
    "vot_stage2_recipe",
]

"""Under plain DDP (2 CPU processes, gloo) the loss divides by the mask count averaged over the
processes, not by each process's own count (transformers only reduces it through accelerate)."""
import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, tmp: str) -> None:
    from stpn.engine.distributed import cleanup_distributed, init_distributed
    from stpn.vis.head import mask2former_config
    from stpn.vis.loss import SetCriterion, mean_mask_count

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    if sys.platform.startswith("linux"):
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    init_distributed()
    count = float(mean_mask_count(1 + 4 * rank, torch.device("cpu")))  # 1 and 5 masks -> 3 each
    criterion = SetCriterion(mask2former_config(3, hidden_dim=64, num_heads=4))
    labels = [torch.zeros(1 + 4 * rank, dtype=torch.long)]
    from_loss = float(criterion.loss.get_num_masks(labels, torch.device("cpu")))
    Path(tmp, f"rank{rank}.json").write_text(json.dumps({"count": count, "from_loss": from_loss}))
    cleanup_distributed()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_the_mask_count_is_averaged_over_processes(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    for rank in range(WORLD):
        result = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert result == {"count": 3.0, "from_loss": 3.0}


def _fit_worker(rank: int, port: int, tmp: str, predictor) -> None:
    from stpn.data.synthetic import generate_dataset
    from stpn.engine import TrainConfig
    from stpn.engine.distributed import cleanup_distributed
    from stpn.vis.config import SegmenterConfig
    from stpn.vis.sections import VisDataConfig
    from stpn.vis.train import train_segmenter
    from tests.vis_tiny import HEAD, SWIN, tiny_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    if sys.platform.startswith("linux"):
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dataset = generate_dataset(2, num_frames=6, size=64, seed=0)
    model = tiny_model(predictor, classes=list(dataset.categories))
    config = TrainConfig(lr=1e-3, max_iters=3, batch_size=4, progress=False, clip_grad_norm=1.0)
    data = VisDataConfig(num_videos=2, num_frames=6, train_sizes=(64,), max_size=64, max_offset=2)
    history = train_segmenter(model, SegmenterConfig(predictor=predictor, swin_kwargs=SWIN, head_kwargs=HEAD),
                              dataset, data, config, Path(tmp) / "run")
    digest = float(sum(p.detach().double().sum() for p in model.parameters()))
    Path(tmp, f"fit{rank}.json").write_text(json.dumps({"losses": history.losses, "digest": digest}))
    cleanup_distributed()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
@pytest.mark.parametrize("predictor", [None, "relation"])
def test_the_segmenter_trains_under_plain_ddp(tmp_path, predictor):
    """Every trainable parameter gets a gradient (DDP without find_unused_parameters fails on the
    second step otherwise), the ranks stay in step, and only rank 0 writes vis.json (two ranks
    writing it raced on its temporary file now and then)."""
    mp.spawn(_fit_worker, args=(_free_port(), str(tmp_path), predictor), nprocs=WORLD, join=True)
    main, other = (json.loads((tmp_path / f"fit{r}.json").read_text()) for r in range(WORLD))
    assert len(main["losses"]) == 3 and other["losses"] == []
    assert main["digest"] == other["digest"]
    assert json.loads((tmp_path / "run" / "vis.json").read_text())["task"] == "vis"

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

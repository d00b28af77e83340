"""DDP on 2 CPU processes (gloo on 127.0.0.1): same parameters as one process on the whole batch,
gathering objects on rank 0, evaluation sharded by whole videos."""
import json
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from stpn.engine.checkpoint import load_checkpoint
from stpn.engine.config import TrainConfig
from stpn.engine.data import make_train_loader
from stpn.engine.distributed import (
    all_gather_objects,
    cleanup_distributed,
    gather_to_main,
    get_world_size,
    init_distributed,
    is_main_process,
)
from stpn.engine.loop import fit
from stpn.engine.sharding import evaluate_sharded
from tests.engine_tiny import NoisyRegression, TinyMLP

WORLD = 2
VIDEO_LENGTHS = [5, 1, 3, 8, 2]


def _config():
    return TrainConfig(
        lr=1e-2, weight_decay=0.05, warmup_iters=2, warmup_factor=0.5, milestones=(3,), milestone_unit="iter",
        max_iters=5, clip_grad_norm=0.5, seed=3, progress=False, log_every=1,
    )


def _train(out_dir):
    """Global batch 4; under DDP the loader is built before the process group exists (fit starts
    it) and still gives each rank its half."""
    torch.manual_seed(0)
    model = TinyMLP(dropout=0.0)
    loader = make_train_loader(NoisyRegression(16), batch_size=4, seed=3)
    history = fit(model, loader, _config(), out_dir)
    return model, history


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, tmp: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank)
    )
    if sys.platform.startswith("linux"):
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # keep gloo on the loopback interface
    torch.set_num_threads(1)
    model, history = _train(Path(tmp) / "ddp")
    info = init_distributed()  # already started by fit: returns the running group
    assert info.backend == "gloo" and info.rank == rank and get_world_size() == WORLD
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, Path(tmp) / f"rank{rank}.pt")
    gathered = gather_to_main({"rank": rank, "items": list(range(rank + 1))})
    everyone = all_gather_objects(10 * rank)
    videos = [f"video{i}" for i in range(len(VIDEO_LENGTHS))]
    results = evaluate_sharded(videos, lambda v: (v, rank), VIDEO_LENGTHS)
    if is_main_process():
        out = {"gathered": gathered, "everyone": everyone, "results": results, "losses": history.losses}
        (Path(tmp) / "main.json").write_text(json.dumps(out))
    else:
        assert gathered is None and results is None and history.train == []
        (Path(tmp) / "other.json").write_text(json.dumps({"everyone": everyone}))
    cleanup_distributed()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_ddp_matches_single_process_and_gathers_on_main(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ref_model, ref_history = _train(tmp_path / "single")
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for name, ref in ref_model.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], ref, atol=1e-6, rtol=0, msg=name)
    assert not all(torch.equal(ranks[0][n], v) for n, v in TinyMLP(dropout=0.0).state_dict().items())

    main = json.loads((tmp_path / "main.json").read_text())
    torch.testing.assert_close(torch.tensor(main["losses"]), torch.tensor(ref_history.losses), atol=1e-6, rtol=0)
    assert main["gathered"] == [{"rank": 0, "items": [0]}, {"rank": 1, "items": [0, 1]}]
    assert main["everyone"] == [0, 10] == json.loads((tmp_path / "other.json").read_text())["everyone"]
    videos = [v for v, _ in main["results"]]
    owners = [r for _, r in main["results"]]
    assert videos == [f"video{i}" for i in range(len(VIDEO_LENGTHS))]  # original order
    assert set(owners) == {0, 1}  # both ranks evaluated whole videos
    assert len(load_checkpoint(tmp_path / "ddp")["rng"]) == WORLD

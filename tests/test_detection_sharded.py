"""Detection evaluation under torchrun: two gloo processes share out the videos, rank 0 gathers
them and gets the same detections (hence the same metrics) as one process."""
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from stpn.data.synthetic import CATEGORIES, iter_videos
from stpn.data.types import VideoDataset
from stpn.detection.run import predict_dataset
from stpn.engine.distributed import cleanup_distributed, init_distributed
from stpn.metrics.coco_detection import detection_report
from tests.test_detection_model import tiny

WORLD = 2


def dataset():
    videos = list(iter_videos(2, num_frames=4, size=64, seed=0)) + list(iter_videos(1, num_frames=2, size=64, seed=5))
    return VideoDataset(list(CATEGORIES), videos)


def detect():
    torch.manual_seed(0)
    return predict_dataset(tiny(), dataset(), "sliding", 2, 1, progress=False)


def _worker(rank: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    if sys.platform.startswith("linux"):
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    torch.set_num_threads(1)
    assert init_distributed().backend == "gloo"
    detections, fps = detect()
    torch.save({"detections": detections, "fps": fps}, Path(tmp) / f"rank{rank}.pt")
    cleanup_distributed()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_processes_give_the_metrics_of_one(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    main = torch.load(tmp_path / "rank0.pt", weights_only=False)
    other = torch.load(tmp_path / "rank1.pt", weights_only=False)
    assert other == {"detections": None, "fps": None}
    torch.set_num_threads(1)
    single, fps = detect()
    sharded = main["detections"]
    assert [(d["video_index"], d["frame_index"]) for d in sharded] == \
           [(d["video_index"], d["frame_index"]) for d in single] == [(v, t) for v, n in ((0, 4), (1, 4), (2, 2))
                                                                    for t in range(n)]
    for a, b in zip(sharded, single):
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-4)
    assert sum(len(d["scores"]) for d in single) > 0  # something to compare
    assert detection_report(dataset(), sharded) == detection_report(dataset(), single)
    assert main["fps"] > 0

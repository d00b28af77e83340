"""The demo's parallel work: videos generated and detectors trained in worker processes.

On a 2-core machine two one-thread processes train the two detectors at the same time (a
detector step is dominated by small operations that one thread runs nearly as fast as two).
Workers are spawned (a fresh interpreter each: no forked OpenMP state), receive the datasets once
(initializer) and report their training progress to the parent through a queue, where one
progress bar per job is shown.

Cores freed by a finished job are handed on: the workers share a count of the jobs not yet
finished, and once fewer jobs than workers remain, each running job takes
``cores // remaining`` threads (on 2 cores: the job left over trains on both once the other
one is done).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Optional, Sequence

import torch
from tqdm import tqdm

from stpn.data import synthetic
from stpn.data.types import Video

_STATE: dict = {}  # per worker process: datasets, progress queue, threads


def worker_count(jobs: int) -> int:
    """``jobs`` if positive, else one per core, at most 2 (the demo trains two models)."""
    return jobs if jobs > 0 else max(1, min(2, os.cpu_count() or 1))


def _init_worker(threads: int, shared: dict, progress_queue, remaining) -> None:
    torch.set_num_threads(threads)
    _STATE.update(shared, queue=progress_queue, remaining=remaining)


def _threads_now(remaining, default: int) -> int:
    """This worker's fair share of the cores given the count of unfinished jobs."""
    left = remaining.value if remaining is not None else 0
    cores = os.cpu_count() or 1
    return max(default, cores // left) if left > 0 else default


def _generate(args: tuple) -> list[Video]:
    indices, frames, size, seed, severity, single_class = args
    return [synthetic.generate_video(i, frames, size, seed, severity, single_class) for i in indices]


def generate_videos(num_videos: int, frames: int, size: int, seed: int, severity: float, single_class: bool,
                    pool: Optional[ProcessPoolExecutor], desc: str, progress: bool) -> list[Video]:
    """Videos ``0 .. num_videos - 1`` of generator ``seed``, in chunks over ``pool`` (in this
    process when ``pool`` is None); the same videos either way."""
    chunks = [list(range(i, min(i + 25, num_videos))) for i in range(0, num_videos, 25)]
    args = [(c, frames, size, seed, severity, single_class) for c in chunks]
    results = pool.map(_generate, args) if pool is not None else map(_generate, args)
    videos: list[Video] = []
    with tqdm(total=num_videos, desc=desc, unit="video", disable=not progress) as bar:
        for chunk in results:
            videos.extend(chunk)
            bar.update(len(chunk))
    return videos


class _TrainingLogBridge(logging.Handler):
    """Runs in the training loop at each of the engine's "iter i/n ... loss x" log records: sends
    (job, i, n, loss) to the parent's progress bars and takes the cores a finished job freed.

    The thread count is set here, not from another thread of the worker, because PyTorch's
    intra-op thread count belongs to the thread that sets it."""

    def __init__(self, job: str, progress_queue, remaining) -> None:
        super().__init__()
        self.job, self.queue, self.remaining = job, progress_queue, remaining
        self.threads = torch.get_num_threads()

    def emit(self, record: logging.LogRecord) -> None:
        wanted = _threads_now(self.remaining, self.threads)
        if wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
        if self.queue is None:
            return
        try:
            _, iteration, total, _, terms = record.args
            loss = terms.split()[1] if terms.startswith("loss ") else ""
            self.queue.put((self.job, iteration, total, loss))
        except Exception:  # progress is best effort; never break training over it
            pass


def run_job(fn: Callable, job: str, *args):
    """Call ``fn(shared state, *args)`` in a worker, with the engine's progress sent to the parent;
    count the job as finished when it returns."""
    logger = logging.getLogger("stpn.engine")
    handler = _TrainingLogBridge(job, _STATE.get("queue"), _STATE.get("remaining"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        return fn(_STATE, *args)
    finally:
        logger.removeHandler(handler)
        torch.set_num_threads(handler.threads)
        remaining = _STATE.get("remaining")
        if remaining is not None:
            with remaining.get_lock():
                remaining.value -= 1


def run_jobs(jobs: Sequence[tuple[str, Callable, tuple]], shared: dict, workers: int, threads: int,
             progress: bool) -> list:
    """Run ``fn(shared, *args)`` for every ``(name, fn, args)`` on ``workers`` spawned processes
    of ``threads`` threads each (more once fewer jobs than workers remain); results in job order.
    One progress bar per job."""
    ctx = get_context("spawn")
    remaining = ctx.Value("i", len(jobs))
    manager = ctx.Manager() if progress else None
    progress_queue = manager.Queue() if manager is not None else None
    bars: dict[str, tqdm] = {}
    stop = threading.Event()

    def show() -> None:
        while not stop.is_set() or (progress_queue is not None and not progress_queue.empty()):
            try:
                job, iteration, total, loss = progress_queue.get(timeout=0.2)
            except queue.Empty:
                continue
            bar = bars.get(job)
            if bar is None:
                bar = bars[job] = tqdm(total=total, desc=f"train {job}", unit="it", position=len(bars), leave=True)
            bar.n = iteration
            bar.set_postfix_str(f"loss {loss}", refresh=True)

    watcher = threading.Thread(target=show, daemon=True) if progress_queue is not None else None
    if watcher is not None:
        watcher.start()
    try:
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads, shared, progress_queue, remaining)) as pool:
            futures = [pool.submit(run_job, fn, name, *args) for name, fn, args in jobs]
            return [f.result() for f in futures]
    finally:
        stop.set()
        if watcher is not None:
            watcher.join()
        for bar in bars.values():
            bar.close()
        if manager is not None:
            manager.shutdown()

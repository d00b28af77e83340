"""STT's sparse windows against dense attention over every position of the key frames.

Both attend from the same selected queries (a quarter of the current frame's positions) to the
7 previous key frames, on random ``(1, 512, h, w)`` features: the sparse path gathers the 407
window keys per query (:class:`stpn.vss.stt.SparseTemporalTransformer`), the dense one attends
with the same projections and ``scaled_dot_product_attention`` to all ``7·h·w`` positions. Prints forward time (median of
``--repeats``) and the size of the largest tensor each builds (keys or attention weights),
measured on the CPU with one thread.

    python benchmarks/vss_attention.py --side 24 48
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from stpn.vss.query_selection import query_count, random_queries
from stpn.vss.stt import SparseTemporalTransformer

CHANNELS, DIM, HEADS, FRAMES = 512, 128, 4, 7


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def measure(side: int, repeats: int) -> dict:
    torch.manual_seed(0)
    stt = SparseTemporalTransformer(CHANNELS, DIM, HEADS, FRAMES).eval()
    features = torch.randn(1, CHANNELS, side, side)
    keys = [torch.randn(1, CHANNELS, side, side) for _ in range(FRAMES)]
    count = query_count(side, side)
    positions = random_queries(1, side, side, count, torch.device("cpu"))

    def sparse_forward():
        return stt(features, keys, positions)

    def dense_forward():
        query = stt.query_proj(features).flatten(2).transpose(1, 2)
        query = torch.gather(query, 1, positions[..., None].expand(-1, -1, DIM))
        every_key = torch.cat([stt.key_proj(k).flatten(2).transpose(1, 2) for k in keys], dim=1)
        every_value = torch.cat([stt.value_proj(k).flatten(2).transpose(1, 2) for k in keys], dim=1)

        def heads(x):
            return x.reshape(1, x.shape[1], HEADS, DIM // HEADS).transpose(1, 2)

        attended = F.scaled_dot_product_attention(heads(query), heads(every_key), heads(every_value))
        return stt.out(attended.transpose(1, 2).reshape(1, count, DIM))

    sparse_bytes = count * stt.num_keys * DIM * 4  # gathered keys (B·N, 407, dim); values the same
    dense_bytes = HEADS * count * FRAMES * side * side * 4  # attention weights (heads, N, 7hw)
    return {"side": side, "queries": count, "sparse_keys_per_query": stt.num_keys,
            "dense_keys_per_query": FRAMES * side * side,
            "sparse_ms": 1000 * median_seconds(sparse_forward, repeats),
            "dense_ms": 1000 * median_seconds(dense_forward, repeats),
            "sparse_largest_MB": sparse_bytes / 2 ** 20, "dense_largest_MB": dense_bytes / 2 ** 20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, nargs="+", default=[24, 48], help="feature map side(s) h = w")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print("| map | queries | keys/query sparse | dense | sparse ms | dense ms | largest tensor sparse MB | dense MB |")
    print("|---|---|---|---|---|---|---|---|")
    for side in args.side:
        r = measure(side, args.repeats)
        print(f"| {side}x{side} | {r['queries']} | {r['sparse_keys_per_query']} | {r['dense_keys_per_query']} | "
              f"{r['sparse_ms']:.1f} | {r['dense_ms']:.1f} | {r['sparse_largest_MB']:.1f} | {r['dense_largest_MB']:.1f} |")


if __name__ == "__main__":
    main()

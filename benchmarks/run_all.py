"""``make bench``: every ratio benchmark of the project, one after the other."""
from benchmarks import bench_streaming

if __name__ == "__main__":
    print("== STPN streaming inference vs plain backbone ==", flush=True)
    bench_streaming.main([])

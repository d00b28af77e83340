"""``make bench``: every ratio benchmark of the project, one after the other."""
from benchmarks import bench_demo_step, bench_detector, bench_streaming, bench_swin_prompts

if __name__ == "__main__":
    print("== prompted Swin vs timm's plain Swin (CPU time, one thread) ==", flush=True)
    bench_swin_prompts.main([])
    print("\n== STPN streaming inference vs plain backbone ==", flush=True)
    bench_streaming.main([])
    print("\n== whole detector: per-video STPN vs per-frame Faster R-CNN (CPU time, one thread) ==", flush=True)
    bench_detector.main([])
    print("\n== the demo's training step: bf16 autocast vs fp32 (CPU time, one thread) ==", flush=True)
    bench_demo_step.main([])

"""Bandwidth of the fused direction axpy (zofw.kernels) against a plain copy, on CUDA.

    python scripts/bench_kernel.py --numel 2650000000      # OPT-2.7B; 1.3e10 for 13B if memory allows

Prints one JSON line per measurement: the median of --repeats timings (CUDA events) after --warmup calls,
and the bandwidth counting the bytes read and written once per element (2 + 2 for float16), which is what
both the in-place axpy and dst.copy_(src) move.
"""

from __future__ import annotations

import argparse
import json
import statistics
from typing import Callable

import torch

from zofw.kernels import axpy_directions_, triton_axpy

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def time_ms(fn: Callable[[], None], warmup: int, repeats: int) -> float:
    """Median wall time of ``fn`` on the GPU, in milliseconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--numel", type=float, default=2.65e9, help="elements in the buffer")
    parser.add_argument("--dtype", choices=sorted(_DTYPES), default="float16")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--offset", type=int, default=0, help="global element offset of the buffer")
    parser.add_argument("--sweep", action="store_true", help="also try other (block, warps) launch shapes")
    parser.add_argument("--scale", type=float, default=0.02,
                        help="weights are drawn N(0, scale²), every 1000th zero (a model's weights and biases)")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_kernel.py needs a CUDA device")

    numel, dtype = int(args.numel), _DTYPES[args.dtype]
    src = torch.randn(numel, dtype=dtype, device="cuda") * args.scale
    src[::1000] = 0
    dst = torch.empty_like(src)
    moved = 2 * numel * src.element_size()  # bytes read + written

    def report(kernel: str, ms: float, **extra) -> None:
        print(json.dumps({"kernel": kernel, "numel": numel, "dtype": args.dtype, "ms": round(ms, 4),
                          "GB_per_s": round(moved / ms / 1e6, 1), **extra,
                          "device": torch.cuda.get_device_name()}), flush=True)

    report("copy", time_ms(lambda: dst.copy_(src), args.warmup, args.repeats))
    # the pass a training step fuses: update along u_t (stochastic rounding) and the next probe's θ + λu_{t+1}
    probe = torch.empty_like(src)
    released = torch.tensor(-1e-4, device="cuda")
    report("update+probe", time_ms(lambda: axpy_directions_(src, src, 1.0, [(11, released)], args.offset, 5,
                                                             probe=(probe, 13, 1e-3)), args.warmup, args.repeats),
           floor_ms=round(1.5 * time_ms(lambda: dst.copy_(src), args.warmup, args.repeats), 4))
    seeds = [0x9E3779B97F4A7C15, 12345, (1 << 64) - 1]
    for n_terms in (1, 2, 3):
        terms = [(s, 1e-3) for s in seeds[:n_terms]]
        for rounding_seed in (None, 42) if dtype != torch.float32 else (None,):
            # In place, as a training step perturbs its weights; shrink 1.0 keeps the values bounded.
            ms = time_ms(lambda: axpy_directions_(dst, dst, 1.0, terms, args.offset, rounding_seed),
                         args.warmup, args.repeats)
            report("axpy", ms, terms=n_terms, rounding="stochastic" if rounding_seed is not None else "nearest")
            for block, warps in [(b, w) for b in (512, 1024, 2048, 4096) for w in (4, 8)] if args.sweep else []:
                ms = time_ms(lambda: triton_axpy.axpy_directions_(dst, dst, 1.0, terms, args.offset, rounding_seed,
                                                                  block, warps), args.warmup, args.repeats)
                report("axpy", ms, terms=n_terms, block=block, warps=warps,
                       rounding="stochastic" if rounding_seed is not None else "nearest")


if __name__ == "__main__":
    main()

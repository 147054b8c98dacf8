"""How fast could a breadth row be if all it did were its matrix products? A ceiling per row.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_blas_bound.py \
        [--threads 2] [--repeats 5] [--names k7_64x28,g8_128x28,...]

convlab lowers every dense operation to matrix products that OpenBLAS computes. However fast
the column building and the thread split, a row cannot beat the time of those products. This
script times, for each row of the breadth benchmark (:mod:`convlab._breadth`) that is computed
by matrix products:

1. convlab and PyTorch, as ``python -m convlab.bench --layers breadth`` does (blocks of calls, a
   pause between them), in the same run;
2. OpenBLAS alone (one thread, as inside convlab's kernels) on a block of each product the row
   can be lowered to, in both orientations (output channels as BLAS's M or as its N), keeping
   the fastest: "gather" (``C_out/g`` x ``C_in/g * taps`` times positions: the forward
   convolution, a stride-1 transposed convolution and the input gradient by the convolution
   they equal, a strided one by its ``stride**d`` phases), "scatter" (``C_out/g * taps`` x
   ``C_in/g`` times input positions: a transposed convolution then folded) and, for the weight
   gradient, ``C_out/g`` x ``C_in/g * taps`` summed over positions.

The ceiling is the row's multiply-adds at that rate on every thread (perfect scaling, free
columns): ``bound = torch time / (flops / (threads * rate))``. A row whose bound is under 0.8 cannot
reach 0.8x PyTorch with OpenBLAS products however the rest is written: PyTorch's oneDNN kernels
run such thin products nearer the machine's peak than OpenBLAS does. A row above its bound beats
the products (Winograd multiplies less). Needs torch in the same environment.
"""

import argparse
import math
import time

import numpy as np
from _timing import set_threads  # benchmarks/_timing.py (the script's folder is on sys.path)

from convlab import _breadth
from convlab._blas import one_blas_thread
from convlab.bench import measure_peak

#: positions per block of columns the rate is measured on (the engine's blocks hold ~256-2048)
BLOCK = 1024


def _rate(m, k, n, dtype, repeat):
    """Best single-thread BLAS rate (flop/s) of ``(m x k) @ (k x n)`` in either orientation."""
    rng = np.random.default_rng(0)
    best = 0.0
    for a_shape, b_shape in (((m, k), (k, n)), ((n, k), (k, m))):
        a = rng.standard_normal(a_shape).astype(dtype)
        b = rng.standard_normal(b_shape).astype(dtype)
        c = np.empty((a_shape[0], b_shape[1]), dtype)
        np.matmul(a, b, out=c)
        t = min(_timed(lambda: np.matmul(a, b, out=c)) for _ in range(repeat))
        best = max(best, 2 * m * k * n / t)
    return best


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def products(op):
    """``{lowering: (m, k, n)}``: one block of each product ``op`` can be lowered to."""
    x, w = op.x, op.w
    g = op.kwargs.get("groups", 1)
    nd = op.nd
    stride = op.kwargs.get("stride", 1)
    taps = math.prod(w[2:])
    if op.kind == "conv":
        out = op.x[0] * math.prod(op._out_spatial(x))
        return {"gather": (w[0] // g, x[1] // g * taps, min(out, BLOCK))}
    if op.kind == "transpose":  # weight (C_in, C_out/g, *k); x is the transposed conv's input
        out = op.x[0] * math.prod(op._out_spatial(x))
        phase_taps = max(1, taps // stride**nd)
        return {
            "gather": (w[1], x[1] // g * phase_taps, min(out, BLOCK)),
            "scatter": (w[1] * taps, x[1] // g, min(x[0] * math.prod(x[2:]), BLOCK)),
        }
    if op.kind == "grad_input":  # the transposed convolution of the output gradient
        go_pos = x[0] * math.prod(op._out_spatial(x))
        in_pos = x[0] * math.prod(x[2:])
        phase_taps = max(1, taps // stride**nd)
        return {
            "gather": (x[1] // g, w[0] // g * phase_taps, min(in_pos, BLOCK)),
            "scatter": (x[1] // g * taps, w[0] // g, min(go_pos, BLOCK)),
        }
    if op.kind == "grad_weight":
        return {
            "weight": (w[0] // g, min(x[0] * math.prod(op._out_spatial(x)), BLOCK), w[1] * taps)
        }
    return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--names", help="comma-separated rows (default: every GEMM row)")
    args = parser.parse_args()
    torch = set_threads(args.threads)
    if torch is None:
        raise SystemExit("this script compares with PyTorch: install torch")
    names = (
        args.names.split(",") if args.names else [op.name for op in _breadth.OPS if products(op)]
    )
    run = _breadth.run_breadth(args.threads, repeats=args.repeats, names=names)
    peak = measure_peak()
    with one_blas_thread():
        peak1 = measure_peak()
    print(
        f"threads={args.threads}  sgemm peak {peak:.0f} GFLOP/s (BLAS's threads), "
        f"{peak1:.0f} on one thread"
    )
    head = f"{'operation':27s} {'convlab':>8s} {'torch':>8s} {'ratio':>6s}  {'lowering':>8s} "
    print(head + f"{'m x k x n':>16s} {'GF/s/thr':>8s} {'bound ms':>8s} {'bound':>6s}")
    for row in run["results"]:
        op = _breadth.BY_NAME[row["op"]]
        with one_blas_thread():
            rates = {
                name: (shape, _rate(*shape, np.dtype(op.dtype), args.repeats))
                for name, shape in products(op).items()
            }
        lowering, (shape, rate) = max(rates.items(), key=lambda item: item[1][1])
        bound_s = 2 * op.macs() / (args.threads * rate)
        dims = "x".join(map(str, shape))
        print(
            f"{op.name:27s} {row['convlab_s'] * 1e3:8.3f} {row['torch_s'] * 1e3:8.3f} "
            f"{row['ratio_torch']:6.2f}  {lowering:>8s} {dims:>16s} {rate / 1e9:8.0f} "
            f"{bound_s * 1e3:8.3f} {row['torch_s'] / bound_s:6.2f}"
        )


if __name__ == "__main__":
    main()

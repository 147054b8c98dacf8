"""The measurements behind ``conv2d(algorithm="auto")``: every algorithm on 1 and 2 threads.

    python benchmarks/bench_auto_rule.py [--repeats 7] [--quick]

Prints the table in :func:`convlab.conv.choose_algorithm`'s docstring (float32, ms, best of
``--repeats``): on one thread the CPU time of the process (robust on a shared machine), on two
threads the wall time (what a user sees), followed by the algorithm ``"auto"`` picks. ``-`` marks
an algorithm that does not apply (Winograd needs 3x3, stride 1, dilation 1) and ``.`` one skipped
because it would take seconds (the direct loop and the FFT on two threads, which the rule does
not need). No torch needed.
"""

import argparse
import time

import numba
import numpy as np
from _timing import best_time  # benchmarks/_timing.py (the script's folder is on sys.path)

import convlab
from convlab.conv import choose_algorithm

# N, C_in, C_out, size, kernel, stride, groups: the layers of the docstring table
LAYERS = [
    (1, 8, 8, 56, 3, 1, 1),
    (1, 16, 16, 14, 3, 1, 1),
    (1, 16, 16, 56, 3, 1, 1),
    (1, 32, 32, 14, 3, 1, 1),
    (1, 64, 64, 10, 3, 1, 1),
    (1, 64, 64, 12, 3, 1, 1),
    (1, 64, 64, 14, 3, 1, 1),
    (1, 64, 64, 16, 3, 1, 1),
    (1, 64, 64, 28, 3, 1, 1),
    (1, 64, 64, 56, 3, 1, 1),
    (1, 128, 128, 14, 3, 1, 1),
    (1, 128, 128, 28, 3, 1, 1),
    (1, 256, 256, 7, 3, 1, 1),
    (1, 256, 256, 14, 3, 1, 1),
    (1, 256, 256, 28, 3, 1, 1),
    (1, 512, 512, 7, 3, 1, 1),
    (8, 64, 64, 56, 3, 1, 1),
    (1, 64, 64, 56, 3, 1, 8),
    (1, 256, 256, 14, 3, 1, 64),
    (1, 3, 64, 224, 7, 2, 1),
    (1, 64, 256, 56, 1, 1, 1),
    (1, 256, 128, 28, 1, 2, 1),
    (1, 64, 64, 28, 5, 1, 1),
    (1, 16, 16, 64, 9, 1, 1),
    (1, 8, 8, 64, 15, 1, 1),
    (1, 3, 3, 128, 9, 1, 1),
    (1, 1, 1, 256, 31, 1, 1),
]
ALGORITHMS = ("direct", "im2col", "implicit", "winograd", "fft")
TWO_THREADS = ("im2col", "implicit", "winograd")


def _applies(algorithm, k, stride):
    return algorithm != "winograd" or (k == 3 and stride == 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="the first four layers only")
    parser.add_argument(
        "--layers", default=None, help="comma-separated row numbers (0-based) of the table to run"
    )
    args = parser.parse_args(argv)
    if numba.config.NUMBA_NUM_THREADS < 2:
        raise SystemExit("needs 2 Numba threads")
    rng = np.random.default_rng(0)
    short = {"implicit": "impl", "winograd": "wino"}
    one = " ".join(f"{short.get(a, a):>7s}" for a in ALGORITHMS)
    two = " ".join(f"{short.get(a, a):>7s}" for a in TWO_THREADS)
    print(f"{'layer':24s} {one}   {two}   auto")
    print(f"{'':24s} {'---- 1 thread, CPU time ----':>39s}   {'- 2 threads, wall -':>23s}")
    layers = LAYERS[:4] if args.quick else LAYERS
    if args.layers:
        layers = [LAYERS[int(i)] for i in args.layers.split(",")]
    for n, c_in, c_out, size, k, stride, groups in layers:
        x = rng.standard_normal((n, c_in, size, size), dtype=np.float32)
        w = rng.standard_normal((c_out, c_in // groups, k, k), dtype=np.float32)
        pad = k // 2

        def run(algorithm):
            return lambda: convlab.conv2d(
                x, w, stride=stride, padding=pad, groups=groups, algorithm=algorithm
            )

        cells = []
        numba.set_num_threads(1)
        for algorithm in ALGORITHMS:
            ok = _applies(algorithm, k, stride)
            seconds = (
                best_time(run(algorithm), args.repeats, clock=time.process_time) if ok else None
            )
            cells.append(f"{1e3 * seconds:7.2f}" if ok else f"{'-':>7s}")
        numba.set_num_threads(2)
        two = []
        for algorithm in TWO_THREADS:
            ok = _applies(algorithm, k, stride)
            seconds = best_time(run(algorithm), args.repeats) if ok else None
            two.append(f"{1e3 * seconds:7.2f}" if ok else f"{'-':>7s}")
        out_size = (size + 2 * pad - k) // stride + 1
        auto = choose_algorithm(
            (n, c_in, size, size),
            w.shape,
            (n, c_out, out_size, out_size),
            groups,
            4,
            stride=(stride, stride),
        )
        name = f"{n}x{c_in}->{c_out}"
        name = (
            f"{name:11s}{size:4d} {k}x{k}"
            + (f" s{stride}" if stride > 1 else "")
            + (f" g{groups}" if groups > 1 else "")
        )
        print(f"{name:24s} {' '.join(cells)}   {' '.join(two)}   {auto}", flush=True)


if __name__ == "__main__":
    main()

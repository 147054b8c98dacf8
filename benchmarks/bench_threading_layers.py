"""Numba's threading layers (omp, tbb, workqueue) under convlab: stalls and speed, 2 threads.

The measurement behind convlab's default layer (convlab/config.py). Every sample is a fresh
process (the omp stall is a property of a process: in some, every 2-thread call waits 8 or 16 ms),
the layers take turns, process by process, so that a change in the machine's load hits them all.

``stalls``: per process, the per-call times of a small conv2d (32 channels, 8x8: ~0.03 ms), a
medium one (64 channels, 56x56: ~0.9 ms) and a plain Numba ``prange`` kernel; a call is stalled
when it takes more than its process's median + 4 ms. Prints, per layer and call, how many processes
had stalled calls and how many calls stalled.

``speed``: per process, the best time of each representative layer (best of ``--rounds`` blocks
of ``--block`` calls); prints the median over processes and the spread (min-max).

Run it alone on the machine, at normal priority, and with OpenBLAS's own kernel choice::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE flock /work/team/bench.lock \\
        python benchmarks/bench_threading_layers.py stalls --processes 12
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE flock /work/team/bench.lock \\
        python benchmarks/bench_threading_layers.py speed --processes 4
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def _speed_calls(np, convlab):
    rng = np.random.default_rng(0)

    def data(*shapes):
        return [rng.standard_normal(s, dtype=np.float32) for s in shapes]

    x1, w1 = data((1, 64, 56, 56), (64, 64, 3, 3))
    x2, w2 = data((1, 256, 14, 14), (256, 256, 3, 3))
    x3, w3 = data((1, 3, 224, 224), (64, 3, 7, 7))
    x4, w4 = data((1, 64, 56, 56), (256, 64, 1, 1))
    x5, w5 = data((1, 32, 112, 112), (32, 1, 3, 3))
    x6, w6 = data((1, 144, 56, 56), (144, 1, 3, 3))
    x7, w7 = data((1, 64, 16, 16), (64, 64, 3, 3))
    x8, w8 = data((1, 8, 12, 12), (8, 8, 3, 3))
    x9, w9, off = data((1, 64, 28, 28), (64, 64, 3, 3), (1, 18, 28, 28))
    xt, wt = data((1, 128, 16, 16), (128, 64, 4, 4))
    xs, dws, pws = data((1, 32, 56, 56), (32, 1, 3, 3), (64, 32))
    xf, wf = data((1, 16, 64, 64), (16, 16, 9, 9))
    return {
        "resnet_64x56 (winograd)": lambda: convlab.conv2d(x1, w1, padding=1),
        "resnet_256x14 (winograd)": lambda: convlab.conv2d(x2, w2, padding=1),
        "stem_7x7_s2 (im2col)": lambda: convlab.conv2d(x3, w3, stride=2, padding=3),
        "pointwise_64to256": lambda: convlab.conv2d(x4, w4),
        "dw_32x112": lambda: convlab.conv2d(x5, w5, padding=1, groups=32),
        "dw_144x56_s2": lambda: convlab.conv2d(x6, w6, stride=2, padding=1, groups=144),
        "resnet_64x16": lambda: convlab.conv2d(x7, w7, padding=1),
        "tiny_3x3": lambda: convlab.conv2d(x8, w8, padding=1),
        "fft_16x64_k9": lambda: convlab.conv2d(xf, wf, padding=4, algorithm="fft"),
        "deform_64x28": lambda: convlab.deform_conv2d(x9, off, w9, padding=1),
        "transpose_128to64_s2": lambda: convlab.conv_transpose2d(xt, wt, stride=2, padding=1),
        "separable_32to64x56": lambda: convlab.depthwise_separable_conv2d(xs, dws, pws, padding=1),
    }


def worker(mode, rounds, block, calls_small, calls_medium):
    import numba
    import numpy as np
    from numba import njit, prange

    import convlab

    result = {}
    if mode == "speed":
        for name, call in _speed_calls(np, convlab).items():
            call()
            call()
            best = float("inf")
            for _ in range(rounds):
                time.sleep(0.05)
                for _ in range(block):
                    t0 = time.perf_counter()
                    call()
                    best = min(best, time.perf_counter() - t0)
            result[name] = best * 1e3
    else:

        @njit(parallel=True)
        def scale(a, out):
            for i in prange(a.shape[0]):
                out[i] = 2.0 * a[i]

        rng = np.random.default_rng(0)
        xs = rng.standard_normal((1, 32, 8, 8), dtype=np.float32)
        ws = rng.standard_normal((32, 32, 3, 3), dtype=np.float32)
        xm = rng.standard_normal((1, 64, 56, 56), dtype=np.float32)
        wm = rng.standard_normal((64, 64, 3, 3), dtype=np.float32)
        a = np.ones(20000, dtype=np.float32)
        out = np.empty_like(a)
        calls = {
            "small": (lambda: convlab.conv2d(xs, ws, padding=1), calls_small),
            "medium": (lambda: convlab.conv2d(xm, wm, padding=1), calls_medium),
            "prange": (lambda: scale(a, out), calls_small),
        }
        for name, (call, n) in calls.items():
            call()
            call()
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                call()
                times.append((time.perf_counter() - t0) * 1e3)
            median = statistics.median(times)
            result[name] = dict(
                median=median, best=min(times), stalled=sum(t > median + 4.0 for t in times)
            )
    result["_layer"] = numba.threading_layer()
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("stalls", "speed"))
    parser.add_argument("--layers", default="omp,tbb,workqueue")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--calls", default="400,200", help="small,medium calls per process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    small, medium = map(int, args.calls.split(","))
    if args.worker:
        print(json.dumps(worker(args.mode, args.rounds, args.block, small, medium)))
        return 0
    layers = args.layers.split(",")
    samples = {layer: [] for layer in layers}
    for i in range(args.processes):
        for layer in layers:
            env = dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS=str(args.threads))
            cmd = [sys.executable, __file__, args.mode, "--worker", "--calls", args.calls]
            cmd += ["--rounds", str(args.rounds), "--block", str(args.block)]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{layer}: worker failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            sample = json.loads(proc.stdout.strip().splitlines()[-1])
            assert sample.pop("_layer") == layer
            samples[layer].append(sample)
            print(f"process {i + 1}/{args.processes} {layer} done", file=sys.stderr, flush=True)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(
        f"{args.mode}, {args.threads} threads, {args.processes} processes per layer, "
        f"load average {load:.1f} at the end"
    )
    if args.mode == "stalls":
        for layer, runs in samples.items():
            for call in ("small", "medium", "prange"):
                stalled = [r[call]["stalled"] for r in runs]
                medians = sorted(r[call]["median"] for r in runs)
                print(
                    f"{layer:<10} {call:<7} processes with stalls {sum(s > 0 for s in stalled):>2}"
                    f"/{len(runs)}, stalled calls {sum(stalled):>5} (most in one process "
                    f"{max(stalled):>4}), median call ms: {medians[0]:.3f} / "
                    f"{statistics.median(medians):.3f} / {medians[-1]:.3f} (min/median/max)"
                )
    else:
        names = list(next(iter(samples.values()))[0])
        header = f"{'layer (best ms: median over processes, min-max)':<34}" + "".join(
            f"{layer:>24}" for layer in layers
        )
        print(header)
        for name in names:
            row = f"{name:<34}"
            for layer in layers:
                values = sorted(r[name] for r in samples[layer])
                cell = f"{statistics.median(values):.3f} ({values[0]:.3f}-{values[-1]:.3f})"
                row += f"{cell:>24}"
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""convlab.conv_transpose2d vs torch.nn.functional.conv_transpose2d on decoder (upsampling) layers.

    python benchmarks/bench_transposed.py [--threads 2] [--repeats 10] [--algorithm auto|direct|gemm]

Needs torch in the same environment for the ratio column (``pip install torch==2.13.0``); without
it only convlab's times are printed. Times are the best of 3 x ``--repeats`` warm runs; the first
call (JIT compilation or loading the on-disk cache) is reported separately. Blocks of convlab calls
and blocks of torch calls alternate (see :func:`best_times`). Ratio = torch time / convlab time:
1.0 is as fast as torch, 0.5 twice as slow. Both libraries get the same number of threads (Numba's
and BLAS's pools for convlab, ``torch.set_num_threads`` for torch). On a shared machine, run it
when nothing else is busy: other processes' load distorts both columns, torch's more.
"""

import argparse
import math
import os
import time

from _timing import set_threads  # benchmarks/_timing.py (the script's folder is on sys.path)

LAYERS = [
    # name, N, C_in, H, W, C_out, k, stride, padding, output_padding
    ("128->64 28x28 k4 s2 p1", 4, 128, 28, 28, 64, 4, 2, 1, 0),
    ("256->128 14x14 k3 s2 p1 op1", 4, 256, 14, 14, 128, 3, 2, 1, 1),
    ("64->3 56x56 k4 s2 p1 (RGB out)", 4, 64, 56, 56, 3, 4, 2, 1, 0),
]


def best_times(fns, repeats, blocks=3):
    """Best wall time of each function: ``blocks`` rounds, each calling every function ``repeats``
    times back to back.

    Alternating whole blocks spreads background load over both libraries on a shared machine,
    while back-to-back calls inside a block keep each library's own threads warm (a call right
    after the *other* library's is slowed by that library's still-spinning worker threads).
    """
    best = [math.inf] * len(fns)
    for _ in range(blocks):
        for i, fn in enumerate(fns):
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=10, help="calls per block (3 blocks per library)"
    )
    parser.add_argument("--algorithm", default="auto", choices=["auto", "direct", "gemm"])
    args = parser.parse_args(argv)
    # BLAS reads its thread count when NumPy is first imported, so set it before that.
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))

    import numpy as np

    import convlab
    from convlab.transposed import choose_algorithm

    torch = set_threads(args.threads)
    if torch is not None:
        import torch.nn.functional as F

    rng = np.random.default_rng(0)
    print(f"threads: {args.threads}, repeats: {args.repeats}, float32, algorithm={args.algorithm}")
    print(
        f"{'layer':34s} {'algo':>6s} {'first call':>10s} {'convlab':>10s} {'torch':>10s} "
        f"{'ratio':>6s} {'GFLOP/s':>8s}"
    )
    ratios = []
    for name, n, c_in, h, w, c_out, k, s, p, op in LAYERS:
        x = rng.standard_normal((n, c_in, h, w), dtype=np.float32)
        wt = rng.standard_normal((c_in, c_out, k, k), dtype=np.float32)
        b = rng.standard_normal(c_out, dtype=np.float32)
        kwargs = dict(stride=s, padding=p, output_padding=op)
        algo = (
            args.algorithm
            if args.algorithm != "auto"
            else choose_algorithm(x.shape, wt.shape, 1, 4)
        )

        def run():
            return convlab.conv_transpose2d(x, wt, b, **kwargs, algorithm=args.algorithm)

        t0 = time.perf_counter()
        out = run()
        first = time.perf_counter() - t0
        flops = 2 * n * c_in * h * w * c_out * k * k  # every input element times every tap
        if torch is not None:
            xt, wtt, bt = torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(b)
            with torch.no_grad():
                ref = F.conv_transpose2d(xt, wtt, bt, **kwargs).numpy()
                t_cl, t_torch = best_times(
                    [run, lambda: F.conv_transpose2d(xt, wtt, bt, **kwargs)], args.repeats
                )
            np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-3)
            ratio = t_torch / t_cl
            ratios.append(ratio)
            print(
                f"{name:34s} {algo:>6s} {first * 1e3:8.1f}ms {t_cl * 1e3:8.2f}ms {t_torch * 1e3:8.2f}ms "
                f"{ratio:6.2f} {flops / t_cl / 1e9:8.1f}"
            )
        else:
            (t_cl,) = best_times([run], args.repeats)
            print(
                f"{name:34s} {algo:>6s} {first * 1e3:8.1f}ms {t_cl * 1e3:8.2f}ms {'-':>10s} {'-':>6s} "
                f"{flops / t_cl / 1e9:8.1f}"
            )
    if ratios:
        print(
            f"geometric-mean ratio (torch time / convlab time): {math.exp(np.mean(np.log(ratios))):.2f}"
        )


if __name__ == "__main__":
    main()

"""convlab.conv2d vs torch.nn.functional.conv2d on ResNet-style layers, measured in one run.

    python benchmarks/bench_conv.py [--threads 2] [--repeats 5]

Needs torch in the same environment for the ratio column (``pip install torch==2.13.0``); without
it, only convlab's times are printed. Times are the best of ``--repeats`` warm runs; the first
call (JIT compilation, or loading the on-disk cache) is reported separately. Ratio = torch time /
convlab time, so 1.0 means as fast as torch and 0.5 means twice as slow.
"""

import argparse
import math
import time

import numpy as np
from _timing import (
    best_time,
    set_threads,
)  # benchmarks/_timing.py (the script's folder is on sys.path)

import convlab

LAYERS = [
    # name, N, C_in, H, W, C_out, k, stride, padding, groups
    ("64->64 56x56 3x3", 1, 64, 56, 56, 64, 3, 1, 1, 1),
    ("128->128 28x28 3x3", 1, 128, 28, 28, 128, 3, 1, 1, 1),
    ("256->256 14x14 3x3", 1, 256, 14, 14, 256, 3, 1, 1, 1),
    ("stem 3->64 224x224 7x7 s2", 1, 3, 224, 224, 64, 7, 2, 3, 1),
    ("64->256 56x56 1x1", 1, 64, 56, 56, 256, 1, 1, 0, 1),
    ("256->128 28x28 1x1 s2", 1, 256, 28, 28, 128, 1, 2, 0, 1),
    ("depthwise 32ch 112x112 3x3", 1, 32, 112, 112, 32, 3, 1, 1, 32),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--algorithm", default="auto", choices=["auto", "direct", "im2col"])
    args = parser.parse_args(argv)

    torch = set_threads(args.threads)
    if torch is not None:
        import torch.nn.functional as F

    rng = np.random.default_rng(0)
    print(
        f"{'layer':30s} {'first call':>10s} {'convlab':>10s} {'torch':>10s} {'ratio':>7s} {'GFLOP/s':>8s}"
    )
    ratios = []
    for name, n, c_in, h, w, c_out, k, s, p, g in LAYERS:
        x = rng.standard_normal((n, c_in, h, w), dtype=np.float32)
        wt = rng.standard_normal((c_out, c_in // g, k, k), dtype=np.float32)
        t0 = time.perf_counter()
        convlab.conv2d(x, wt, stride=s, padding=p, groups=g, algorithm=args.algorithm)
        first = time.perf_counter() - t0
        t_cl = best_time(
            lambda: convlab.conv2d(x, wt, stride=s, padding=p, groups=g, algorithm=args.algorithm),
            args.repeats,
        )
        flops = 2 * convlab.count_macs(
            c_in, c_out, k, (h, w), stride=s, padding=p, groups=g, batch=n
        )
        if torch is not None:
            xt, wtt = torch.from_numpy(x), torch.from_numpy(wt)
            with torch.no_grad():
                F.conv2d(xt, wtt, stride=s, padding=p, groups=g)
                t_torch = best_time(
                    lambda: F.conv2d(xt, wtt, stride=s, padding=p, groups=g), args.repeats
                )
            ratio = t_torch / t_cl
            ratios.append(ratio)
            print(
                f"{name:30s} {first * 1e3:8.1f}ms {t_cl * 1e3:8.2f}ms {t_torch * 1e3:8.2f}ms "
                f"{ratio:7.2f} {flops / t_cl / 1e9:8.1f}"
            )
        else:
            print(
                f"{name:30s} {first * 1e3:8.1f}ms {t_cl * 1e3:8.2f}ms {'-':>10s} {'-':>7s} "
                f"{flops / t_cl / 1e9:8.1f}"
            )
    if ratios:
        print(
            f"geometric-mean ratio (torch time / convlab time): {math.exp(np.mean(np.log(ratios))):.2f}"
        )


if __name__ == "__main__":
    main()

"""Timings for the separable convolutions (chapter 5 and the default of depthwise_separable_conv2d).

Run from the repository root (torch is optional; when it imports, its timings are added):

    NUMBA_CACHE_DIR=/tmp/numba-bench .venv/bin/python benchmarks/bench_separable.py
    NUMBA_CACHE_DIR=/tmp/numba-bench /work/torchvenv/bin/python benchmarks/bench_separable.py  # + torch

Three tables, each the minimum over ``--repeat`` runs after one warm-up call (the minimum is the
least disturbed by other processes on a shared machine):

1. ``fused`` (one Numba pass, the intermediate channels never leave the cache) against
   ``two_pass`` (a depthwise conv2d then a 1x1 conv2d) on the 13 depthwise/pointwise pairs of
   MobileNet v1 at 224x224 and a few small layers: this decides ``algorithm="auto"``;
2. a standard 3x3 conv against the depthwise-separable layer with the same input and output
   (64 -> 128 channels, 56x56), as in chapter 5;
3. Gaussian blur of a 3-channel 256x256 image with a k x k kernel: depthwise conv2d (k^2 taps per
   pixel) against spatially_separable_conv2d (2k).
"""

import argparse

import numpy as np
from _timing import best_time  # benchmarks/_timing.py (the script's folder is on sys.path)

import convlab
from convlab.separable import choose_separable_algorithm

try:  # optional: only for comparison
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

# MobileNet v1 (Howard et al. 2017, Table 1): (C_in, C_out, input size, depthwise stride)
MOBILENET_PAIRS = [
    (32, 64, 112, 1),
    (64, 128, 112, 2),
    (128, 128, 56, 1),
    (128, 256, 56, 2),
    (256, 256, 28, 1),
    (256, 512, 28, 2),
    (512, 512, 14, 1),
    (512, 512, 14, 1),
    (512, 512, 14, 1),
    (512, 512, 14, 1),
    (512, 512, 14, 1),
    (512, 1024, 14, 2),
    (1024, 1024, 7, 1),
]
SMALL_LAYERS = [(3, 4, 32, 1), (8, 16, 32, 1), (16, 32, 64, 1)]


def fused_vs_two_pass(repeat, dtype=np.float32, batch=1):
    """Rows (C_in, C_out, size, stride, fused s, two_pass s, auto's choice)."""
    rng = np.random.default_rng(0)
    rows = []
    for c_in, c_out, size, stride in SMALL_LAYERS + MOBILENET_PAIRS:
        x = rng.standard_normal((batch, c_in, size, size)).astype(dtype)
        wd = rng.standard_normal((c_in, 1, 3, 3)).astype(dtype)
        wp = rng.standard_normal((c_out, c_in)).astype(dtype)
        times = [
            best_time(
                lambda a=a: convlab.depthwise_separable_conv2d(
                    x, wd, wp, stride=stride, padding=1, algorithm=a
                ),
                repeat,
            )
            for a in ("fused", "two_pass")
        ]
        rows.append((c_in, c_out, size, stride, *times, choose_separable_algorithm(c_in, c_out)))
    return rows


def standard_vs_separable(repeat, c_in=64, c_out=128, size=56, k=3, dtype=np.float32):
    """Seconds of a standard conv and of the separable layer with the same input/output shapes."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, c_in, size, size)).astype(dtype)
    w = rng.standard_normal((c_out, c_in, k, k)).astype(dtype)
    wd = rng.standard_normal((c_in, 1, k, k)).astype(dtype)
    wp = rng.standard_normal((c_out, c_in, 1, 1)).astype(dtype)
    result = {
        "convlab standard": best_time(lambda: convlab.conv2d(x, w, padding=k // 2), repeat),
        "convlab separable": best_time(
            lambda: convlab.depthwise_separable_conv2d(x, wd, wp, padding=k // 2), repeat
        ),
    }
    if torch is not None:
        tx, tw, twd, twp = (torch.from_numpy(a) for a in (x, w, wd, wp))
        with torch.no_grad():
            result["torch standard"] = best_time(lambda: F.conv2d(tx, tw, padding=k // 2), repeat)
            result["torch separable"] = best_time(
                lambda: F.conv2d(F.conv2d(tx, twd, padding=k // 2, groups=c_in), twp), repeat
            )
    macs = {
        "standard": convlab.count_macs(c_in, c_out, k, (size, size), padding=k // 2),
        "separable": convlab.count_macs_depthwise_separable(
            c_in, c_out, k, (size, size), padding=k // 2
        ),
    }
    return result, macs


def gaussian(k, sigma=None):
    sigma = k / 6 if sigma is None else sigma
    g = np.exp(-0.5 * ((np.arange(k) - (k - 1) / 2) / sigma) ** 2)
    return np.outer(g, g) / g.sum() ** 2


def blur_two_ways(
    repeat, kernel_sizes=(3, 5, 9, 15, 21, 31), size=256, channels=3, dtype=np.float32
):
    """Rows (k, depthwise conv2d s, separable s, MACs full, MACs separable)."""
    rng = np.random.default_rng(2)
    x = rng.random((1, channels, size, size)).astype(dtype)
    rows = []
    for k in kernel_sizes:
        kernel = gaussian(k).astype(dtype)
        weight = np.ascontiguousarray(np.broadcast_to(kernel, (channels, 1, k, k)))
        col, row = convlab.separate_kernel(kernel)
        full = best_time(lambda: convlab.conv2d(x, weight, padding="same", groups=channels), repeat)
        sep = best_time(
            lambda: convlab.spatially_separable_conv2d(x, col, row, padding="same"), repeat
        )
        rows.append(
            (
                k,
                full,
                sep,
                convlab.count_macs(
                    channels, channels, k, (size, size), padding="same", groups=channels
                ),
                convlab.count_macs_spatially_separable(channels, k, (size, size), padding="same"),
            )
        )
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    print("1. depthwise_separable_conv2d, float32, batch 1, 3x3, padding 1: fused vs two_pass")
    print(
        f"{'C_in':>5} {'C_out':>5} {'size':>4} {'s':>2} {'fused ms':>9} {'two ms':>9} {'two/fused':>9}  auto"
    )
    for c_in, c_out, size, stride, fused, two, auto in fused_vs_two_pass(args.repeat):
        print(
            f"{c_in:5d} {c_out:5d} {size:4d} {stride:2d} {fused * 1e3:9.2f} {two * 1e3:9.2f} "
            f"{two / fused:9.2f}  {auto}"
        )

    print("\n2. standard vs depthwise-separable, 64 -> 128 channels, 56x56, 3x3, float32")
    times, macs = standard_vs_separable(args.repeat)
    for name, seconds in times.items():
        print(f"{name:>18}: {seconds * 1e3:8.2f} ms")
    print(
        f"MACs: standard {macs['standard']:,}, separable {macs['separable']:,} "
        f"(ratio {macs['standard'] / macs['separable']:.2f})"
    )
    print(
        f"convlab standard / separable time: "
        f"{times['convlab standard'] / times['convlab separable']:.2f}"
    )
    if "torch standard" in times:
        print(
            f"torch standard / separable time: {times['torch standard'] / times['torch separable']:.2f}"
        )

    print("\n3. Gaussian blur, 3 x 256 x 256, float32: depthwise conv2d vs column + row passes")
    print(f"{'k':>3} {'conv2d ms':>10} {'separable ms':>13} {'speed-up':>9} {'MAC ratio':>10}")
    for k, full, sep, macs_full, macs_sep in blur_two_ways(args.repeat):
        print(
            f"{k:3d} {full * 1e3:10.2f} {sep * 1e3:13.2f} {full / sep:9.2f} {macs_full / macs_sep:10.2f}"
        )


if __name__ == "__main__":
    main()

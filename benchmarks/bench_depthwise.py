"""Depthwise convolution: convlab's dedicated kernel against the paths it replaces, and torch.

Run from the repository root (torch is optional; without it its column is left out):

    NUMBA_CACHE_DIR=/tmp/numba-bench .venv/bin/python benchmarks/bench_depthwise.py
    NUMBA_CACHE_DIR=/tmp/numba-bench /work/torchvenv/bin/python benchmarks/bench_depthwise.py  # + torch

(the torch venv needs convlab importable: run it with ``PYTHONPATH=.``).

For each layer, all from one run of this script, it prints the time of

* ``dedicated``: ``convlab.conv2d`` as users call it, which sends ``groups == C_in`` to the
  dedicated depthwise kernel (``convlab/_kernels_depthwise.py``);
* ``generic``: the same validated call on the generic grouped kernel ``_conv2d_direct``
  (``convlab._kernels_depthwise.conv2d_generic_grouped``);
* ``im2col``: ``convlab.conv2d(..., algorithm="im2col")``, one small matrix product per group;
* ``per-group``: one ``convlab.conv2d`` call per group, concatenated
  (``convlab._kernels_depthwise.conv2d_per_group``), the way the seed article 003 says
  frameworks used to run grouped convolution;
* ``torch``: ``torch.nn.functional.conv2d`` with ``groups=C_in`` (when torch is installed), with
  as many threads as Numba uses (``--threads``);

and the ratios of each to ``dedicated`` (above 1: the dedicated kernel is faster). Time is the
minimum over ``--repeat`` calls after one warm-up call: on a shared machine the minimum is the
measurement least disturbed by other processes. Inputs are float32 (``--dtype`` to change) from a
seeded generator; the weights are ``(K * C, 1, k, k)``.
"""

import argparse
import sys

import numba
import numpy as np
from _timing import best_time  # benchmarks/_timing.py (the script's folder is on sys.path)

import convlab
from convlab._kernels_depthwise import conv2d_generic_grouped, conv2d_per_group

try:  # optional: only for comparison
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None

#: (label, N, C_in, H (= W), multiplier K, kernel, stride, padding, dilation)
LAYERS = [
    ("32ch 112x112 3x3", 1, 32, 112, 1, 3, 1, 1, 1),  # MobileNet v1, first depthwise layer
    ("144ch 56x56 3x3 s2", 1, 144, 56, 1, 3, 2, 1, 1),  # MobileNet v2, a downsampling block
    ("384ch 14x14 3x3", 1, 384, 14, 1, 3, 1, 1, 1),  # MobileNet v2, a late block
    ("batch 8 96ch 56x56 3x3", 8, 96, 56, 1, 3, 1, 1, 1),
    ("K=2 64ch 56x56 3x3", 1, 64, 56, 2, 3, 1, 1, 1),  # depth multiplier 2 (seed 002)
    ("128ch 28x28 5x5 d2", 1, 128, 28, 1, 5, 1, 4, 2),  # the general (non-3x3) path, dilated
]

METHODS = ("dedicated", "generic", "im2col", "per-group", "torch")


def make_inputs(layer, dtype, seed=0):
    _, n, c, h, k_mult, k, *_ = layer
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, h)).astype(dtype)
    w = (rng.standard_normal((k_mult * c, 1, k, k)) / k).astype(dtype)
    b = rng.standard_normal(k_mult * c).astype(dtype)
    return x, w, b


def measure(layer, dtype=np.float32, repeat=20, methods=METHODS):
    """Times (seconds) of the requested methods on one layer; also checks they agree."""
    label, n, c, h, k_mult, k, stride, padding, dilation = layer
    x, w, b = make_inputs(layer, dtype)
    args = dict(stride=stride, padding=padding, dilation=dilation, groups=c)
    calls = {
        "dedicated": lambda: convlab.conv2d(x, w, b, **args),
        "generic": lambda: conv2d_generic_grouped(x, w, b, **args),
        "im2col": lambda: convlab.conv2d(x, w, b, **args, algorithm="im2col"),
        "per-group": lambda: conv2d_per_group(x, w, b, **args),
    }
    if torch is not None:
        xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))

        def torch_call():
            with torch.no_grad():
                return F.conv2d(xt, wt, bt, **args)

        calls["torch"] = torch_call
    reference = calls["dedicated"]()
    times = {}
    for name in methods:
        if name not in calls:
            continue
        out = calls[name]()
        out = out.numpy() if torch is not None and isinstance(out, torch.Tensor) else out
        if name == "generic":  # same summation order: must be identical, not merely close
            assert np.array_equal(out, reference), label
        else:
            tol = 1e-4 if dtype == np.float32 else 1e-10
            assert np.allclose(out, reference, rtol=tol, atol=tol), (label, name)
        times[name] = best_time(calls[name], repeat)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for Numba and torch (default: Numba's default, all cores); "
        "1 is the steadiest measurement on a machine shared with other jobs",
    )
    parser.add_argument("--quick", action="store_true", help="first two layers, 5 repeats")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype).type
    layers = LAYERS[:2] if args.quick else LAYERS
    repeat = 5 if args.quick else args.repeat
    if args.threads is not None:
        numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    print(
        f"convlab {convlab.__version__}, numba {numba.__version__} ({threads} threads), "
        f"torch {torch.__version__ if torch is not None else 'not installed'}; {args.dtype}, "
        f"min of {repeat} calls"
    )
    methods = [m for m in METHODS if m != "torch" or torch is not None]
    header = f"{'layer':24s}" + "".join(f"{m + ' ms':>14s}" for m in methods)
    header += "".join(f"{m + '/ded':>14s}" for m in methods[1:])
    print(header)
    for layer in layers:
        times = measure(layer, dtype, repeat, methods)
        row = f"{layer[0]:24s}" + "".join(f"{times[m] * 1e3:14.3f}" for m in methods)
        row += "".join(f"{times[m] / times['dedicated']:14.2f}" for m in methods[1:])
        print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""convlab.deform_conv2d against torchvision.ops.deform_conv2d: time and peak memory, one run.

Run from the repository root in a venv that has torchvision and convlab (``pip install -e .``):

    NUMBA_CACHE_DIR=/tmp/numba-bench /work/tvvenv/bin/python benchmarks/bench_deformable.py

Without torchvision only convlab's numbers are printed. The layers are DCN v2 layers as used in
detection backbones: 3x3 kernels, padding 1, stride 1, one offset group, random offsets (standard
deviation 1 pixel) and masks, float32, two threads for both libraries (the machine's two cores;
``torch.set_num_threads(2)``).

Every measurement runs in a fresh subprocess that imports only the library it measures, so that
each library runs with its own defaults. That matters: torch ships its own ``libgomp.so.1``, and
whichever of torch and Numba loads the OpenMP runtime first decides its settings for both
(convlab's subprocesses get ``OMP_WAIT_POLICY=PASSIVE`` unless it is already set, as
:mod:`convlab.config` recommends for few-core machines; torchvision's run with torch's defaults).

Time: the minimum over ``--repeat`` calls after one warm-up call (on a shared machine the minimum
is the measurement least disturbed by other processes), for convlab's forward pass, torchvision's,
convlab's plain ``conv2d`` of the same shape (what the offsets cost), and forward + backward
(``deform_conv2d`` + ``deform_conv2d_grad`` against ``torch.autograd``).

Peak memory: the subprocess (with glibc's ``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB, so that every
large buffer gets fresh pages) builds the inputs, calls the function once to warm it up (so that
JIT compilation or loading and library start-up are not counted; its buffers are freed again),
returns freed heap memory to the kernel
(``malloc_trim``), resets the kernel's peak-RSS counter
(``echo 5 > /proc/self/clear_refs``), records its resident set, calls the function once on the
real layer and reads the peak (``VmHWM``). The difference is the extra memory the call touched,
measured the same way for both libraries. For reference the table also prints torchvision's column
buffer, ``C_in*kH*kW * n_parallel_imgs * H_out*W_out * 4`` bytes (``n_parallel_imgs`` is 1 for
these batch sizes), and convlab's tracemalloc peak (every NumPy buffer it allocates, output
included).
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tracemalloc

import numpy as np
from _timing import best_time  # benchmarks/_timing.py (the script's folder is on sys.path)

#: (N, C_in, H, W, C_out) of the target layers
LAYERS = [(1, 64, 56, 56, 64), (2, 128, 28, 28, 128), (1, 256, 14, 14, 256)]
THREADS = 2
HAVE_TORCHVISION = importlib.util.find_spec("torchvision") is not None


def make_inputs(layer, seed=0):
    n, c_in, h, w, c_out = layer
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return dict(
        x=rng.standard_normal((n, c_in, h, w)).astype(f32),
        offset=rng.standard_normal((n, 18, h, w)).astype(f32),
        mask=rng.random((n, 9, h, w)).astype(f32),
        w=(rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(9 * c_in)).astype(f32),
        b=rng.standard_normal(c_out).astype(f32),
        grad_out=rng.standard_normal((n, c_out, h, w)).astype(f32),
    )


# --------------------------------------------------------------------------- the measured calls


def convlab_calls(a):
    import convlab
    from convlab.deformable import deform_conv2d_grad

    def forward():
        return convlab.deform_conv2d(a["x"], a["offset"], a["w"], a["b"], padding=1, mask=a["mask"])

    def forward_backward():
        forward()
        return deform_conv2d_grad(
            a["grad_out"], a["x"], a["offset"], a["w"], a["b"], padding=1, mask=a["mask"]
        )

    return {
        "convlab": forward,
        "conv2d": lambda: convlab.conv2d(a["x"], a["w"], a["b"], padding=1),
        "convlab fwd+bwd": forward_backward,
    }


def torchvision_calls(a):
    import torch
    from torchvision.ops import deform_conv2d

    torch.set_num_threads(THREADS)
    t = {k: torch.tensor(v) for k, v in a.items()}
    tg = {k: torch.tensor(v, requires_grad=k != "grad_out") for k, v in a.items()}

    def forward():
        with torch.no_grad():
            return deform_conv2d(t["x"], t["offset"], t["w"], t["b"], padding=1, mask=t["mask"])

    def forward_backward():  # autograd needs the forward graph
        for k in ("x", "offset", "w", "b", "mask"):
            tg[k].grad = None
        out = deform_conv2d(tg["x"], tg["offset"], tg["w"], tg["b"], padding=1, mask=tg["mask"])
        out.backward(tg["grad_out"])

    return {"torchvision": forward, "torchvision fwd+bwd": forward_backward}


CALLS = {"convlab": convlab_calls, "torchvision": torchvision_calls}


def time_child(impl, repeat):
    """Run in a subprocess: print {layer index: {name: seconds}} as JSON."""
    result = {}
    for i, layer in enumerate(LAYERS):
        calls = CALLS[impl](make_inputs(layer))
        result[i] = {name: best_time(func, repeat) for name, func in calls.items()}
    print(json.dumps(result))


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(impl, index):
    """Run in a subprocess: print the peak extra RSS (bytes) of one forward call as JSON."""
    import ctypes

    run = CALLS[impl](make_inputs(LAYERS[index]))[impl]
    run()  # JIT compilation or loading, thread pools, library initialisation; buffers are freed
    # Hand freed heap memory (make_inputs' float64 temporaries) back to the kernel, so that the
    # call's buffers cannot reuse pages that are already resident and hide from the RSS count.
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (peak RSS) to the current RSS
    before = _status_kib("VmRSS")
    out = run()
    peak = _status_kib("VmHWM")
    del out
    print(json.dumps({"extra_bytes": (peak - before) * 1024}))


def _child(*args):
    env = dict(os.environ)
    if args[1] != "torchvision":
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see convlab.config; torch keeps its default
    if args[0] == "--memory-child":
        # a fixed mmap threshold: glibc then gives every large buffer fresh pages (by default the
        # threshold grows after frees, and big buffers come from a heap that may be resident);
        # only for the memory measurement, as fresh pages cost page faults on every call
        env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    proc = subprocess.run(
        [sys.executable, __file__, *map(str, args)], capture_output=True, text=True, env=env
    )
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, args))} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def convlab_tracemalloc_peak(layer):
    forward = convlab_calls(make_inputs(layer))["convlab"]
    forward()
    tracemalloc.start()
    forward()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def torchvision_column_bytes(layer):
    n, c_in, h, w, _ = layer
    n_parallel = 1  # torchvision: the greatest divisor of N that is <= min(N // 2, 32), else 1
    for k in range(min(n // 2, 32), 1, -1):
        if n % k == 0:
            n_parallel = k
            break
    return c_in * 9 * n_parallel * h * w * 4


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--memory-samples", type=int, default=2)
    parser.add_argument("--time-child", metavar="IMPL", help=argparse.SUPPRESS)
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("IMPL", "INDEX"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.time_child:
        time_child(args.time_child, args.repeat)
        return 0
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return 0
    os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))

    impls = ["convlab"] + (["torchvision"] if HAVE_TORCHVISION else [])
    times = {impl: _child("--time-child", impl, "--repeat", args.repeat) for impl in impls}
    print(
        f"time (ms, min of {args.repeat}, {THREADS} threads); speed-up = torchvision / convlab"
        + ("" if HAVE_TORCHVISION else "; torchvision is not installed")
    )
    print(
        f"{'layer (N, C_in, H, W, C_out)':30} {'convlab':>8} {'conv2d':>8} {'tv':>8} {'speed-up':>8}"
        f" {'cl f+b':>8} {'tv f+b':>8} {'speed-up':>8}"
    )
    ok = True
    nan = float("nan")
    for i, layer in enumerate(LAYERS):
        r = dict(
            times["convlab"][str(i)], **(times["torchvision"][str(i)] if HAVE_TORCHVISION else {})
        )
        tv, tvb = r.get("torchvision", nan), r.get("torchvision fwd+bwd", nan)
        ratio, ratio_b = tv / r["convlab"], tvb / r["convlab fwd+bwd"]
        ok &= ratio >= 5
        print(
            f"{str(layer):30} {1e3 * r['convlab']:8.2f} {1e3 * r['conv2d']:8.2f} {1e3 * tv:8.2f} "
            f"{ratio:7.1f}x {1e3 * r['convlab fwd+bwd']:8.2f} {1e3 * tvb:8.2f} {ratio_b:7.1f}x"
        )

    print(
        "\npeak extra memory of one forward call (MiB; RSS high-water mark in a fresh subprocess)"
    )
    print(
        f"{'layer (N, C_in, H, W, C_out)':30} {'convlab':>8} {'tv':>8} {'cl trace':>8} {'tv cols':>8}"
    )
    mib = 2.0**20
    for i, layer in enumerate(LAYERS):
        extra = {
            impl: min(
                _child("--memory-child", impl, i)["extra_bytes"] for _ in range(args.memory_samples)
            )
            for impl in impls
        }
        tv = extra.get("torchvision", nan)
        ok &= extra["convlab"] <= tv
        print(
            f"{str(layer):30} {extra['convlab'] / mib:8.2f} {tv / mib:8.2f} "
            f"{convlab_tracemalloc_peak(layer) / mib:8.2f} {torchvision_column_bytes(layer) / mib:8.2f}"
        )
    if HAVE_TORCHVISION:
        print("\ntarget (>= 5x faster, peak memory <= torchvision's):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

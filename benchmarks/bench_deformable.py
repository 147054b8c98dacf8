"""convlab.deform_conv2d against torchvision.ops.deform_conv2d: time and peak memory, one run.

Run from the repository root in a venv that has torchvision and convlab (``pip install -e .``):

    NUMBA_CACHE_DIR=/tmp/numba-bench /work/tvvenv/bin/python benchmarks/bench_deformable.py

Without torchvision only convlab's numbers are printed. The layers are DCN v2 layers as used in
detection backbones: 3x3 kernels, padding 1, stride 1, one offset group, random offsets (standard
deviation 1 pixel) and masks, float32, ``torch.set_num_threads(2)`` (the machine's two cores).

Time: the minimum over ``--repeat`` calls after one warm-up call (on a shared machine the minimum
is the measurement least disturbed by other processes), for convlab's forward pass, torchvision's,
convlab's plain ``conv2d`` of the same shape (what the offsets cost), and the backward passes
(``deform_conv2d_grad`` against ``torch.autograd``).

Peak memory: each measurement runs in a fresh subprocess that builds the inputs, warms the
function up on a tiny layer (so that JIT compilation and library start-up are not counted),
resets the kernel's peak-RSS counter (``echo 5 > /proc/self/clear_refs``), records its resident
set, calls the function once on the real layer and reads the peak (``VmHWM``). The difference is
the extra memory the call touched, measured the same way for both libraries. For reference the
table also prints torchvision's column buffer, ``C_in*kH*kW * n_parallel_imgs * H_out*W_out * 4``
bytes (``n_parallel_imgs`` is 1 for these batch sizes), and convlab's tracemalloc peak (every
NumPy buffer it allocates, output included).
"""

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np

try:  # optional: only for comparison. Imported before convlab, so that torch's OpenMP runtime starts
    # with its own defaults (convlab sets OMP_WAIT_POLICY=PASSIVE for Numba's, see convlab.deformable)
    import torch
    from torchvision.ops import deform_conv2d as tv_deform_conv2d
except ImportError:
    torch = None

import convlab  # noqa: E402
from convlab.deformable import deform_conv2d_grad  # noqa: E402

#: (N, C_in, H, W, C_out) of the target layers
LAYERS = [(1, 64, 56, 56, 64), (2, 128, 28, 28, 128), (1, 256, 14, 14, 256)]


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


def best_times(funcs, repeat):
    """Minimum wall time of each of ``funcs`` over ``repeat`` calls, after one warm-up call each.

    Each function runs all its calls in one block: idle OpenMP threads of one library keep
    spinning for a while after its call, and alternating calls would charge that to the other.
    """
    best = {}
    for name, func in funcs.items():
        func()
        best[name] = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def convlab_forward(a):
    return lambda: convlab.deform_conv2d(a["x"], a["offset"], a["w"], a["b"], padding=1, mask=a["mask"])


def convlab_backward(a):
    return lambda: deform_conv2d_grad(a["grad_out"], a["x"], a["offset"], a["w"], a["b"], padding=1,
                                      mask=a["mask"])


def torch_tensors(a, requires_grad=False):
    return {k: torch.tensor(v, requires_grad=requires_grad and k != "grad_out") for k, v in a.items()}


def torchvision_forward(a):
    t = torch_tensors(a)

    def run():
        with torch.no_grad():
            return tv_deform_conv2d(t["x"], t["offset"], t["w"], t["b"], padding=1, mask=t["mask"])
    return run


def torchvision_backward(a):
    t = torch_tensors(a, requires_grad=True)

    def run():  # forward + backward: autograd needs the forward graph
        for k in ("x", "offset", "w", "b", "mask"):
            t[k].grad = None
        out = tv_deform_conv2d(t["x"], t["offset"], t["w"], t["b"], padding=1, mask=t["mask"])
        out.backward(t["grad_out"])
    return run


def timings(repeat):
    rows = []
    for layer in LAYERS:
        a = make_inputs(layer)
        forward, backward = convlab_forward(a), convlab_backward(a)
        funcs = {
            "convlab": forward,
            "conv2d": lambda: convlab.conv2d(a["x"], a["w"], a["b"], padding=1),
            "convlab fwd+bwd": lambda: (forward(), backward()),
        }
        if torch is not None:
            funcs["torchvision"] = torchvision_forward(a)
            funcs["torchvision fwd+bwd"] = torchvision_backward(a)
        row = best_times(funcs, repeat)
        row["layer"] = layer
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- memory

def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(impl, index):
    """Run in a subprocess: print the peak extra RSS (bytes) of one call as JSON."""
    if impl == "torchvision":
        torch.set_num_threads(2)
    layer = LAYERS[index]
    tiny = make_inputs((1, 4, 6, 6, 4))
    func = {"convlab": convlab_forward, "torchvision": torchvision_forward}[impl]
    func(tiny)()  # JIT compilation, thread pools, library initialisation
    run = func(make_inputs(layer))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM (peak RSS) to the current RSS
    before = _status_kib("VmRSS")
    out = run()
    peak = _status_kib("VmHWM")
    del out
    print(json.dumps({"extra_bytes": (peak - before) * 1024}))


def peak_extra_bytes(impl, index):
    proc = subprocess.run([sys.executable, __file__, "--memory-child", impl, str(index)],
                          capture_output=True, text=True, check=True, env=os.environ.copy())
    return json.loads(proc.stdout.strip().splitlines()[-1])["extra_bytes"]


def convlab_tracemalloc_peak(layer):
    a = make_inputs(layer)
    convlab_forward(a)()
    tracemalloc.start()
    convlab_forward(a)()
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


def memory_rows(samples):
    rows = []
    for i, layer in enumerate(LAYERS):
        row = {"layer": layer, "convlab": min(peak_extra_bytes("convlab", i) for _ in range(samples)),
               "convlab tracemalloc": convlab_tracemalloc_peak(layer),
               "tv columns": torchvision_column_bytes(layer)}
        if torch is not None:
            row["torchvision"] = min(peak_extra_bytes("torchvision", i) for _ in range(samples))
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--memory-samples", type=int, default=2)
    parser.add_argument("--memory-child", nargs=2, metavar=("IMPL", "INDEX"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if torch is not None:
        torch.set_num_threads(2)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return 0

    print(f"convlab {convlab.__version__}" + (f", torch {torch.__version__}" if torch else ", no torchvision"))
    print(f"\ntime (ms, min of {args.repeat}); speed-up = torchvision / convlab")
    head = f"{'layer (N, C_in, H, W, C_out)':30} {'convlab':>8} {'conv2d':>8} {'tv':>8} {'speed-up':>8}" \
           f" {'cl f+b':>8} {'tv f+b':>8} {'speed-up':>8}"
    print(head)
    ok = True
    for r in timings(args.repeat):
        tv = r.get("torchvision", float("nan"))
        tvb = r.get("torchvision fwd+bwd", float("nan"))
        ratio, ratio_b = tv / r["convlab"], tvb / r["convlab fwd+bwd"]
        ok &= not (ratio < 5)
        print(f"{str(r['layer']):30} {1e3 * r['convlab']:8.2f} {1e3 * r['conv2d']:8.2f} {1e3 * tv:8.2f} "
              f"{ratio:7.1f}x {1e3 * r['convlab fwd+bwd']:8.2f} {1e3 * tvb:8.2f} {ratio_b:7.1f}x")

    print("\npeak extra memory of one forward call (MiB; RSS high-water mark in a fresh subprocess)")
    print(f"{'layer (N, C_in, H, W, C_out)':30} {'convlab':>8} {'tv':>8} {'cl trace':>8} {'tv cols':>8}")
    mib = 2.0 ** 20
    for r in memory_rows(args.memory_samples):
        tv = r.get("torchvision", float("nan"))
        ok &= not (r["convlab"] > tv)
        print(f"{str(r['layer']):30} {r['convlab'] / mib:8.2f} {tv / mib:8.2f} "
              f"{r['convlab tracemalloc'] / mib:8.2f} {r['tv columns'] / mib:8.2f}")
    if torch is not None:
        print("\ntarget (>= 5x faster, peak memory <= torchvision's):", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark convlab's convolution algorithms against each other and against PyTorch.

Run ``python -m convlab.bench`` (or the ``convlab-bench`` console script)::

    python -m convlab.bench                          # dense + depthwise layers, 2 threads and 1
    python -m convlab.bench --layers tiny --repeats 2 --threads 1 --out-dir /tmp/bench
    python -m convlab.bench --layers resnet_64x56,stem_7x7_s2 --algorithms auto,im2col

For every thread count the measurements run in a fresh subprocess, because the BLAS library
NumPy links (OpenBLAS) reads its thread count from the environment once, when it is loaded; the
subprocess gets ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and
``NUMBA_NUM_THREADS`` set to that count and calls ``torch.set_num_threads`` when PyTorch is
installed. No thread-pool library is needed.

In each subprocess:

* the machine's peak is measured with a BLAS probe (a float32 2048 x 2048 matrix product, best of
  several) and its memory bandwidth with a parallel copy of 64 MiB, for the "% of peak" column and
  the roofline;
* every algorithm is called once on each layer and that first call is timed on its own: it pays
  for the JIT compilation of the kernels it uses (or for loading them from Numba's on-disk cache;
  ``--cold-cache`` points Numba at an empty cache so that it really compiles);
* then ``--repeats`` rounds time every algorithm and PyTorch in a rotating order (interleaved, so
  that a burst of load from other processes hits all of them alike), ``--block`` calls back to
  back each time (the first absorbs the switch from the previous library's thread pool, see
  ``BLOCK``), and the best time is kept (the median is stored too).

The results are printed as a table, written to ``bench.json`` and drawn to ``bench.png`` (by
:func:`convlab.viz.benchmark_figure`) in ``--out-dir``. Ratios are ``torch_time / convlab_time``:
above 1 convlab is faster. PyTorch is optional; without it the ratio column is empty.
"""

import argparse
import datetime
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

from . import config
from .config import NJIT_PARALLEL_OPTIONS, parallel_launch, threading_layer
from .shapes import conv_output_size, count_macs

__all__ = [
    "Layer",
    "LAYERS",
    "LAYER_SETS",
    "ALGORITHMS",
    "run_benchmark",
    "benchmark_in_process",
    "measure_peak",
    "measure_bandwidth",
    "machine_info",
    "summarize",
    "format_table",
    "main",
]

#: the convlab algorithms the benchmark can time (``conv2d(..., algorithm=...)``)
ALGORITHMS = ("auto", "direct", "im2col", "implicit", "winograd", "fft")
#: calls of the same function timed back to back in each round (``--block``). Three thread pools
#: share the process: Numba's and PyTorch's OpenMP workers busy-wait for a while after each
#: parallel region, OpenBLAS's after each GEMM (up to ~0.1 s, yielding). The first call after
#: another library's call competes with that library's spinning workers (on two cores this made
#: PyTorch up to 20x slower right after a Numba kernel); the following calls of the block run in
#: the steady state of a network that calls the same library layer after layer, and the best time
#: is kept. Three calls were not enough on two cores with PyTorch 2.14: right after PyTorch's
#: block, convlab's calls ran up to twice as slow for several milliseconds (a strided 3x3 layer
#: 1.44 ms in blocks of 3, 0.71 ms in blocks of 10, its time when called alone; auto on the
#: 128-channel 28x28 layer 1.68 ms against Winograd's 1.1 ms in the same run, though auto runs
#: Winograd there), while PyTorch's own times did not move.
BLOCK = 10
#: the breadth set's pause before every block: each library starts its block with the other's
#: thread pools gone quiet (OpenBLAS's spin for up to ~0.1 s after a product)
BREADTH_SETTLE_SECONDS = 0.05
#: pause before each block of the dense and depthwise suites (seconds). It was zero on a first
#: virtual machine, where an idle second core was halted and waking it for the next parallel
#: region took 4-16 ms after a 0.1 s pause; on an AVX-512 machine without that halt, the suite
#: without a pause billed PyTorch's spinning threads to convlab's next block (2 threads,
#: geometric mean of auto: dense 0.97 without, 1.08 with 0.05 s; depthwise 1.10 and 1.35, where
#: a one-library run times the depthwise layers 1.4x faster than the pause-less suite did).
SETTLE_SECONDS = 0.05


class Layer:
    """One convolution layer to time: float32 input (N, C_in, H, W), weight and bias."""

    __slots__ = (
        "name",
        "batch",
        "c_in",
        "c_out",
        "size",
        "kernel",
        "stride",
        "padding",
        "groups",
        "kind",
    )

    def __init__(
        self, name, batch, c_in, c_out, size, kernel, stride=1, padding=0, groups=1, kind="dense"
    ):
        self.name, self.batch, self.c_in, self.c_out = name, batch, c_in, c_out
        self.size, self.kernel, self.stride, self.padding = size, kernel, stride, padding
        self.groups, self.kind = groups, kind

    def args(self):
        return dict(stride=self.stride, padding=self.padding, groups=self.groups)

    @property
    def out_size(self):
        return conv_output_size((self.size, self.size), self.kernel, self.stride, self.padding)

    @property
    def macs(self):
        return count_macs(
            self.c_in,
            self.c_out,
            self.kernel,
            (self.size, self.size),
            self.stride,
            self.padding,
            groups=self.groups,
            batch=self.batch,
        )

    @property
    def flops(self):
        """Floating-point operations: 2 per multiply-accumulate (bias additions not counted)."""
        return 2 * self.macs

    @property
    def min_bytes(self):
        """Bytes a perfect implementation must move: read input and weight, write output."""
        oh, ow = self.out_size
        n_in = self.batch * self.c_in * self.size * self.size
        n_w = self.c_out * (self.c_in // self.groups) * self.kernel * self.kernel
        n_out = self.batch * self.c_out * oh * ow
        return 4 * (n_in + n_w + n_out)

    @property
    def intensity(self):
        """Arithmetic intensity (FLOP per byte of compulsory traffic), the roofline's x axis."""
        return self.flops / self.min_bytes

    def describe(self):
        g = f" g{self.groups}" if self.groups > 1 else ""
        b = f"{self.batch}x" if self.batch > 1 else ""
        return (
            f"{b}{self.c_in}->{self.c_out} {self.size}x{self.size} k{self.kernel} "
            f"s{self.stride} p{self.padding}{g}"
        )

    def as_dict(self):
        d = {k: getattr(self, k) for k in self.__slots__}
        d.update(
            flops=self.flops,
            min_bytes=self.min_bytes,
            out_size=list(self.out_size),
            description=self.describe(),
        )
        return d

    def __repr__(self):
        return f"Layer({self.name!r}: {self.describe()})"


_LAYER_LIST = [
    # ResNet-style dense layers (He et al. 2016): the 3x3 convs of stages 1-3, a batch of 8, the
    # 7x7 stride-2 stem, the 1x1 convs of a bottleneck (the stride-2 one on a 28x28 input) and a
    # small 16x16 map where fixed per-call overheads dominate.
    Layer("resnet_64x56", 1, 64, 64, 56, 3, 1, 1),
    Layer("resnet_128x28", 1, 128, 128, 28, 3, 1, 1),
    Layer("resnet_256x14", 1, 256, 256, 14, 3, 1, 1),
    Layer("resnet_64x56_b8", 8, 64, 64, 56, 3, 1, 1),
    Layer("stem_7x7_s2", 1, 3, 64, 224, 7, 2, 3),
    Layer("pointwise_64to256", 1, 64, 256, 56, 1),
    Layer("pointwise_256to128_s2", 1, 256, 128, 28, 1, 2, 0),
    Layer("resnet_64x16", 1, 64, 64, 16, 3, 1, 1),
    # MobileNet-style depthwise layers (3x3, padding 1)
    Layer("dw_32x112", 1, 32, 32, 112, 3, 1, 1, groups=32, kind="depthwise"),
    Layer("dw_144x56_s2", 1, 144, 144, 56, 3, 2, 1, groups=144, kind="depthwise"),
    Layer("dw_384x14", 1, 384, 384, 14, 3, 1, 1, groups=384, kind="depthwise"),
    Layer("dw_96x56_b8", 8, 96, 96, 56, 3, 1, 1, groups=96, kind="depthwise"),
    Layer("dw_64x56_x2", 1, 64, 128, 56, 3, 1, 1, groups=64, kind="depthwise"),
    # tiny layers for smoke tests (seconds, not minutes)
    Layer("tiny_3x3", 1, 8, 8, 12, 3, 1, 1, kind="tiny"),
    Layer("tiny_dw", 1, 8, 8, 12, 3, 1, 1, groups=8, kind="tiny"),
]
#: every layer the benchmark knows, by name
LAYERS = {layer.name: layer for layer in _LAYER_LIST}
#: named sets of layers for ``--layers``
LAYER_SETS = {
    kind: [layer.name for layer in _LAYER_LIST if layer.kind == kind]
    for kind in ("dense", "depthwise", "tiny")
}
LAYER_SETS["all"] = LAYER_SETS["dense"] + LAYER_SETS["depthwise"]


def _torch_conv2d(torch, x, w, b, args):
    with torch.no_grad():
        return torch.nn.functional.conv2d(x, w, b, **args)


def applicable(layer, algorithm):
    """Whether ``algorithm`` can run ``layer`` (Winograd F(2x2, 3x3) needs 3x3, stride 1)."""
    if algorithm == "winograd":
        return layer.kernel == 3 and layer.stride == 1
    return True


# ------------------------------------------------------------------------------------ probes


def _best_time(fn, repeats):
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_peak(n=2048, repeats=20):
    """Machine peak in GFLOP/s, measured: the best of ``repeats`` float32 ``n x n`` BLAS products.

    BLAS sgemm is the fastest float32 code on the machine, so it stands for "peak" in the "% of
    peak" column (with the current BLAS thread count). Many rounds, the best kept: on a shared
    virtual machine a few rounds read low (107 GFLOP/s on 2 threads against 124 on 1 once), and
    a low probe makes "% of peak" pass 100. :func:`run_benchmark` probes before and after the
    layers and keeps the higher.
    """
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    return 2 * n**3 / _best_time(lambda: np.matmul(a, b, out=c), repeats) / 1e9


@njit(**NJIT_PARALLEL_OPTIONS)
def _stream_copy(src, dst):
    """dst[:] = src[:] over all threads (a STREAM "copy")."""
    for i in prange(src.shape[0]):
        dst[i] = src[i]


def measure_bandwidth(nbytes=64 * 2**20, repeats=5):
    """Memory bandwidth in GB/s, measured: a parallel copy of ``nbytes`` (read + write counted)."""
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)

    def copy():
        with parallel_launch():
            _stream_copy(src, dst)

    copy()
    return 2 * nbytes / _best_time(copy, repeats) / 1e9


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------------------- measuring


def _load_average():
    """The machine's 1-minute load average (other processes compete for the cores), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _torch_module():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _progress(done, total, text, stream=None, width=24):
    stream = sys.stderr if stream is None else stream
    filled = int(width * done / total) if total else width
    print(
        f"[{'#' * filled}{'.' * (width - filled)}] {done:>3}/{total} {text}",
        file=stream,
        flush=True,
    )


def run_benchmark(
    layer_names,
    algorithms,
    threads,
    repeats,
    use_torch=True,
    progress=True,
    quick=False,
    settle=SETTLE_SECONDS,
    block=BLOCK,
    passes=1,
):
    """Time ``algorithms`` (and PyTorch) on the named layers in this process; return a dict.

    The caller has set the thread count of BLAS (environment, before NumPy was imported); this
    function sets Numba's and PyTorch's to ``threads``. ``quick`` shrinks the peak and bandwidth
    probes (a 512 x 512 product, an 8 MiB copy): for smoke tests, not for numbers to keep.
    ``settle`` is the pause (seconds, not timed) before every block of ``block`` back-to-back
    calls; see ``SETTLE_SECONDS`` and ``BLOCK``. With ``passes`` above 1 the whole list of
    layers is timed that many times over and each function keeps its best call of all passes
    (as ``--layers breadth --passes`` does: on a virtual machine whose speed comes and goes in
    spells, a layer's rounds then lie minutes apart, not within a second); each result also
    keeps every pass's own ratio to PyTorch (``pass_ratios``).
    """
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return _run_benchmark(
            layer_names,
            algorithms,
            threads,
            repeats,
            use_torch,
            progress,
            quick,
            settle,
            block,
            passes,
        )
    finally:
        numba.set_num_threads(previous)


def _time_block(fn, calls):
    """The times of ``calls`` back-to-back calls of ``fn`` (seconds)."""
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def _first_calls(calls):
    """Call each of ``calls`` (name -> function) once; the time of each first call, by name
    (compilation or loading from Numba's cache, cold caches)."""
    firsts = {}
    for name, fn in calls.items():
        t0 = time.perf_counter()
        fn()
        firsts[name] = time.perf_counter() - t0
    return firsts


def _timed_passes(count, build, passes, repeats, block, settle, rotate=False, before=None):
    """Time ``count`` items ``passes`` times over, each library in its own blocks.

    ``build(index)`` gives item ``index``'s functions by name (built anew in every pass, so that
    only one item's data is alive at a time); each is called once (its first call), then
    ``repeats`` rounds of a block of ``block`` calls of each, every block after a pause of
    ``settle`` seconds, the functions in turn (with ``rotate``, round ``r`` starts at the ``r``-th,
    so that no function always follows the same one). ``before(pass_index, index)`` is called
    before each item (a progress bar). Returns ``(times, per_pass, first)``, one entry per item:
    every timed call by name over all passes, each pass's best call by name, and the first
    pass's first-call times by name. Shared by the layer suites and ``--layers breadth``.
    """
    times = [{} for _ in range(count)]
    per_pass = [[] for _ in range(count)]
    first = [None] * count
    for pass_index in range(passes):
        for index in range(count):
            if before is not None:
                before(pass_index, index)
            calls = build(index)
            firsts = _first_calls(calls)
            names = list(calls)
            timed = {name: [] for name in names}
            for r in range(repeats):
                shift = r % len(names) if rotate else 0
                for name in names[shift:] + names[:shift]:
                    if settle:
                        time.sleep(settle)
                    timed[name] += _time_block(calls[name], block)
            for name, values in timed.items():
                times[index].setdefault(name, []).extend(values)
            per_pass[index].append({name: min(values) for name, values in timed.items()})
            if pass_index == 0:
                first[index] = firsts
            del calls
    return times, per_pass, first


def _layer_calls(layer, index, algorithms, torch):
    """The timed functions of ``layer`` (the ``index``-th of the run: its random data's seed),
    by name: each applicable algorithm of convlab.conv2d, and ``"torch"`` when given."""
    from .conv import conv2d

    rng = np.random.default_rng(index)
    x = rng.standard_normal((layer.batch, layer.c_in, layer.size, layer.size), dtype=np.float32)
    w = rng.standard_normal(
        (layer.c_out, layer.c_in // layer.groups, layer.kernel, layer.kernel), dtype=np.float32
    )
    b = rng.standard_normal(layer.c_out, dtype=np.float32)
    calls = {}
    for algorithm in algorithms:
        if applicable(layer, algorithm):
            calls[algorithm] = functools.partial(
                conv2d, x, w, b, **layer.args(), algorithm=algorithm
            )
    if torch is not None:
        xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
        calls["torch"] = functools.partial(_torch_conv2d, torch, xt, wt, bt, layer.args())
    return calls


def _run_benchmark(
    layer_names, algorithms, threads, repeats, use_torch, progress, quick, settle, block, passes
):
    torch = _torch_module() if use_torch else None
    if torch is not None:
        torch.set_num_threads(threads)
    load_before = _load_average()
    peak = measure_peak(512 if quick else 2048)
    bandwidth = measure_bandwidth(8 * 2**20 if quick else 64 * 2**20)
    layers = [LAYERS[name] for name in layer_names]
    total = len(layers) * passes

    def before(pass_index, index):
        if progress:
            done = pass_index * len(layers) + index
            _progress(done, total, f"threads={threads} {layers[index].name}")

    times, per_pass, first = _timed_passes(
        len(layers),
        lambda index: _layer_calls(layers[index], index, algorithms, torch),
        passes,
        repeats,
        block,
        settle,
        rotate=True,
        before=before,
    )
    results = []
    for index, layer in enumerate(layers):
        torch_best = min(times[index]["torch"]) if "torch" in times[index] else None
        for name, values in times[index].items():
            best = min(values)
            gflops = layer.flops / best / 1e9
            results.append(
                dict(
                    layer=layer.name,
                    kind=layer.kind,
                    algorithm=name,
                    threads=threads,
                    best_s=best,
                    median_s=statistics.median(values),
                    first_call_s=first[index][name],
                    jit_s=max(first[index][name] - best, 0.0),
                    gflops=gflops,
                    pct_peak=100 * gflops / peak,
                    ratio_torch=(torch_best / best) if torch_best is not None else None,
                    pass_ratios=(
                        [p["torch"] / p[name] for p in per_pass[index]]
                        if torch_best is not None
                        else None
                    ),
                )
            )
    # the probe again, the higher kept: a probe disturbed once must not put layers above 100 %
    peak = max(peak, measure_peak(512 if quick else 2048))
    for r in results:
        r["pct_peak"] = 100 * r["gflops"] / peak
    if progress:
        _progress(total, total, f"threads={threads} done")
    return dict(
        threads=threads,
        peak_gflops=peak,
        bandwidth_gbs=bandwidth,
        results=results,
        torch=None if torch is None else torch.__version__,
        quick=quick,
        passes=passes,
        load_average=[load_before, _load_average()],
    )


# ------------------------------------------------------------------------------- reporting


def _geomean(values):
    values = [v for v in values if v is not None and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def summarize(runs, layers):
    """Geometric-mean torch ratios per layer kind and algorithm, and the 2-vs-1-thread speed-ups.

    ``runs`` is the list of per-thread-count results of :func:`run_benchmark`; ``layers`` maps
    layer names to :class:`Layer`. "best" is, per layer, the fastest convlab algorithm timed.
    Compute-bound layers are those whose arithmetic intensity is above the ridge point
    ``peak / bandwidth`` of the run with the most threads.
    """
    summary = {"ratio_geomean": {}, "thread_speedup": {}}
    for run in runs:
        by_kind = {}
        best_per_layer = {}
        for r in run["results"]:
            if r["algorithm"] == "torch":
                continue
            by_kind.setdefault(r["kind"], {}).setdefault(r["algorithm"], []).append(
                r["ratio_torch"]
            )
            if r["ratio_torch"] is not None:
                key = (r["kind"], r["layer"])
                best_per_layer[key] = max(best_per_layer.get(key, 0), r["ratio_torch"])
        for kind, per_alg in by_kind.items():
            for algorithm, ratios in per_alg.items():
                summary["ratio_geomean"].setdefault(str(run["threads"]), {}).setdefault(kind, {})[
                    algorithm
                ] = _geomean(ratios)
            best = [v for (k, _), v in best_per_layer.items() if k == kind]
            summary["ratio_geomean"].setdefault(str(run["threads"]), {}).setdefault(kind, {})[
                "best"
            ] = _geomean(best)
    by_threads = {run["threads"]: run for run in runs}
    if len(by_threads) > 1:
        most = max(by_threads)
        one = min(by_threads)
        ridge = by_threads[most]["peak_gflops"] / by_threads[most]["bandwidth_gbs"]
        bound = [name for name in layers if layers[name].intensity >= ridge]
        summary["compute_bound_layers"] = bound
        summary["ridge_flop_per_byte"] = ridge
        fast = {(r["layer"], r["algorithm"]): r["best_s"] for r in by_threads[most]["results"]}
        slow = {(r["layer"], r["algorithm"]): r["best_s"] for r in by_threads[one]["results"]}
        per_alg = {}
        for (layer, algorithm), t in fast.items():
            if layer in bound and (layer, algorithm) in slow:
                per_alg.setdefault(algorithm, []).append(slow[(layer, algorithm)] / t)
        summary["thread_speedup"] = {
            "threads": [one, most],
            "geomean": {a: _geomean(v) for a, v in per_alg.items()},
        }
    return summary


def format_table(data):
    """The results as a text table, one block per thread count, then the summary."""
    lines = []
    for run in data["runs"]:
        load = run.get("load_average") or [None, None]
        load_text = "" if load[0] is None else f"  load average {load[0]:.1f} -> {load[1]:.1f}"
        lines.append(
            f"threads={run['threads']}  peak (sgemm probe) {run['peak_gflops']:.1f} "
            f"GFLOP/s  bandwidth {run['bandwidth_gbs']:.1f} GB/s{load_text}"
        )
        header = (
            f"{'layer':<22} {'algorithm':<9} {'time ms':>9} {'1st call ms':>11} "
            f"{'GFLOP/s*':>8} {'% peak':>7} {'torch/x':>8}"
        )
        lines.append(header)
        lines.append("-" * len(header))
        for r in run["results"]:
            ratio = "" if r["ratio_torch"] is None else f"{r['ratio_torch']:.2f}"
            lines.append(
                f"{r['layer']:<22} {r['algorithm']:<9} {1e3 * r['best_s']:>9.3f} "
                f"{1e3 * r['first_call_s']:>11.1f} {r['gflops']:>8.1f} "
                f"{r['pct_peak']:>7.1f} {ratio:>8}"
            )
        lines.append("")
    # lines of at most 80 characters: the book prints this table in an 88-column box
    lines.append("* effective GFLOP/s: the direct sum's 2 x MACs over the time. Winograd and")
    lines.append("  the FFT compute fewer operations: their rate (and % peak) can pass the probe.")
    summary = data.get("summary", {})
    for threads, kinds in summary.get("ratio_geomean", {}).items():
        for kind, per_alg in kinds.items():
            parts = [f"{a} {v:.2f}" for a, v in per_alg.items() if v is not None]
            if parts:
                text = f"geomean torch/convlab, threads={threads}, {kind}: " + ", ".join(parts)
                lines += textwrap.wrap(text, 80, subsequent_indent="  ")
    speed = summary.get("thread_speedup", {})
    if speed.get("geomean"):
        one, most = speed["threads"]
        parts = [f"{a} {v:.2f}x" for a, v in speed["geomean"].items() if v is not None]
        lines.append(
            f"speed-up {most} threads vs {one} on compute-bound layers "
            f"({', '.join(summary['compute_bound_layers']) or 'none'}): " + ", ".join(parts)
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------- the CLI


def _parse_list(text, name, choices):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{name} must not be empty")
    for item in items:
        if item not in choices:
            raise argparse.ArgumentTypeError(
                f"unknown {name[:-1]} {item!r}; choose from {', '.join(choices)}"
            )
    return items


def _layers_arg(text):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if "breadth" in items:
        if items != ["breadth"]:
            raise argparse.ArgumentTypeError(
                "--layers breadth times every public operation (its own table) and cannot be "
                f"combined with conv2d layers, got {text!r}"
            )
        return ["breadth"]
    names = []
    for item in _parse_list(text, "layers", list(LAYER_SETS) + list(LAYERS)):
        for name in LAYER_SETS.get(item, [item]):
            if name not in names:
                names.append(name)
    return names


def _algorithms_arg(text):
    return _parse_list(text, "algorithms", ALGORITHMS)


def _threads_arg(text):
    return [
        _positive_int_arg(item, "threads must be positive integers") for item in text.split(",")
    ]


def _positive_int_arg(text, rule="must be a positive integer"):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{rule}, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{rule}, got {value}")
    return value


def _settle_arg(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds >= 0, got {text!r}"
        ) from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {value}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        prog="convlab-bench",
        description="Time convlab.conv2d's algorithms (and torch.nn.functional.conv2d when "
        "installed) on ResNet- and MobileNet-style layers; print a table, write "
        "bench.json and bench.png.",
        epilog="layer sets: " + "; ".join(f"{k} = {', '.join(v)}" for k, v in LAYER_SETS.items()),
    )
    parser.add_argument(
        "--layers",
        type=_layers_arg,
        default=_layers_arg("all"),
        help="comma-separated layer names or sets (dense, depthwise, tiny, all), or 'breadth': "
        "every public operation (conv1d/3d, groups, dilation, strides, large kernels, stems, "
        "transposed, gradients, separable, deformable, float64) against PyTorch, written to "
        "breadth.json and breadth.png; default: all",
    )
    parser.add_argument(
        "--algorithms",
        type=_algorithms_arg,
        default=list(ALGORITHMS),
        help=f"comma-separated subset of {','.join(ALGORITHMS)}; default: all",
    )
    parser.add_argument(
        "--threads",
        type=_threads_arg,
        default=[2, 1],
        help="comma-separated thread counts, each measured in its own subprocess; default: 2,1",
    )
    parser.add_argument(
        "--repeats",
        type=_positive_int_arg,
        default=5,
        help="timed rounds per layer (the best is kept); default: 5",
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=Path("bench-results"),
        help="where bench.json and bench.png go; default: ./bench-results",
    )
    parser.add_argument("--no-torch", action="store_true", help="do not time PyTorch")
    parser.add_argument("--no-plot", action="store_true", help="do not write bench.png")
    parser.add_argument(
        "--block",
        type=_positive_int_arg,
        default=BLOCK,
        help=f"back-to-back calls of each function per round (the first absorbs "
        f"the switch from the previous library); default: {BLOCK}",
    )
    parser.add_argument(
        "--settle",
        type=_settle_arg,
        default=None,
        help=f"pause in seconds before every block; default: {SETTLE_SECONDS} "
        f"({BREADTH_SETTLE_SECONDS} with --layers breadth)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small peak/bandwidth probes (a smoke test, not a measurement)",
    )
    parser.add_argument(
        "--cold-cache",
        action="store_true",
        help="give the subprocesses an empty Numba cache, so that the first calls "
        "measure real JIT compilation",
    )
    parser.add_argument(
        "--passes",
        type=_positive_int_arg,
        default=1,
        help="time the whole list of layers this many times over and keep each function's best "
        "call of all passes (a layer's blocks spread over the run, so that a spell of slow "
        "machine does not decide it); default: 1",
    )
    parser.add_argument(
        "--small",
        action="store_true",
        help="with --layers breadth: spatial sizes of at most 9 (a smoke test of every call)",
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # internal: JSON to write
    return parser


def _worker_env(threads, cache_dir):
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    return env


def _run_worker(args, threads, cache_dir):
    with tempfile.TemporaryDirectory(prefix="convlab-bench-") as tmp:
        out = Path(tmp) / "run.json"
        cmd = [
            sys.executable,
            "-m",
            "convlab.bench",
            "--worker",
            str(out),
            "--layers",
            ",".join(args.layers),
            "--algorithms",
            ",".join(args.algorithms),
            "--threads",
            str(threads),
            "--repeats",
            str(args.repeats),
            "--settle",
            str(args.settle),
            "--block",
            str(args.block),
            "--passes",
            str(args.passes),
        ]
        for flag in ("no_torch", "quick", "small"):
            if getattr(args, flag):
                cmd.append("--" + flag.replace("_", "-"))
        proc = subprocess.run(cmd, env=_worker_env(threads, cache_dir))
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(
                f"benchmark subprocess for threads={threads} failed (exit code {proc.returncode})"
            )
        return json.loads(out.read_text())


#: environment variables that override OpenBLAS's own choice of kernels and cache sizes: a
#: benchmark run with them measures the override, not the machine
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


#: a scheduler setting of some VMs' kernels that packs threads onto fewer virtual CPUs
VCPU_PACK_FILE = "/proc/sys/kernel/sched_vcpu_pack"


def vcpu_packing():
    """The value of :data:`VCPU_PACK_FILE` as text, or None where the kernel has no such file."""
    try:
        with open(VCPU_PACK_FILE) as f:
            return f.read().strip()
    except OSError:
        return None


def threads_line():
    """One line saying whether convlab pins its threads, and a note when the kernel packs them."""
    text = "threads: " + (
        "pinned, one CPU each (CONVLAB_PIN_THREADS=1)" if config.PIN_THREADS else "not pinned"
    )
    pack = vcpu_packing()
    if pack not in (None, "0") and not config.PIN_THREADS:
        text += (
            f"\nnote: this kernel packs threads onto fewer CPUs (sched_vcpu_pack={pack}), which can"
            " put Numba's sleeping worker beside the main thread for stretches of calls (one"
            " thread's speed); CONVLAB_PIN_THREADS=1 pins them (convlab.config)"
        )
    return text


def blas_line():
    """One line naming the BLAS convlab multiplies with and its kernels, and any override."""
    from ._blas import blas_config, blas_library

    text = f"BLAS: {blas_config() or 'not OpenBLAS'} ({blas_library() or 'no thread setter'})"
    forced = [f"{v}={os.environ[v]}" for v in OPENBLAS_OVERRIDES if v in os.environ]
    if forced:
        text += (
            "\nwarning: " + " ".join(forced) + " overrides OpenBLAS's own kernel choice; "
            "benchmark with env -u " + " -u ".join(OPENBLAS_OVERRIDES)
        )
    return text


def machine_info(torch_version=None):
    """CPU model, core count and library versions, for labelling results."""
    import numba

    from ._blas import blas_config, blas_library

    return dict(
        cpu=cpu_model(),
        cores=os.cpu_count(),
        platform=platform.platform(),
        python=platform.python_version(),
        numpy=np.__version__,
        numba=numba.__version__,
        threading_layer=threading_layer(),  # Numba's layer (tbb, omp, workqueue): convlab.config
        blas=blas_library(),
        blas_config=blas_config(),
        openblas_overrides={v: os.environ[v] for v in OPENBLAS_OVERRIDES if v in os.environ},
        pin_threads=config.PIN_THREADS,
        sched_vcpu_pack=vcpu_packing(),
        torch=torch_version,
    )


def _results(runs, layer_names, config, seconds):
    """The dict written to bench.json: machine, config, layers, runs and their summary."""
    torch_version = next((r["torch"] for r in runs if r.get("torch")), None)
    layers = {name: LAYERS[name] for name in layer_names}
    return dict(
        created=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=machine_info(torch_version),
        config=config,
        layers={name: layer.as_dict() for name, layer in layers.items()},
        runs=runs,
        seconds=seconds,
        summary=summarize(runs, layers),
    )


def benchmark_in_process(
    layer_names,
    algorithms=ALGORITHMS,
    repeats=3,
    use_torch=True,
    quick=True,
    settle=SETTLE_SECONDS,
    progress=False,
    block=BLOCK,
):
    """A quick benchmark in this process, with its current thread settings: the dict of bench.json.

    For notebooks: no subprocess, so BLAS keeps the thread count it was loaded with and Numba
    and PyTorch run with ``numba.get_num_threads()`` threads. ``python -m convlab.bench`` is the
    careful measurement (one subprocess per thread count, full-size probes).

    Examples
    --------
    >>> data = benchmark_in_process(["tiny_3x3"], ["im2col"], repeats=1, use_torch=False)
    >>> [(r["layer"], r["algorithm"]) for r in data["runs"][0]["results"]]
    [('tiny_3x3', 'im2col')]
    """
    import numba

    start = time.perf_counter()
    threads = numba.get_num_threads()
    run = run_benchmark(
        layer_names,
        algorithms,
        threads,
        repeats,
        use_torch=use_torch,
        progress=progress,
        quick=quick,
        settle=settle,
        block=block,
    )
    config = dict(
        layers=list(layer_names),
        algorithms=list(algorithms),
        threads=[threads],
        repeats=repeats,
        cold_cache=False,
        quick=quick,
        settle=settle,
        block=block,
        in_process=True,
    )
    return _results([run], layer_names, config, time.perf_counter() - start)


def main(argv=None):
    """Entry point of ``python -m convlab.bench`` and ``convlab-bench``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    breadth = args.layers == ["breadth"]
    if args.settle is None:
        args.settle = BREADTH_SETTLE_SECONDS if breadth else SETTLE_SECONDS
    if args.worker is not None and breadth:
        from ._breadth import run_breadth

        run = run_breadth(
            args.threads[0],
            args.repeats,
            args.block,
            args.settle,
            use_torch=not args.no_torch,
            small=args.small,
            passes=args.passes,
        )
        args.worker.write_text(json.dumps(run))
        return 0
    if args.worker is not None:
        run = run_benchmark(
            args.layers,
            args.algorithms,
            args.threads[0],
            args.repeats,
            use_torch=not args.no_torch,
            quick=args.quick,
            settle=args.settle,
            block=args.block,
            passes=args.passes,
        )
        args.worker.write_text(json.dumps(run))
        return 0
    try:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"cannot create --out-dir {str(args.out_dir)!r}: {exc}")
    print(blas_line(), flush=True)
    print(threads_line(), flush=True)
    start = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory(prefix="convlab-bench-cache-") as cold:
        for threads in args.threads:
            runs.append(_run_worker(args, threads, cold if args.cold_cache else None))
    if breadth:
        return _write_breadth(args, runs, time.perf_counter() - start)
    data = _results(
        runs,
        args.layers,
        dict(
            layers=args.layers,
            algorithms=args.algorithms,
            threads=args.threads,
            repeats=args.repeats,
            cold_cache=args.cold_cache,
            quick=args.quick,
            settle=args.settle,
            block=args.block,
            passes=args.passes,
        ),
        time.perf_counter() - start,
    )
    print(format_table(data))
    json_path = args.out_dir / "bench.json"
    json_path.write_text(json.dumps(data, indent=1))
    print(f"wrote {json_path}")
    if not args.no_plot:
        import matplotlib.pyplot as plt

        from .viz import benchmark_figure

        png_path = args.out_dir / "bench.png"
        fig = benchmark_figure(data, threads="all")  # every thread count, one column each
        fig.savefig(png_path, dpi=100)
        plt.close(fig)
        print(f"wrote {png_path}")
    return 0


def _write_breadth(args, runs, seconds):
    from ._breadth import format_breadth, summarize_breadth

    torch_version = next((r["torch"] for r in runs if r.get("torch")), None)
    data = dict(
        created=datetime.datetime.now().isoformat(timespec="seconds"),
        machine=machine_info(torch_version),
        config=dict(
            layers=["breadth"],
            threads=args.threads,
            repeats=args.repeats,
            block=args.block,
            settle=args.settle,
            small=args.small,
            cold_cache=args.cold_cache,
            passes=args.passes,
        ),
        runs=runs,
        seconds=seconds,
        summary=summarize_breadth(runs),
    )
    print(format_breadth(data))
    json_path = args.out_dir / "breadth.json"
    json_path.write_text(json.dumps(data, indent=1))
    print(f"wrote {json_path}")
    if not args.no_plot and torch_version is not None:  # the figure draws ratios to torch
        import matplotlib.pyplot as plt

        from .viz import breadth_figure

        for run in runs:
            png_path = args.out_dir / f"breadth_{run['threads']}threads.png"
            fig = breadth_figure(data, threads=run["threads"])
            fig.savefig(png_path, dpi=100)
            plt.close(fig)
            print(f"wrote {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

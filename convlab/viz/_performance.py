"""Figures for the performance chapter: memory order, im2col, and the benchmark's results.

* :func:`memory_access_figure` draws a small feature map, its row-major memory order, and which
  addresses each output of a direct convolution reads (the seed article 003's 3x3 map with a 2x2
  kernel): the reads of one output are scattered over the memory line.
* :func:`im2col_figure` draws the ``(K*K*C_i) x (H_o*W_o)`` matrix that :func:`convlab.im2col`
  builds, each entry labelled by the input element it copies.
* :func:`benchmark_figure` and :func:`roofline_figure` draw the results of ``python -m
  convlab.bench`` (the dict it writes to ``bench.json``), :func:`breadth_figure` those of
  ``python -m convlab.bench --layers breadth`` (``breadth.json``).

Every function returns the ``matplotlib.figure.Figure`` it drew (created through pyplot, so that
a notebook shows it; close it with ``plt.close(fig)`` when drawing many). Artists carry
``gid`` labels so that tests can ask what is shown: ``"cell:r:c"`` and ``"mem:i"`` for input cells
and memory slots, ``"read:o:i"`` for "output ``o`` reads memory address ``i``", ``"col:r:c"`` for
im2col entries, ``"bar:<layer>:<algorithm>"`` for benchmark bars, ``"point:<layer>:<algorithm>"``
for roofline points and ``"ratio:<operation>"`` for the breadth benchmark's bars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from matplotlib.patches import Rectangle
from numpy.typing import NDArray

from .._args import check_rank, float_array, ntuple, positive_int
from ..algorithms import im2col
from ..shapes import conv_output_size
from ._page import MIN_FONTSIZE, PAGE_WIDTH

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..shapes import IntOrTuple

#: a ``bench.json`` as json.load returns it (``python -m convlab.bench`` writes it)
_BenchData = Mapping[str, Any]

__all__ = [
    "direct_access_pattern",
    "memory_access_figure",
    "im2col_figure",
    "benchmark_figure",
    "roofline_figure",
    "benchmark_rows",
    "benchmark_table",
    "benchmark_provenance",
    "breadth_figure",
    "breadth_table",
    "engine_figure",
    "ALGORITHM_COLORS",
]

#: one colour per algorithm, used by every performance figure
ALGORITHM_COLORS = {
    "auto": "#4c4c4c",
    "direct": "#1f77b4",
    "im2col": "#ff7f0e",
    "winograd": "#2ca02c",
    "fft": "#9467bd",
    "torch": "#d62728",
}
_OUTPUT_COLORS = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#17becf",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
)
EDGE = "#333333"


def _new_figure(**kwargs: Any) -> Figure:
    """A figure managed by pyplot, so that a notebook's inline backend shows it (as the other
    chapters' figures are shown); callers that only save it should ``plt.close`` it."""
    import matplotlib.pyplot as plt

    return plt.figure(**kwargs)


def direct_access_pattern(height: int, width: int, kernel: int) -> NDArray[np.int64]:
    """Row-major addresses each output of a stride-1, unpadded direct convolution reads.

    Returns an int array of shape ``(H_o * W_o, K * K)``: row ``o = oh * W_o + ow`` lists, in tap
    order, the addresses ``(oh + kh) * W + (ow + kw)`` of the input elements output ``o`` multiplies
    (the sizes come from :func:`convlab.conv_output_size`).

    Examples
    --------
    >>> direct_access_pattern(3, 3, 2)
    array([[0, 1, 3, 4],
           [1, 2, 4, 5],
           [3, 4, 6, 7],
           [4, 5, 7, 8]])
    """
    height, width, kernel = (
        positive_int(v, n) for v, n in ((height, "height"), (width, "width"), (kernel, "kernel"))
    )
    oh_n, ow_n = conv_output_size((height, width), kernel)
    rows = []
    for oh in range(oh_n):
        for ow in range(ow_n):
            rows.append(
                [(oh + kh) * width + ow + kw for kh in range(kernel) for kw in range(kernel)]
            )
    return np.array(rows, dtype=np.int64)


def memory_access_figure(height: int = 3, width: int = 3, kernel: int = 2) -> Figure:
    """The input map, its memory order, and the addresses each output reads.

    Top left: the ``height x width`` map with its elements named ``x_rc`` (1-based, as in the seed);
    top right: the same elements in row-major memory order, one slot per address; below, one row
    per output ``y_ij`` with the slots it reads filled in that output's colour. Read across a row,
    an output's reads jump over the memory line (by ``W - K + 1`` after each kernel row), and
    neighbouring outputs reread most of the same slots.

    Returns
    -------
    matplotlib.figure.Figure
        Artists: ``cell:r:c`` (map cells), ``mem:i`` (memory slots), ``read:o:i`` (output ``o``
        reads address ``i``).
    """
    pattern = direct_access_pattern(height, width, kernel)
    n_mem = height * width
    n_out = pattern.shape[0]
    oh_n, ow_n = conv_output_size((height, width), kernel)
    fig = _new_figure(figsize=(2.0 + 0.55 * (n_mem + width), 1.6 + 0.5 * (n_out + height)))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_aspect("equal")
    top = n_out + 1.5
    # the 2-D map
    for r in range(height):
        for c in range(width):
            y = top + (height - 1 - r)
            ax.add_patch(
                Rectangle((c, y), 1, 1, facecolor="#ffffff", edgecolor=EDGE, gid=f"cell:{r}:{c}")
            )
            ax.text(
                c + 0.5, y + 0.5, f"$x_{{{r + 1}{c + 1}}}$", ha="center", va="center", fontsize=9
            )
    ax.text(width / 2, top + height + 0.3, "feature map", ha="center", fontsize=9)
    # memory line
    x0 = width + 1.5
    for i in range(n_mem):
        r, c = divmod(i, width)
        ax.add_patch(
            Rectangle((x0 + i, top + 1), 1, 1, facecolor="#f0f0f0", edgecolor=EDGE, gid=f"mem:{i}")
        )
        ax.text(
            x0 + i + 0.5, top + 1.5, f"$x_{{{r + 1}{c + 1}}}$", ha="center", va="center", fontsize=9
        )
        ax.text(
            x0 + i + 0.5,
            top + 0.6,
            str(i),
            ha="center",
            va="center",
            fontsize=MIN_FONTSIZE,
            color="#666666",
        )
    ax.text(x0 + n_mem / 2, top + 2.3, "memory (row-major), address below", ha="center", fontsize=9)
    # one row per output
    for o in range(n_out):
        oh, ow = divmod(o, ow_n)
        y = n_out - 1 - o
        color = _OUTPUT_COLORS[o % len(_OUTPUT_COLORS)]
        ax.text(x0 - 0.3, y + 0.5, f"$y_{{{oh + 1}{ow + 1}}}$", ha="right", va="center", fontsize=9)
        read = set(pattern[o].tolist())
        for i in range(n_mem):
            if i in read:
                ax.add_patch(
                    Rectangle(
                        (x0 + i, y),
                        1,
                        1,
                        facecolor=color,
                        alpha=0.75,
                        edgecolor=EDGE,
                        gid=f"read:{o}:{i}",
                    )
                )
            else:
                ax.add_patch(Rectangle((x0 + i, y), 1, 1, facecolor="none", edgecolor="#cccccc"))
    ax.set_xlim(-0.2, x0 + n_mem + 0.2)
    ax.set_ylim(-0.2, top + height + 0.8)
    return fig


def im2col_figure(
    x: npt.ArrayLike,
    kernel: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    labels: npt.ArrayLike | None = None,
) -> Figure:
    """The column matrix of :func:`convlab.im2col` for one image, drawn with its entries labelled.

    Parameters
    ----------
    x : array_like, shape (C, H, W)
        One image (a small one: every entry is drawn).
    kernel, stride, padding : int
        As in :func:`convlab.im2col`.
    labels : array_like of str, shape (C, H, W), optional
        Text for each input element; default ``c:rc`` style names (``x_{rc}`` for one channel).

    Returns
    -------
    matplotlib.figure.Figure
        One axes with the ``(K*K*C) x (H_o*W_o)`` matrix; the cell at row ``r``, column ``c`` has
        gid ``col:r:c`` and shows the label of the input element it copies (or ``0`` for padding).
    """
    arr = float_array(x, "x")
    check_rank(arr, (3,), "x", "(C, H, W)")
    channels, height, width = arr.shape
    if labels is None:
        if channels == 1:
            labels = np.array(
                [[[f"$x_{{{r + 1}{c + 1}}}$" for c in range(width)] for r in range(height)]]
            )
        else:
            labels = np.array(
                [
                    [[f"{ch}:{r + 1}{c + 1}" for c in range(width)] for r in range(height)]
                    for ch in range(channels)
                ]
            )
    labels = np.asarray(labels)
    if labels.shape != arr.shape:
        raise ValueError(f"labels must have the shape of x {arr.shape}, got {labels.shape}")
    # im2col of the element *indices* tells which element lands in each cell (-1: padding)
    index = np.arange(arr.size, dtype=np.float64).reshape(arr.shape) + 1.0
    cols = im2col(index, kernel, padding=padding, stride=stride).astype(np.int64) - 1
    n_rows, n_cols = cols.shape
    fig = _new_figure(figsize=(1.2 + 0.62 * n_cols, 0.8 + 0.42 * n_rows))
    ax = fig.add_subplot()
    ax.set_aspect("equal")
    flat_labels = labels.reshape(-1)
    for r in range(n_rows):
        for c in range(n_cols):
            src = cols[r, c]
            ax.add_patch(
                Rectangle(
                    (c, n_rows - 1 - r),
                    1,
                    1,
                    gid=f"col:{r}:{c}",
                    edgecolor=EDGE,
                    facecolor=_OUTPUT_COLORS[c % len(_OUTPUT_COLORS)] if src >= 0 else "#d9d9d9",
                    alpha=0.35,
                )
            )
            ax.text(
                c + 0.5,
                n_rows - 0.5 - r,
                flat_labels[src] if src >= 0 else "0",
                ha="center",
                va="center",
                fontsize=8,
            )
    ax.set_xlim(0, n_cols)
    ax.set_ylim(0, n_rows)
    ax.set_xticks(np.arange(n_cols) + 0.5, [str(c) for c in range(n_cols)])
    ax.set_yticks(np.arange(n_rows) + 0.5, [str(r) for r in range(n_rows)][::-1])
    ax.set_xlabel("column = output position oh * W_o + ow")
    ax.set_ylabel("row = (c * K + kh) * K + kw")
    ax.tick_params(length=0, labelsize=8)
    return fig


def _run(data: _BenchData, threads: int | None) -> Any:
    runs = data["runs"]
    if threads is None:
        return max(runs, key=lambda run: run["threads"])
    for run in runs:
        if run["threads"] == threads:
            return run
    raise ValueError(f"no run with threads={threads}; the data has {[r['threads'] for r in runs]}")


def benchmark_figure(
    data: _BenchData,
    threads: int | str | None = None,
    layers: Sequence[str] | None = None,
) -> Figure:
    """Time, GFLOP/s and % of peak per algorithm per layer, from ``python -m convlab.bench``'s JSON.

    Parameters
    ----------
    data : dict
        The content of ``bench.json`` (:func:`convlab.bench.main`).
    threads : int or "all", optional
        Which run to draw; default: the one with the most threads. ``"all"``: every run, one
        column each (what ``python -m convlab.bench`` saves as ``bench.png``).
    layers : list of str, optional
        Layers to draw, in order; default: all in the run.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes per run (time in ms on a log scale, effective GFLOP/s, % of the measured
        peak); bars have gid ``bar:<layer>:<algorithm>`` (``bar:<layer>:<algorithm>:<threads>``
        when every run is drawn) on the time axes. GFLOP/s are effective: the direct sum's
        operations divided by the time, so Winograd and the FFT, which compute fewer, can pass
        the sgemm probe's peak. The legend sits below the axes, clear of the bars; each column's
        title names its thread count and peak.
    """
    runs = sorted(data["runs"], key=lambda r: -r["threads"]) if threads == "all" else None
    if runs is None:
        runs = [_run(data, threads if isinstance(threads, int) else None)]
    every = threads == "all"
    if layers is None:
        layers = list(dict.fromkeys(r["layer"] for run in runs for r in run["results"]))
    algorithms = list(dict.fromkeys(r["algorithm"] for run in runs for r in run["results"]))
    # one page width per column: a single run never gets wider than the page, where its 8-point
    # labels would shrink
    fig = _new_figure(figsize=(PAGE_WIDTH * len(runs), 9.5), layout="constrained")
    grid = fig.subplots(3, len(runs), sharex=True, squeeze=False)
    width = 0.8 / len(algorithms)
    metrics = (
        ("best_s", 1e3, "time (ms, log)"),
        ("gflops", 1.0, "effective GFLOP/s"),
        ("pct_peak", 1.0, "% of measured peak"),
    )
    handles: dict[str, Any] = {}  # algorithm -> its first bars, for the figure's legend
    for col, run in enumerate(runs):
        lookup = {(r["layer"], r["algorithm"]): r for r in run["results"]}
        axes = grid[:, col]
        for ax, (key, scale, label) in zip(axes, metrics, strict=True):
            for a, algorithm in enumerate(algorithms):
                xs, ys = [], []
                present = [layer for layer in layers if (layer, algorithm) in lookup]
                for layer in present:
                    xs.append(layers.index(layer) - 0.4 + width * (a + 0.5))
                    ys.append(lookup[(layer, algorithm)][key] * scale)
                bars = ax.bar(
                    xs, ys, width, label=algorithm, color=ALGORITHM_COLORS.get(algorithm, "#777777")
                )
                if len(bars):
                    handles.setdefault(algorithm, bars[0])
                if key == "best_s":
                    suffix = f":{run['threads']}" if every else ""
                    for bar, layer in zip(bars, present, strict=True):
                        bar.set_gid(f"bar:{layer}:{algorithm}{suffix}")
            if col == 0:
                ax.set_ylabel(label)
            ax.grid(axis="y", alpha=0.3)
        axes[0].set_yscale("log")
        axes[2].axhline(100, color="#999999", lw=0.8, ls="--")
        axes[-1].set_xticks(range(len(layers)), layers, rotation=30, ha="right", fontsize=8)
        axes[0].set_title(
            f"{run['threads']} thread(s): peak {run['peak_gflops']:.0f} GFLOP/s (sgemm probe)",
            fontsize=9,
        )
    fig.legend(
        handles=list(handles.values()),
        labels=list(handles),
        loc="outside lower center",
        ncol=len(handles),
        fontsize=8,
    )
    cpu = data.get("machine", {}).get("cpu", "unknown CPU")
    fig.suptitle(cpu, fontsize=10)
    return fig


def breadth_figure(data: _BenchData, threads: int | None = None, floor: float = 0.8) -> Figure:
    """torch time / convlab time for every operation of the breadth benchmark, by family.

    Parameters
    ----------
    data : dict
        The content of ``breadth.json`` (``python -m convlab.bench --layers breadth``).
    threads : int, optional
        Which run to draw; default: the one with the most threads.
    floor : float, optional
        A dashed line at this ratio (the target every row should reach), besides the solid line
        at 1 (as fast as PyTorch).

    Returns
    -------
    matplotlib.figure.Figure
        One horizontal bar per operation (gid ``ratio:<operation>``) on a log axis, coloured by
        family, with the family's geometric mean printed next to its first bar; rows without a
        PyTorch time are left out.
    """
    run = _run(data, threads)
    rows = [r for r in run["results"] if r.get("ratio_torch")]
    families = list(dict.fromkeys(r["family"] for r in rows))
    colors = {f: _OUTPUT_COLORS[i % len(_OUTPUT_COLORS)] for i, f in enumerate(families)}
    height = max(3.0, 0.19 * len(rows) + 1.2)
    fig = _new_figure(figsize=(PAGE_WIDTH, height), layout="constrained")
    ax = fig.add_subplot()
    ys = np.arange(len(rows))[::-1]
    ratios = [r["ratio_torch"] for r in rows]
    bars = ax.barh(ys, ratios, color=[colors[r["family"]] for r in rows], height=0.75)
    for bar, r in zip(bars, rows, strict=True):
        bar.set_gid(f"ratio:{r['op']}")
    ax.set_xscale("log")
    ax.axvline(1.0, color=EDGE, lw=1.0)
    ax.axvline(floor, color=EDGE, lw=0.8, ls="--")
    ax.set_yticks(ys, [r["op"] for r in rows], fontsize=MIN_FONTSIZE)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    means = data.get("summary", {}).get(str(run["threads"]), {}).get("families", {})
    hi = max(ratios)
    # room right of the longest bar for the family labels ("conv_transpose1d: 1.31")
    ax.set_xlim(min(min(ratios), floor) / 1.3, hi * 8)
    for family in families:
        first = next(i for i, r in enumerate(rows) if r["family"] == family)
        mean = means.get(family)
        label = family if mean is None else f"{family}: {mean:.2f}"
        ax.text(
            hi * 1.15, ys[first], label, va="center", fontsize=MIN_FONTSIZE, color=colors[family]
        )
    ax.set_xlabel("torch time / convlab time (log; right of 1 = convlab faster)")
    ax.grid(axis="x", alpha=0.3, which="both")
    cpu = data.get("machine", {}).get("cpu", "unknown CPU")
    fig.suptitle(f"{cpu}, {run['threads']} thread(s)", fontsize=10)
    return fig


def _compact_shapes(description: str) -> str:
    """``x[2, 16, 8, 8] w[32, 16, 3, 3] stride=2`` as ``[2,16,8,8] [32,16,3,3] stride=2``."""
    text = description.replace(", ", ",")
    return " ".join(part[1:] if part[:2] in ("x[", "w[") else part for part in text.split())


def breadth_table(data: _BenchData, threads: int | None = None, digits: int = 2) -> str:
    """A Markdown table of a ``breadth.json`` (``python -m convlab.bench --layers breadth``).

    One row per operation, grouped by family (named on the family's first row): the input and
    weight shapes with the keyword arguments,
    convlab's and PyTorch's best times (one cell, ``convlab / PyTorch``), the ratio PyTorch time /
    convlab time (above 1: convlab is faster) and both libraries' effective GFLOP/s as a
    percentage of the run's sgemm probe (``peak_gflops``; one cell): how close an operation comes
    to what one matrix product of the machine reaches, and where PyTorch runs faster than the
    BLAS convlab calls can (above 100). Paired cells keep the table within a book page's width.
    The last column is the row's
    ceiling (:func:`convlab._breadth.gemm_ceiling`): PyTorch's time over the time of the row's
    matrix products alone at the best rate convlab's BLAS reaches on a block of them, the ratio
    convlab could not pass with that BLAS however its columns were built (``n/a`` for rows that
    are not products alone, and in runs recorded before it was measured). ``threads`` picks the
    run (default: the one with the most threads). A chapter displays it with
    ``IPython.display.Markdown``.

    Examples
    --------
    >>> data = {"runs": [{"threads": 2, "peak_gflops": 100.0, "results": [
    ...     {"op": "a", "family": "conv1d", "description": "x[1, 8, 64] w[8, 8, 3]",
    ...      "convlab_s": 2e-3, "torch_s": 1e-3, "ratio_torch": 0.5, "gflops": 25.0,
    ...      "torch_gflops": 50.0}]}]}
    >>> print(breadth_table(data).splitlines()[-1])
    | conv1d | `a` | [1,8,64] [8,8,3] | 2.00 / 1.00 | 0.50 | 25 / 50 | n/a |
    """
    run = _run(data, threads)
    peak = run.get("peak_gflops")

    def num(value: object, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    header = [
        "family",
        "operation",
        "input, weight (and arguments)",
        "ms, convlab / PyTorch",
        "PyTorch / convlab",
        "% of GEMM peak, convlab / PyTorch",
        "ceiling",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    previous = None
    for r in run["results"]:
        family = r["family"] if r["family"] != previous else ""
        previous = r["family"]
        torch_s = r.get("torch_s")
        cells = [
            family,
            f"`{r['op']}`",
            _compact_shapes(r.get("description", "")),
            num(1e3 * r["convlab_s"], f".{digits}f")
            + " / "
            + num(None if torch_s is None else 1e3 * torch_s, f".{digits}f"),
            num(r.get("ratio_torch"), f".{digits}f"),
            num(None if not peak else 100 * r["gflops"] / peak, ".0f")
            + " / "
            + num(
                None if not peak or not r.get("torch_gflops") else 100 * r["torch_gflops"] / peak,
                ".0f",
            ),
            num(r.get("ceiling"), f".{digits}f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def roofline_figure(
    data: _BenchData, threads: int | None = None, algorithms: Sequence[str] | None = None
) -> Figure:
    """The roofline of the measured machine with every (layer, algorithm) placed on it.

    The roof is ``min(peak, bandwidth * intensity)`` with the peak and bandwidth measured in the
    same run; a layer's intensity is its FLOPs over its compulsory bytes (read input and weight,
    write output once). Points below the sloped part are memory-bound, below the flat part
    compute-bound.

    Returns
    -------
    matplotlib.figure.Figure
        Log-log axes; points have gid ``point:<layer>:<algorithm>``; the roof line has gid
        ``roof``.
    """
    run = _run(data, threads)
    peak, bandwidth = run["peak_gflops"], run["bandwidth_gbs"]
    layers = data["layers"]
    results = [r for r in run["results"] if algorithms is None or r["algorithm"] in algorithms]
    fig = _new_figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    intensities = [layers[r["layer"]]["flops"] / layers[r["layer"]]["min_bytes"] for r in results]
    lo = min(intensities + [peak / bandwidth]) / 2
    hi = max(intensities + [peak / bandwidth]) * 2
    xs = np.geomspace(lo, hi, 200)
    ax.plot(xs, np.minimum(peak, bandwidth * xs), color="#333333", lw=2, gid="roof")
    ax.annotate(f"peak {peak:.0f} GFLOP/s", (hi, peak), ha="right", va="bottom", fontsize=8)
    ax.annotate(f"{bandwidth:.0f} GB/s", (lo * 1.1, bandwidth * lo * 1.1), fontsize=8, rotation=0)
    seen = set()
    for r, ai in zip(results, intensities, strict=True):
        algorithm = r["algorithm"]
        label = algorithm if algorithm not in seen else None
        seen.add(algorithm)
        (pt,) = ax.plot(
            [ai],
            [r["gflops"]],
            "o",
            color=ALGORITHM_COLORS.get(algorithm, "#777777"),
            label=label,
            alpha=0.8,
        )
        pt.set_gid(f"point:{r['layer']}:{algorithm}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / compulsory byte)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.grid(which="both", alpha=0.25)
    ax.legend(fontsize=8)
    cpu = data.get("machine", {}).get("cpu", "unknown CPU")
    ax.set_title(f"roofline, {cpu}, {run['threads']} thread(s)", fontsize=10)
    return fig


# ------------------------------------------------------------------ the stored benchmark as text


def _convlab_entry(entries: Sequence[Mapping[str, Any]]) -> Any:
    """The row that stands for convlab on one layer: ``auto`` if timed, else the fastest."""
    ours = [r for r in entries if r["algorithm"] != "torch"]
    auto = [r for r in ours if r["algorithm"] == "auto"]
    return auto[0] if auto else min(ours, key=lambda r: r["best_s"])


def benchmark_rows(data: _BenchData) -> list[dict[str, Any]]:
    """One dict per layer of a ``bench.json``: what :func:`benchmark_table` prints.

    For every layer, with ``hi`` and ``lo`` the largest and smallest thread counts of the runs:
    ``convlab_ms`` (``auto``, or the fastest algorithm if ``auto`` was not timed) and its
    ``gflops`` (effective: two flops per multiply-accumulate of the definition, whatever the
    algorithm really does), ``torch_ms``, ``ratio`` (torch time / convlab time) at ``hi`` threads
    and ``ratio_lo`` at ``lo``, and ``fastest`` (the fastest convlab algorithm at ``hi``, ``auto``
    itself not counted: it is a choice among the others).
    Values that a run did not measure are ``None``.
    """
    runs = sorted(data["runs"], key=lambda run: run["threads"])
    lo, hi = runs[0], runs[-1]

    def by_layer(run: Mapping[str, Any]) -> dict[str, list[Any]]:
        table: dict[str, list[Any]] = {}
        for r in run["results"]:
            table.setdefault(r["layer"], []).append(r)
        return table

    hi_rows, lo_rows = by_layer(hi), by_layer(lo)
    rows = []
    for name, entries in hi_rows.items():
        ours = _convlab_entry(entries)
        torch_entry = next((r for r in entries if r["algorithm"] == "torch"), None)
        mine = [r for r in entries if r["algorithm"] != "torch"]
        candidates = [r for r in mine if r["algorithm"] != "auto"]
        fastest = min(candidates or mine, key=lambda r: r["best_s"])
        lo_entries = lo_rows.get(name, [])
        lo_ours = _convlab_entry(lo_entries) if lo_entries else None
        layer = data.get("layers", {}).get(name, {})
        rows.append(
            dict(
                layer=name,
                shape=layer.get("description", ""),
                threads=hi["threads"],
                threads_lo=lo["threads"],
                convlab_ms=1e3 * ours["best_s"],
                gflops=ours["gflops"],
                torch_ms=None if torch_entry is None else 1e3 * torch_entry["best_s"],
                ratio=ours["ratio_torch"],
                ratio_lo=None if lo_ours is None or lo is hi else lo_ours["ratio_torch"],
                fastest=fastest["algorithm"],
            )
        )
    return rows


def benchmark_table(data: _BenchData, digits: int = 2) -> str:
    """A Markdown table of a ``bench.json`` (as written by ``python -m convlab.bench``).

    One row per layer: its shape, convlab's time with the most threads of the run (``auto``) and
    its effective GFLOP/s, PyTorch's time, the ratio PyTorch time / convlab time with the most and
    with the fewest threads (above 1: convlab is faster), and the fastest convlab algorithm.
    A chapter displays it with ``IPython.display.Markdown``; nothing in it is typed by hand.

    Examples
    --------
    >>> data = {"runs": [{"threads": 1, "results": [
    ...     {"layer": "a", "algorithm": "auto", "best_s": 2e-3, "gflops": 10.0,
    ...      "ratio_torch": 0.5},
    ...     {"layer": "a", "algorithm": "torch", "best_s": 1e-3, "gflops": 20.0,
    ...      "ratio_torch": None}]}], "layers": {"a": {"description": "8->8 12x12 k3"}}}
    >>> print(benchmark_table(data).splitlines()[-1])
    | `a` | 8->8 12x12 k3 | 2.00 | 10 | 1.00 | 0.50 | auto |
    """
    rows = benchmark_rows(data)
    if not rows:
        return ""
    hi, lo = rows[0]["threads"], rows[0]["threads_lo"]
    two = hi != lo

    def num(value: object, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    header = [
        "layer",
        "shape",
        f"convlab ms ({hi} thr.)",
        "effective GFLOP/s",
        f"PyTorch ms ({hi} thr.)",
        f"ratio, {hi} thr.",
    ]
    if two:
        header.append(f"ratio, {lo} thr.")
    header.append("fastest convlab algorithm")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [
            f"`{r['layer']}`",
            r["shape"],
            num(r["convlab_ms"], f".{digits}f"),
            num(r["gflops"], ".0f"),
            num(r["torch_ms"], f".{digits}f"),
            num(r["ratio"], f".{digits}f"),
        ]
        if two:
            cells.append(num(r["ratio_lo"], f".{digits}f"))
        cells.append(r["fastest"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def benchmark_provenance(data: _BenchData) -> str:
    """One sentence naming the machine, the libraries, the date and the command of a bench.json
    (or of a breadth.json: ``python -m convlab.bench --layers breadth``)."""
    machine = data.get("machine", {})
    config = data.get("config", {})
    threads = ",".join(str(t) for t in config.get("threads", []))
    layers = " --layers breadth" if config.get("layers") == ["breadth"] else ""
    torch = machine.get("torch") or "not installed"
    loads = [run.get("load_average") or [None] for run in data.get("runs", [])]
    load = max((v for pair in loads for v in pair if v is not None), default=None)
    busy = "" if load is None else f" (1-minute load average up to {load:.1f} during the run)"
    passes = config.get("passes", 1)
    passes = f" --passes {passes}" if passes != 1 else ""
    # Numba's workers pinned to CPUs of their own (convlab.config's CONVLAB_PIN_THREADS)
    pinned = "CONVLAB_PIN_THREADS=1 " if machine.get("pin_threads") else ""
    return (
        f"{machine.get('cpu', 'unknown CPU')} ({machine.get('cores', '?')} cores{busy}), "
        f"NumPy {machine.get('numpy', '?')}, Numba {machine.get('numba', '?')}, "
        f"PyTorch {torch}; run on {str(data.get('created', '?'))[:10]} with "
        f"`{pinned}python -m convlab.bench{layers} --threads {threads} "
        f"--repeats {config.get('repeats', '?')}{passes}`"
    )


def _matrix(ax: Any, x: float, rows: int, cols: int, color: str, label: str, gid: str) -> float:
    """A ``rows x cols`` matrix drawn to scale at ``x`` (top edge at 0), labelled; its right edge."""
    ax.add_patch(
        Rectangle(
            (x, -rows), cols, rows, facecolor=color, alpha=0.35, edgecolor=EDGE, lw=1.0, gid=gid
        )
    )
    ax.text(
        x + cols / 2,
        12,
        label,
        ha="center",
        va="bottom",
        fontsize=MIN_FONTSIZE + 1,
        linespacing=1.0,
    )
    ax.text(
        x + cols / 2, -rows - 12, f"{rows} x {cols}", ha="center", va="top", fontsize=MIN_FONTSIZE
    )
    return x + cols


def _gemms_per_group(channels: int, k_parts: int, chunk: int) -> int:
    """The matrix products im2col makes per block and group: the input channels in ``k_parts``
    parts, each in chunks of ``chunk`` channels (the plan's rows of columns over the taps)."""
    per_part = -(-channels // k_parts)
    return k_parts * -(-per_part // chunk)


def engine_figure(
    c_in: int = 48,
    c_out: int = 80,
    kernel_size: IntOrTuple = 3,
    output_size: IntOrTuple = 40,
    batch: int = 4,
    itemsize: int = 4,
) -> Figure:
    """The three matrix products of convlab's blocked im2col + GEMM engine, to scale, for one layer.

    For a 2-D convolution with these channels, kernel and output size (stride 1), one thread's step
    for one block of ``B`` output positions is, with ``K`` kernel taps: the forward pass ``weight
    (C_out x C_in K) @ columns (C_in K x B)``, written straight into the output (``B`` from
    :func:`convlab.algorithms._im2col_plan`, what :func:`convlab.conv2d` runs); the weight gradient,
    ``grad-output (C_out x B) @ input runs (B x KW C_in)`` for one kernel row, added to a partial
    sum (:func:`convlab._engine.weight_grad_tile_plan`); and the input gradient, which at stride 1
    is the forward pass of the output gradient with the kernel flipped and the channel axes swapped,
    ``weight' (C_in x C_out K) @ columns of the output gradient``, drawn in the same im2col form
    (for a 3x3 kernel ``conv2d``'s ``auto`` computes that convolution by Winograd instead, as it
    would the forward pass). Every rectangle is drawn to the same scale (one unit per row or
    column). The figure's ``plan`` attribute holds the numbers drawn: ``rows``, ``parts`` (GEMMs
    over the input channels: chunks whose columns fit in L2, and two parts when a layer has few
    positions), ``block`` and ``blocks`` (per image) of the forward pass; ``grad_rows``,
    ``grad_block`` and ``grad_parts`` of the weight gradient; ``back_rows``, ``back_parts`` and
    ``back_block`` of the input gradient; and ``workspace_bytes``, one thread's columns in the
    forward pass. The weight gradient is drawn as convlab computes it (``grad_tile``,
    :func:`convlab._engine.weight_grad_uses_tile`): by its tile, one product per kernel row
    (``grad_parts`` of them, ``grad_rows = KW * C_in`` wide) whose rows are read in place, or by
    BLAS over columns (1x1 kernels, few channels).
    """
    from .. import _engine
    from ..algorithms import _im2col_plan

    c_in, c_out, batch, itemsize = (
        positive_int(v, name)
        for v, name in ((c_in, "c_in"), (c_out, "c_out"), (batch, "batch"), (itemsize, "itemsize"))
    )
    kernel = ntuple(kernel_size, 2, "kernel_size")
    out = ntuple(output_size, 2, "output_size")
    k3, o3 = (1, *kernel), (1, *out)
    _, block, k_parts, rows, pieces, segments = _im2col_plan(
        batch, c_in, c_out, kernel, out, itemsize, 1, threads=1
    )
    taps = kernel[0] * kernel[1]
    rows = rows or c_in * taps  # 1x1 kernels read the input in place
    blocks = pieces * segments
    parts = _gemms_per_group(c_in, k_parts, rows // taps)
    forward_part = (
        ""
        if parts == 1
        else f" (one chunk, {rows // taps} of {c_in} input channels; {parts} chunks summed)"
    )
    grad_tile = _engine.weight_grad_uses_tile(c_in, c_out, k3, 1, itemsize)
    if grad_tile:
        # one product per kernel row: each position's run of KW * C_in input values
        tile_plan = _engine.weight_grad_tile_plan(
            batch, c_in, c_out, k3, (1, 1, 1), (1, 1, 1), o3, itemsize, 1, 1
        )
        grad_block, grad_rows, c_parts = tile_plan[5], kernel[1] * c_in, kernel[0]
    else:
        _, c_parts, _, grad_rows, grad_block = _engine.weight_grad_plan(
            batch, c_in, c_out, k3, o3, itemsize, 1
        )
    _, back_block, back_parts, back_rows, _, _ = _im2col_plan(
        batch, c_out, c_in, kernel, out, itemsize, 1, threads=1
    )
    back_rows = back_rows or c_out * taps
    back_parts = _gemms_per_group(c_out, back_parts, back_rows // taps)
    part = -(-c_in // c_parts)
    colors = {"w": "#1f77b4", "cols": "#ff7f0e", "out": "#2ca02c", "go": "#d62728"}
    panels = [
        (
            "forward: the product goes straight into the output" + forward_part,
            [
                (c_out, rows, "w", f"weight ({c_out} x {rows // taps}*{taps})"),
                (rows, block, "cols", "columns of the block"),
                (c_out, block, "out", "output block"),
            ],
        ),
        (
            (
                f"weight gradient: one of {kernel[0]} kernel rows, input read in place (channels "
                "last), summed over blocks",
                [
                    (c_out, grad_block, "go", "grad output"),
                    (
                        grad_block,
                        grad_rows,
                        "cols",
                        f"input runs\n({kernel[1]}*{c_in} per position)",
                    ),
                    (c_out, grad_rows, "w", "grad weight,\none kernel row"),
                ],
            )
            if grad_tile
            else (
                f"weight gradient, drawn transposed: one part ({part} of {c_in} input channels), "
                "added to the unit's partial sum",
                [
                    (grad_rows, grad_block, "cols", "columns of the block"),
                    (grad_block, c_out, "go", "grad output,\ntransposed"),
                    (grad_rows, c_out, "w", "grad weight,\ntransposed"),
                ],
            )
        ),
        (
            "input gradient (stride 1): the same forward product, kernel flipped, channels swapped",
            [
                (c_in, back_rows, "w", f"weight ({c_in} x {back_rows // taps}*{taps})"),
                (back_rows, back_block, "go", "columns of grad output"),
                (c_in, back_block, "out", "grad input block"),
            ],
        ),
    ]
    # the space between matrices: room for the labels of narrow ones
    gap = 0.2 * max(max(r, c) for _, mats in panels for r, c, _, _ in mats)
    widths = [sum(c for _, c, _, _ in mats) + 3 * gap for _, mats in panels]
    heights = [max(r for r, _, _, _ in mats) for _, mats in panels]
    span = max(widths)
    fig = _new_figure(
        figsize=(PAGE_WIDTH, PAGE_WIDTH * (sum(heights) + 3 * 110) / span * 1.05),
        layout="constrained",
    )
    axes = fig.subplots(3, 1, height_ratios=[h + 110 for h in heights])
    for p, (ax, (title, mats), height) in enumerate(zip(axes, panels, heights, strict=True)):
        x = 0.0
        for i, (r, c, kind, label) in enumerate(mats):
            x = _matrix(ax, x, r, c, colors[kind], label, f"matrix:{p}:{i}")
            if i < 2:
                ax.text(
                    x + gap / 2,
                    -min(r, mats[i + 1][0]) / 2,
                    "@" if i == 0 else "=",
                    ha="center",
                    va="center",
                    fontsize=12,
                )
                x += gap
        ax.set_xlim(-gap / 4, span)
        ax.set_ylim(-height - 70, 60)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(title, fontsize=MIN_FONTSIZE + 1, loc="left")
    h, w = out
    fig.suptitle(
        f"one thread, one block: {c_in} -> {c_out} channels, {kernel[0]}x{kernel[1]} kernel, "
        f"{h}x{w} output ({blocks} blocks of {block} positions per image)",
        fontsize=10,
    )
    fig.plan = dict(  # type: ignore[attr-defined]
        rows=rows,
        parts=parts,
        block=block,
        blocks=blocks,
        grad_rows=grad_rows,
        grad_block=grad_block,
        grad_parts=c_parts,
        grad_tile=grad_tile,
        back_rows=back_rows,
        back_parts=back_parts,
        back_block=back_block,
        workspace_bytes=rows * block * itemsize,
    )
    return fig


def implicit_figure(
    kernel_size: IntOrTuple = 3,
    input_size: IntOrTuple = (5, 7),
    padding: IntOrTuple = 1,
    dilation: IntOrTuple = 1,
) -> Figure:
    """How the implicit product (:mod:`convlab._implicit`) reads one input channel, drawn from its
    own buffer and table of offsets.

    The block is the whole output of a stride-1 layer: the buffer holds the input's rows that the
    block reads, zero-padded, ``rq`` rows of ``wq = W_out + (kW - 1) d`` values (filled by the
    kernel's own :func:`convlab._implicit._fill` from an input whose values are their indices).
    Output ``(i, j)`` is flat position ``i * wq + j``, so each tap reads one contiguous run of
    ``n = (H_out - 1) * wq + W_out`` values, starting at the tap's offset
    (:func:`convlab._implicit.tap_offsets`): one panel per tap (the first and the last) shows that
    run on the buffer, the values the outputs use filled, the ``wq - W_out`` per row that are
    computed and thrown away hatched. The figure's ``plan`` attribute holds ``rq``, ``wq``,
    ``n``, ``offsets`` (one per tap, in the weight's order) and ``wasted``, the share of the run's
    positions thrown away.
    """
    from .. import _implicit

    kernel = ntuple(kernel_size, 2, "kernel_size")
    size = ntuple(input_size, 2, "input_size")
    pad = ntuple(padding, 2, "padding", allow_zero=True)
    dil = ntuple(dilation, 2, "dilation")
    out = tuple(
        conv_output_size(s, k, padding=p, dilation=d)
        for s, k, p, d in zip(size, kernel, pad, dil, strict=True)
    )
    (kh, kw), (dh, dw), (oh, ow) = kernel, dil, out
    halo_h, halo_w = (kh - 1) * dh, (kw - 1) * dw
    rq, wq = oh + halo_h, ow + halo_w
    x = np.arange(size[0] * size[1], dtype=np.float64).reshape(1, 1, 1, *size) + 1
    buf = np.zeros(rq * wq)
    one = (1, 1, 1)
    k3, d3, p3 = (1, kh, kw), (1, dh, dw), (0, pad[0], pad[1])
    _implicit._fill(x, 0, 0, 1, 0, 0, 0, buf, rq, wq, k3, one, d3, p3)
    offsets = np.empty(kh * kw, np.int64)
    _implicit.tap_offsets(1, k3, one, d3, rq, wq, offsets)
    n = (oh - 1) * wq + ow
    grid = buf.reshape(rq, wq)
    shown = [(0, 0), (kh - 1, kw - 1)] if kh * kw > 1 else [(0, 0)]
    fig = _new_figure(
        figsize=(PAGE_WIDTH, PAGE_WIDTH * 0.62 * rq / wq / len(shown) * 1.9 + 0.9),
        layout="constrained",
    )
    axes = np.atleast_1d(fig.subplots(1, len(shown)))
    colors = ("#1f77b4", "#d62728")
    for ax, (th, tw), color in zip(axes, shown, colors, strict=False):
        start = int(offsets[th * kw + tw])
        for r in range(rq):
            for c in range(wq):
                value = grid[r, c]
                # padding: a grey cell (the zeros the kernel writes); input: its index
                ax.add_patch(
                    Rectangle(
                        (c, -r - 1),
                        1,
                        1,
                        facecolor="white" if value else "#e6e6e6",
                        edgecolor="#999",
                        lw=0.6,
                    )
                )
                if value:
                    ax.text(
                        c + 0.5,
                        -r - 0.5,
                        f"{value - 1:.0f}",
                        ha="center",
                        va="center",
                        fontsize=MIN_FONTSIZE,
                    )
        for q in range(n):
            r, c = divmod(start + q, wq)
            used = q % wq < ow
            ax.add_patch(
                Rectangle(
                    (c, -r - 1),
                    1,
                    1,
                    facecolor=color if used else "none",
                    alpha=0.35 if used else 1.0,
                    edgecolor=color,
                    hatch=None if used else "///",
                    lw=1.2,
                    gid=f"run:{th},{tw}:{'used' if used else 'wasted'}",
                )
            )
        ax.set_xlim(-0.2, wq + 0.2)
        ax.set_ylim(-rq - 0.2, 0.2)
        ax.set_aspect("equal")
        ax.set_axis_off()
        ax.set_title(
            f"tap ({th}, {tw}): values {start}..{start + n - 1} of the buffer",
            fontsize=MIN_FONTSIZE + 1,
        )
    wasted = (oh - 1) * halo_w / n
    fig.suptitle(
        f"one channel's buffer: {rq} rows of {wq} (the input's {size[0]}x{size[1]} values by "
        f"index, zero padding in grey), {oh}x{ow} outputs; each tap reads {n} consecutive "
        f"values, {ow} per row used, {halo_w} thrown away",
        fontsize=MIN_FONTSIZE + 1,
        wrap=True,
    )
    fig.plan = dict(  # type: ignore[attr-defined]
        rq=rq, wq=wq, n=n, offsets=offsets.tolist(), wasted=wasted
    )
    return fig

"""Figures for separable convolutions (chapter 5): costs, MobileNet's layers, low-rank kernels.

Every number drawn is computed by the package: cost ratios by :func:`convlab.count_macs` and
:func:`convlab.count_macs_depthwise_separable`, kernel approximations by
:func:`convlab.separate_kernel`, filtered images by :func:`convlab.conv2d` and
:func:`convlab.spatially_separable_conv2d`. Timings are measured by the caller and passed in, so
that the figure shows the numbers the chapter prints.

Artists carry ``gid`` labels that tests read back: ``"ratio:<k>"`` / ``"limit:<k>"`` for the cost
curves, ``"seed"`` for the seed's 39/108 point, ``"bar:<i>"`` for MobileNet's layers,
``"time:<name>"`` / ``"macs:<name>"`` for the timing figure, ``"image:<name>"`` for the panels of
the image figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numpy.typing import NDArray

from .._args import check_rank, float_array, positive_int
from ..conv import conv2d
from ..separable import separate_kernel, spatially_separable_conv2d
from ..shapes import count_macs, count_macs_depthwise_separable
from ._page import MIN_FONTSIZE, PAGE_WIDTH

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .._args import Array
    from ..shapes import IntOrTuple

__all__ = [
    "separable_cost_ratios",
    "separable_cost_figure",
    "mobilenet_macs_figure",
    "blur_timing_figure",
    "low_rank_figure",
    "filtered_images_figure",
    "blur_two_ways",
]

#: colours of the layer kinds in :func:`mobilenet_macs_figure`
KIND_COLOURS = {"conv": "#7f7f7f", "dw": "#1f77b4", "pw": "#d62728", "fc": "#2ca02c"}


def separable_cost_ratios(
    out_channels: Iterable[int],
    kernel_size: int,
    in_channels: int = 32,
    input_size: IntOrTuple = (14, 14),
) -> NDArray[np.float64]:
    """MACs of a depthwise-separable layer divided by those of a standard conv, per ``C_out``.

    Both counts come from :mod:`convlab.shapes` ('same' padding, stride 1); the ratio equals
    ``1 / C_out + 1 / D_K^2`` whatever ``in_channels`` and ``input_size`` are (Howard et al. 2017).

    Examples
    --------
    >>> separable_cost_ratios([4, 64], 3).round(4)
    array([0.3611, 0.1267])
    """
    k = positive_int(kernel_size, "kernel_size")
    ratios = []
    for n in out_channels:
        n = positive_int(n, "out_channels")
        standard = count_macs(in_channels, n, k, input_size, padding="same")
        separable = count_macs_depthwise_separable(in_channels, n, k, input_size, padding="same")
        ratios.append(separable / standard)
    return np.array(ratios)


def separable_cost_figure(
    kernel_sizes: Sequence[int] = (3, 5, 7), max_channels: int = 1024, seed_point: bool = True
) -> Figure:
    """Plot the separable/standard cost ratio ``1/N + 1/D_K^2`` against the output channels ``N``.

    One curve per kernel size (log-scaled ``N`` from 1 to ``max_channels``), with the limit
    ``1/D_K^2`` dashed; the seed's layer (3x3, 3 -> 4 channels: 39 / 108 parameters) marked.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes. Lines ``gid="ratio:<k>"`` (x: N, y: ratio), ``gid="limit:<k>"``; the seed's
        point ``gid="seed"``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = separable_cost_figure((3,), max_channels=16)
    >>> line = [l for l in fig.axes[0].lines if l.get_gid() == "ratio:3"][0]
    >>> float(line.get_ydata()[0])   # N = 1: 1 + 1/9
    1.1111111111111112
    """
    import matplotlib.pyplot as plt

    max_channels = positive_int(max_channels, "max_channels")
    channels = np.unique(np.round(np.geomspace(1, max_channels, 60)).astype(int))
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, k in enumerate(kernel_sizes):
        colour = f"C{i}"
        ratios = separable_cost_ratios(channels, k)
        ax.plot(channels, ratios, color=colour, label=f"$D_K = {k}$", gid=f"ratio:{k}")
        ax.axhline(1 / k**2, color=colour, linestyle="--", linewidth=0.8, gid=f"limit:{k}")
    if seed_point:
        ax.plot([4], [39 / 108], "o", color="black", gid="seed")
        ax.annotate(
            "seed: 39 / 108",
            (4, 39 / 108),
            xytext=(8, 0.55),
            fontsize=9,
            arrowprops=dict(arrowstyle="->", linewidth=0.8),
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("output channels $N$")
    ax.set_ylabel("separable / standard MACs")
    ax.set_title(r"cost ratio $1/N + 1/D_K^2$ (dashed: $1/D_K^2$)")
    ax.legend()
    fig.tight_layout()
    return fig


def mobilenet_macs_figure(layers: Sequence[tuple[str, str, int]]) -> Figure:
    """Bar chart of the multiply-adds of each layer of a network, coloured by layer kind.

    Parameters
    ----------
    layers : sequence of (name, kind, macs)
        ``kind`` one of ``"conv"`` (standard), ``"dw"`` (depthwise), ``"pw"`` (1x1), ``"fc"``.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes; bar ``i`` has ``gid="bar:<i>"`` and height ``macs / 1e6``; the legend gives each
        kind's share of the total.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = mobilenet_macs_figure([("a", "dw", 1e6), ("b", "pw", 3e6)])
    >>> [float(p.get_height()) for p in fig.axes[0].patches]
    [1.0, 3.0]
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    layers = list(layers)
    if not layers:
        raise ValueError("layers must not be empty")
    for name, kind, _ in layers:
        if kind not in KIND_COLOURS:
            raise ValueError(
                f"layer {name!r}: kind must be one of {sorted(KIND_COLOURS)}, got {kind!r}"
            )
    total = sum(m for _, _, m in layers)
    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.6))
    for i, (_, kind, macs) in enumerate(layers):
        ax.bar(i, macs / 1e6, color=KIND_COLOURS[kind], gid=f"bar:{i}")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([name for name, _, _ in layers], rotation=90, fontsize=MIN_FONTSIZE)
    ax.set_ylabel("million multiply-adds")
    shares: dict[str, int] = {}
    for _, kind, macs in layers:
        shares[kind] = shares.get(kind, 0) + macs
    handles = [
        Patch(color=KIND_COLOURS[k], label=f"{k}: {100 * v / total:.2f}%")
        for k, v in shares.items()
    ]
    ax.legend(handles=handles, fontsize=8)
    fig.tight_layout()
    return fig


def blur_timing_figure(
    kernel_sizes: npt.ArrayLike, full_seconds: npt.ArrayLike, separable_seconds: npt.ArrayLike
) -> Figure:
    """Time and cost of a k x k filter applied directly (k^2 taps) and as two passes (2k taps).

    Left: the measured times against ``k``. Right: multiply-adds per output pixel, ``k^2`` and
    ``2k``, and the measured speed-up next to the ideal ``k / 2``.

    Returns
    -------
    matplotlib.figure.Figure
        Two Axes. Left lines ``gid="time:conv2d"`` and ``gid="time:separable"`` (milliseconds);
        right lines ``gid="macs:conv2d"`` (``k^2``), ``gid="macs:separable"`` (``2k``) and on a
        twin axis ``gid="speedup:measured"`` (``full / separable``) and ``gid="speedup:ideal"``
        (``k / 2``).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = blur_timing_figure([3, 5], [0.002, 0.004], [0.001, 0.001])
    >>> [l.get_gid() for l in fig.axes[1].lines]
    ['macs:conv2d', 'macs:separable']
    """
    import matplotlib.pyplot as plt

    k = np.asarray(kernel_sizes, dtype=float)
    full = np.asarray(full_seconds, dtype=float)
    sep = np.asarray(separable_seconds, dtype=float)
    if not (k.shape == full.shape == sep.shape) or k.ndim != 1 or k.size == 0:
        raise ValueError(
            f"kernel_sizes, full_seconds and separable_seconds must be 1-D of one length, got "
            f"shapes {k.shape}, {full.shape}, {sep.shape}"
        )
    fig, (left, right) = plt.subplots(1, 2, figsize=(PAGE_WIDTH, 3.6))
    left.plot(k, full * 1e3, "o-", label="conv2d (k x k)", gid="time:conv2d")
    left.plot(k, sep * 1e3, "s-", label="column + row passes", gid="time:separable")
    left.set_xlabel("kernel size k")
    left.set_ylabel("time (ms)")
    left.set_title("measured")
    left.legend(fontsize=8)
    right.plot(k, k**2, "o-", label="$k^2$ (conv2d)", gid="macs:conv2d")
    right.plot(k, 2 * k, "s-", label="$2k$ (separable)", gid="macs:separable")
    right.set_xlabel("kernel size k")
    right.set_ylabel("multiply-adds per pixel")
    twin = right.twinx()
    twin.plot(k, full / sep, "k^:", label="measured speed-up", gid="speedup:measured")
    twin.plot(k, k / 2, color="0.6", linestyle=":", label="ideal speed-up k/2", gid="speedup:ideal")
    twin.legend(fontsize=8, loc="lower right")
    twin.set_ylabel("speed-up (dotted lines)")
    right.set_title("cost per pixel and speed-up")
    right.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def _two_decimals(value: float) -> str:
    """``0.0345 -> ".03"``, ``-0.012 -> "-.01"``, ``-0.001 -> "0"``: short enough for a 7x7 grid."""
    text = f"{value:.2f}"
    if float(text) == 0:
        return "0"
    return text.replace("0.", ".", 1) if abs(value) < 1 else text


def low_rank_figure(kernel: npt.ArrayLike, ranks: Sequence[int] = (1, 2)) -> Figure:
    """A kernel next to its best rank-r approximations (:func:`convlab.separate_kernel`).

    Panels share one symmetric colour scale; each approximation's title gives its rank and the
    Frobenius norm of its error (``sqrt`` of the discarded squared singular values).

    Returns
    -------
    matplotlib.figure.Figure
        ``1 + len(ranks)`` Axes; images ``gid="image:kernel"`` and ``gid="image:rank<r>"`` whose
        arrays are the kernel and ``col @ row``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = low_rank_figure(np.eye(3), ranks=(1,))
    >>> [ax.get_title() for ax in fig.axes]
    ['kernel (rank 3)', 'rank 1: error 1.414']
    """
    import matplotlib.pyplot as plt

    k = float_array(kernel, "kernel")
    full = separate_kernel(k)
    approximations = [separate_kernel(k, rank=r) for r in ranks]
    vmax = max(np.abs(k).max(), 1e-12)
    fig, axes = plt.subplots(
        1,
        1 + len(approximations),
        figsize=(min(2.5, PAGE_WIDTH / (1 + len(approximations))) * (1 + len(approximations)), 2.7),
        squeeze=False,
    )
    panels = [(k, "kernel", f"kernel (rank {full.rank})")]
    panels += [
        (a.kernel, f"rank{a.rank}", f"rank {a.rank}: error {a.error:.3f}") for a in approximations
    ]
    for ax, (image, gid, title) in zip(axes[0], panels, strict=True):
        ax.imshow(image, cmap="RdBu_r", vmin=-vmax, vmax=vmax, gid=f"image:{gid}")
        for (i, j), v in np.ndenumerate(image):
            if image.size <= 49:
                # white digits on the dark ends of the colour map, black on the light middle
                colour = "white" if abs(v) > 0.55 * vmax else "black"
                ax.text(
                    j,
                    i,
                    _two_decimals(float(v)),
                    ha="center",
                    va="center",
                    fontsize=MIN_FONTSIZE,
                    color=colour,
                )
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def filtered_images_figure(
    images: Mapping[str, npt.ArrayLike], cmap: str = "gray", ncols: int | None = None
) -> Figure:
    """Show images side by side, titled with their names (e.g. an image and its filtered versions).

    Every image pixel is drawn as a block of screen pixels (no smoothing), so that a pattern of
    single pixels, such as a checkerboard, stays visible; the figure is never wider than the
    book's page.

    Parameters
    ----------
    images : dict of name -> array (H, W) or (H, W, 3)
        Values are shown as they are (grayscale with ``cmap``; RGB clipped to [0, 1]).
    cmap : str
    ncols : int, optional
        Images per row; all of them in one row by default.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per image; images ``gid="image:<name>"``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = filtered_images_figure({"a": np.zeros((4, 4)), "b": np.ones((4, 4))})
    >>> [ax.get_title() for ax in fig.axes]
    ['a', 'b']
    """
    import matplotlib.pyplot as plt

    if not images:
        raise ValueError("images must not be empty")
    ncols = len(images) if ncols is None else positive_int(ncols, "ncols")
    nrows = -(-len(images) // ncols)
    panel = min(3.2, PAGE_WIDTH / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel * ncols, (panel + 0.3) * nrows), squeeze=False
    )
    for ax in axes.ravel()[len(images) :]:
        ax.axis("off")
    for ax, (name, image) in zip(axes.ravel(), images.items(), strict=False):
        arr = np.asarray(image, dtype=float)
        check_rank(arr, (2, 3), f"image {name!r}", "(H, W) or (H, W, 3)")
        if arr.ndim == 3:
            ax.imshow(np.clip(arr, 0, 1), interpolation="nearest", gid=f"image:{name}")
        else:
            ax.imshow(arr, cmap=cmap, interpolation="nearest", gid=f"image:{name}")
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


def blur_two_ways(image: npt.ArrayLike, kernel: npt.ArrayLike) -> tuple[Array, Array]:
    """Filter a (C, H, W) image with ``kernel`` by conv2d and by the separable passes ('same').

    Returns ``(full, separable)``, both (C, H, W), for :func:`filtered_images_figure`.

    Examples
    --------
    >>> full, sep = blur_two_ways(np.ones((1, 5, 5)), np.full((3, 3), 1 / 9))
    >>> bool(np.allclose(full, sep)), round(float(full[0, 2, 2]), 12)
    (True, 1.0)
    """
    x = float_array(image, "image")
    check_rank(x, (3,), "image", "(C, H, W)")
    k = float_array(kernel, "kernel", dtype=x.dtype)
    check_rank(k, (2,), "kernel", "(kH, kW)")
    channels = x.shape[0]
    full = conv2d(x, np.broadcast_to(k, (channels, 1) + k.shape), padding="same", groups=channels)
    col, row = separate_kernel(k)
    separable = spatially_separable_conv2d(x, col, row, padding="same")
    return full, separable

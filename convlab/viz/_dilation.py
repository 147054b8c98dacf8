"""Figures for dilated (atrous) convolution: sampled cells, receptive-field growth, gridding.

Everything drawn is computed by the package: window positions and output sizes by
:func:`convlab.conv_output_size` and :func:`convlab.effective_kernel_size`, receptive fields by
:func:`convlab.receptive_field`, and the gridding heat maps by running :func:`convlab.conv2d`
itself through the stack of dilated layers.

Artists carry ``gid`` labels so that tests (and readers) can ask a figure what it shows:

* :func:`dilation_grid_figure`: ``"cell:r:c"`` for every input cell, ``"read:o:r:c"`` for the cells
  read by the ``o``-th highlighted output (in the order given), ``"window:o"`` for the dashed
  outline of that output's dilated window;
* :func:`receptive_field_growth_figure`: ``"rf:<name>"`` for each schedule's line;
* :func:`gridding_figure`: ``"gridding:<i>"`` for the ``i``-th heat map (an ``AxesImage`` whose
  array is :func:`gridding_counts`).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from matplotlib.patches import Rectangle
from numpy.typing import NDArray

from .._args import ntuple, positive_int
from ..conv import conv2d
from ..shapes import conv_output_size, effective_kernel_size, receptive_field
from ._page import MIN_FONTSIZE, PAGE_WIDTH

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .._args import Array
    from ..shapes import IntOrTuple

__all__ = [
    "dilated_taps",
    "dilation_grid_figure",
    "receptive_field_growth",
    "receptive_field_growth_figure",
    "gridding_counts",
    "gridding_figure",
]

CELL_FACE = "#ffffff"
EDGE = "#333333"
# one colour per highlighted output, as in the sliding-window figures
_CYCLE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _subplots(ncols: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height), squeeze=False)
    return fig, list(axes[0])


def dilated_taps(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    dilation: IntOrTuple = 1,
    output: Sequence[int] = (0, 0),
    stride: IntOrTuple = 1,
) -> list[tuple[int, int]]:
    """Input cells ``(row, col)`` read by one output of an unpadded 2-D convolution.

    Output ``(i, j)`` reads the cells ``(i*s + a*d, j*s + b*d)`` for the kernel taps
    ``a, b = 0 .. k-1``: the window moves by the stride ``s`` from one output to the next, and
    inside a window the taps are ``d`` cells apart (the dilation rate, the "sampling step" of the
    seed article 001). At ``d = 1`` the taps are adjacent: a plain convolution.

    Parameters
    ----------
    input_size : int or tuple of 2 ints
        ``H`` (square) or ``(H, W)``.
    kernel_size, dilation, stride : int or tuple of 2 ints
    output : tuple of 2 ints
        The output position ``(i, j)``; must lie inside the output grid, whose size is
        :func:`convlab.conv_output_size` of the arguments.

    Returns
    -------
    list of tuple of int
        ``k_h * k_w`` cells in row-major tap order.

    Raises
    ------
    ValueError
        If the dilated kernel does not fit in the input or ``output`` is outside the output grid.

    Examples
    --------
    >>> dilated_taps(7, 3, dilation=2)
    [(0, 0), (0, 2), (0, 4), (2, 0), (2, 2), (2, 4), (4, 0), (4, 2), (4, 4)]
    >>> dilated_taps(7, 3, dilation=3, output=(0, 0))[-1]
    (6, 6)
    """
    size = ntuple(input_size, 2, "input_size")
    k = ntuple(kernel_size, 2, "kernel_size")
    d = ntuple(dilation, 2, "dilation")
    s = ntuple(stride, 2, "stride")
    out = conv_output_size(size, k, s, 0, d)
    pos = ntuple(output, 2, "output", allow_zero=True)
    if not all(0 <= p < o for p, o in zip(pos, out, strict=True)):
        raise ValueError(f"output {tuple(pos)} is outside the output grid of size {out}")
    return [
        (pos[0] * s[0] + a * d[0], pos[1] * s[1] + b * d[1])
        for a in range(k[0])
        for b in range(k[1])
    ]


def dilation_grid_figure(
    input_size: int = 7,
    kernel_size: int = 3,
    rates: Sequence[int] = (1, 2, 3),
    outputs: Sequence[Sequence[int]] = ((0, 0),),
    stride: int = 1,
) -> Figure:
    """Which input cells an output reads, one panel per dilation rate (seed 001's figure).

    Each panel is the ``input_size`` grid with the cells read by every listed output filled in
    that output's colour and its dilated window (``k + (k-1)(d-1)`` cells wide) outlined by a
    dashed line. Listing two neighbouring outputs, e.g. ``((0, 0), (0, 1))``, shows the
    difference the seed insists on: the window moves by the stride, while the taps inside it are
    the dilation rate apart.

    Parameters
    ----------
    input_size : int
        Side of the square input (the seed's 7).
    kernel_size : int
        Side of the square kernel (the seed's 3).
    rates : sequence of int
        One panel per dilation rate.
    outputs : sequence of (int, int)
        Output positions to highlight. An output that does not exist at some rate (the grid
        shrinks as the rate grows) is left out of that panel; each must exist at one rate at
        least.
    stride : int

    Returns
    -------
    matplotlib.figure.Figure
        Artists labelled as described in the module docstring.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = dilation_grid_figure(rates=(2,))
    >>> sorted(p.get_gid() for p in fig.axes[0].patches if p.get_gid().startswith("read:"))[:2]
    ['read:0:0:0', 'read:0:0:2']
    """
    n = positive_int(input_size, "input_size")
    k = positive_int(kernel_size, "kernel_size")
    rates = [positive_int(r, "rate") for r in rates]
    if not rates:
        raise ValueError("rates must hold at least one dilation rate")
    outputs = [tuple(ntuple(o, 2, "output", allow_zero=True)) for o in outputs]
    taps = {}
    for o in outputs:
        for r in rates:
            size = conv_output_size(n, k, stride, 0, r)  # raises if the kernel does not fit
            if o[0] < size and o[1] < size:
                taps[(r, o)] = dilated_taps(n, k, r, o, stride)
        if not any((r, o) in taps for r in rates):
            raise ValueError(f"output {o} is outside the output grid at every rate {tuple(rates)}")

    # panels share the page's width (3 panels: 2.5 inches each, 8-point indices on screen)
    panel = min(3.2, PAGE_WIDTH / len(rates))
    fig, axes = _subplots(len(rates), panel * len(rates), panel + 0.6)
    for ax, rate in zip(axes, rates, strict=True):
        for r in range(n):
            for c in range(n):
                ax.add_patch(
                    Rectangle(
                        (c, r),
                        1,
                        1,
                        facecolor=CELL_FACE,
                        edgecolor="0.75",
                        lw=0.8,
                        gid=f"cell:{r}:{c}",
                    )
                )
        extent = effective_kernel_size(k, rate)
        for o_index, o in enumerate(outputs):
            colour = _CYCLE[o_index % len(_CYCLE)]
            if (rate, o) not in taps:  # this output does not exist at this rate
                continue
            cells = taps[(rate, o)]
            for r, c in cells:
                ax.add_patch(
                    Rectangle(
                        (c, r),
                        1,
                        1,
                        facecolor=colour,
                        edgecolor=EDGE,
                        lw=0.8,
                        alpha=0.55,
                        gid=f"read:{o_index}:{r}:{c}",
                    )
                )
            r0, c0 = cells[0]
            ax.add_patch(
                Rectangle(
                    (c0 + 0.06, r0 + 0.06),
                    extent - 0.12,
                    extent - 0.12,
                    fill=False,
                    edgecolor=colour,
                    lw=1.8,
                    ls="--",
                    gid=f"window:{o_index}",
                )
            )
        out = conv_output_size(n, k, stride, 0, rate)
        ax.set_title(
            f"d = {rate}: {k * k} taps span {extent}x{extent}\noutput {out}x{out}", fontsize=9
        )
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)  # row 0 at the top, as the matrix is printed
        ax.set_aspect("equal")
        labels = [str(i) for i in range(n)]
        ax.set_xticks(np.arange(n) + 0.5, labels=labels, fontsize=MIN_FONTSIZE)
        ax.set_yticks(np.arange(n) + 0.5, labels=labels, fontsize=MIN_FONTSIZE)
        ax.tick_params(length=0)
    fig.tight_layout()
    return fig


def _layers(schedule: Iterable[Any]) -> list[Any]:
    """A schedule is a list of layers as :func:`convlab.receptive_field` takes them."""
    return list(schedule)


def receptive_field_growth(layers: Iterable[Any]) -> list[int]:
    """Receptive field after 0, 1, ..., L layers of a stack (one dimension).

    ``[1, rf(layers[:1]), rf(layers[:2]), ...]`` with :func:`convlab.receptive_field`.

    Examples
    --------
    >>> receptive_field_growth([(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)])
    [1, 3, 7, 15, 31]
    >>> receptive_field_growth([3, 3, 3, 3])
    [1, 3, 5, 7, 9]
    """
    layers = _layers(layers)
    return [receptive_field(layers[:depth]) for depth in range(len(layers) + 1)]


def receptive_field_growth_figure(
    schedules: Mapping[str, Iterable[Any]], ax: Axes | None = None
) -> Figure:
    """Receptive field against depth for several stacks of layers, one line per stack.

    Parameters
    ----------
    schedules : dict
        ``{name: layers}``, each ``layers`` a list as :func:`convlab.receptive_field` takes it,
        e.g. ``{"3x3, d = 1, 2, 4, 8": [(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)]}``.
    ax : matplotlib.axes.Axes, optional
        Draw here instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        With one ``Line2D`` per schedule, gid ``"rf:<name>"``, whose y data are
        :func:`receptive_field_growth` of the schedule.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = receptive_field_growth_figure({"plain": [3, 3, 3]})
    >>> [int(v) for v in fig.axes[0].lines[0].get_ydata()]
    [1, 3, 5, 7]
    """
    if not schedules:
        raise ValueError("schedules must hold at least one stack of layers")
    if ax is None:
        fig, (ax,) = _subplots(1, 5.5, 3.6)
    else:
        fig = cast("Figure", ax.figure)  # a Figure: tight_layout() below needs one
    markers = "osD^v"
    longest = 0
    for i, (name, layers) in enumerate(schedules.items()):
        growth = receptive_field_growth(layers)
        longest = max(longest, len(growth) - 1)
        ax.plot(
            range(len(growth)),
            growth,
            marker=markers[i % len(markers)],
            label=name,
            color=_CYCLE[i % len(_CYCLE)],
            gid=f"rf:{name}",
        )
        ax.annotate(
            str(growth[-1]),
            (len(growth) - 1, growth[-1]),
            textcoords="offset points",
            xytext=(6, 0),
            va="center",
            fontsize=9,
            color=_CYCLE[i % len(_CYCLE)],
        )
    ax.set_xlabel("number of layers")
    ax.set_ylabel("receptive field (pixels per side)")
    ax.set_xticks(range(longest + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def gridding_counts(rates: Sequence[int], kernel_size: int = 3) -> NDArray[np.int64]:
    """How often each input pixel reaches the centre output through a stack of dilated layers.

    The stack has one ``kernel_size`` x ``kernel_size`` convolution per entry of ``rates`` (stride
    1, that dilation, one channel). With every weight equal to 1, the number of paths from input
    pixel ``p`` to output pixel ``q`` is the output of the stack at ``q`` for an impulse at
    ``p``; the all-ones kernels are symmetric, so it is also the output at ``p`` for an impulse at
    ``q``. This function therefore puts one impulse in the middle of a grid as wide as the
    receptive field, runs :func:`convlab.conv2d` (``padding="same"``) through the stack, and
    returns the counts. Zeros inside the grid are the gridding holes: pixels within the receptive
    field that no path reaches (Wang et al. 2018).

    Parameters
    ----------
    rates : sequence of int
        Dilation rate of each layer, first layer first.
    kernel_size : int
        Odd, so that the centre is a pixel.

    Returns
    -------
    numpy.ndarray of int64, shape (R, R)
        ``R = receptive_field`` of the stack.

    Raises
    ------
    ValueError
        If ``kernel_size`` is even or ``rates`` is empty.

    Examples
    --------
    >>> gridding_counts([2], 3)
    array([[1, 0, 1, 0, 1],
           [0, 0, 0, 0, 0],
           [1, 0, 1, 0, 1],
           [0, 0, 0, 0, 0],
           [1, 0, 1, 0, 1]])
    >>> int((gridding_counts([2, 2, 2]) > 0).sum()), int((gridding_counts([1, 2, 3]) > 0).sum())
    (49, 169)
    """
    k = positive_int(kernel_size, "kernel_size")
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd so that the centre is a pixel, got {k}")
    if isinstance(rates, numbers.Integral) or not len(rates):
        raise ValueError(f"rates must be a non-empty sequence of dilation rates, got {rates!r}")
    rates = [positive_int(r, "rate") for r in rates]
    size = receptive_field([(k, 1, r) for r in rates])
    grid: Array = np.zeros((1, 1, size, size))
    grid[0, 0, size // 2, size // 2] = 1.0
    ones = np.ones((1, 1, k, k))
    for r in rates:
        grid = conv2d(grid, ones, padding="same", dilation=r)
    # counts of paths are integers; the float sums are exact far beyond these sizes
    counts: NDArray[np.int64] = np.rint(grid[0, 0]).astype(np.int64)
    return counts


def gridding_figure(
    schedules: Sequence[Sequence[int]] = ((2, 2, 2), (1, 2, 3)),
    kernel_size: int = 3,
    cmap: str = "viridis",
) -> Figure:
    """Side-by-side heat maps of :func:`gridding_counts`, one per schedule of dilation rates.

    White cells are inputs inside the receptive field that never reach the centre output: with
    the same rate in every layer (``(2, 2, 2)``) only every other row and column is sampled, the
    gridding effect; a hybrid schedule such as ``(1, 2, 3)`` (HDC, Wang et al. 2018) fills the
    square.

    Returns
    -------
    matplotlib.figure.Figure
        One ``AxesImage`` per schedule, gid ``"gridding:<i>"``, holding the counts (zeros masked).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = gridding_figure()
    >>> [im.get_gid() for ax in fig.axes for im in ax.images]
    ['gridding:0', 'gridding:1']
    """
    schedules = [tuple(s) for s in schedules]
    if not schedules:
        raise ValueError("schedules must hold at least one schedule of dilation rates")
    counts = [gridding_counts(s, kernel_size) for s in schedules]
    fig, axes = _subplots(len(schedules), 3.6 * len(schedules), 3.9)
    for i, (ax, rates, c) in enumerate(zip(axes, schedules, counts, strict=True)):
        masked = np.ma.masked_equal(c, 0)
        im = ax.imshow(masked, cmap=cmap, interpolation="nearest", gid=f"gridding:{i}")
        reached = int((c > 0).sum())
        ax.set_title(
            f"rates {rates}: {reached} of {c.size} pixels\nreach the centre "
            f"(field {c.shape[0]}x{c.shape[1]})",
            fontsize=10,
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_facecolor("white")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="paths")
    fig.tight_layout()
    return fig

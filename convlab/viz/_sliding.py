"""Sliding-window figures for 1-D convolutions, and the padding modes.

Everything drawn here is computed by the package itself: output lengths by
:func:`convlab.conv_output_size`, padding by :func:`convlab.conv.pad_input` (the function the
convolutions pad with), outputs by :func:`convlab.conv1d`. A figure can therefore never disagree
with what the library computes.

The artists carry ``gid`` labels so that tests (and curious readers) can ask a figure what it
shows: ``"input:i"`` / ``"pad:i"`` for input cells (``i`` in input coordinates, negative or
``>= L`` for padding), ``"output:i"`` for output cells, ``"link:i:j"`` for the line from input
``j`` to output ``i``, ``"weight:t"`` for kernel tap ``t`` in the animation.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .._args import PADDING_MODES, check_padding_mode, check_rank, float_array, ntuple, positive_int
from ..conv import _check_pad_fits, conv1d, pad_input
from ..shapes import conv_output_size, padding_pairs
from ._page import MIN_FONTSIZE

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.text import Text

    from .._args import Array
    from ..shapes import IntOrTuple

__all__ = [
    "sliding_windows",
    "sliding_window_diagram",
    "sliding_window_animation",
    "SlidingWindowAnimation",
    "padding_modes_figure",
    "conv_explorer",
    "ConvExplorer",
]

# Colours: padded cells are grey and hatched everywhere in the book, input cells white, each
# output gets its own colour (cycled) so that its lines and its window can be told apart.
INPUT_FACE = "#ffffff"
PAD_FACE = "#d9d9d9"
PAD_HATCH = "///"
OUTPUT_FACE = "#fff2cc"
WINDOW_FACE = "#9ecae1"
EDGE = "#333333"
# lighter hatching where the Patch API allows it (``hatchcolor`` is new in matplotlib 3.10)
_HATCH_KW: dict[str, Any] = (
    {"hatchcolor": "#9a9a9a"} if hasattr(Rectangle, "set_hatchcolor") else {}
)
_CYCLE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")

# rows of the diagram (bottom edge of each row of unit cells)
_INPUT_Y = 2.2
_WEIGHT_Y = 1.1
_OUTPUT_Y = 0.0


def _fmt(value: float | np.number[Any]) -> str:
    """Integers without a decimal point, other numbers with 3 significant digits."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def _padding_label(padding: IntOrTuple | str, before: int, after: int) -> str:
    if isinstance(padding, str):
        return f"'{padding}' ({before}, {after})" if before != after else f"'{padding}' ({before})"
    return str(before)


class _Geometry:
    """Everything about a 1-D sliding window that does not depend on values."""

    def __init__(
        self,
        length: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple,
        padding: IntOrTuple | str,
        dilation: IntOrTuple,
    ) -> None:
        self.length = positive_int(length, "length")
        (self.k,) = ntuple(kernel_size, 1, "kernel_size")
        (self.s,) = ntuple(stride, 1, "stride")
        (self.d,) = ntuple(dilation, 1, "dilation")
        ((self.before, self.after),) = padding_pairs(padding, (self.k,), (self.s,), (self.d,))
        self.padding = padding
        # conv_output_size raises a ValueError naming the sizes if the kernel does not fit
        self.n_out: int = conv_output_size(self.length, self.k, self.s, padding, self.d)
        # input index read by tap t of output i (negative or >= length: a padded cell)
        self.windows = [
            [i * self.s - self.before + t * self.d for t in range(self.k)]
            for i in range(self.n_out)
        ]
        self.first = -self.before
        self.last = self.length - 1 + self.after

    def is_pad(self, index: int) -> bool:
        return index < 0 or index >= self.length

    def output_center(self, i: int) -> float:
        # centre of output i: the middle of the (dilated) window it reads
        return self.windows[i][0] + self.d * (self.k - 1) / 2 + 0.5

    def label(self) -> str:
        p = _padding_label(self.padding, self.before, self.after)
        return f"L={self.length}, k={self.k}, s={self.s}, p={p}, d={self.d}  \u2192  L_out={self.n_out}"


def sliding_windows(
    length: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
) -> list[list[int]]:
    """Input indices read by every output of a 1-D convolution.

    Output ``i`` reads the inputs ``i*s - p + t*d`` for ``t = 0 .. k-1`` (``p`` is the padding
    before the input); indices below 0 or at least ``length`` are padded cells.

    Parameters
    ----------
    length : int
        Input length ``L``.
    kernel_size, stride, dilation : int
    padding : int, ``"same"`` or ``"valid"``

    Returns
    -------
    list of list of int
        One list of ``kernel_size`` indices per output; there are
        ``conv_output_size(length, kernel_size, stride, padding, dilation)`` of them.

    Examples
    --------
    >>> sliding_windows(6, 3, stride=3)
    [[0, 1, 2], [3, 4, 5]]
    >>> sliding_windows(6, 3, dilation=2)
    [[0, 2, 4], [1, 3, 5]]
    >>> sliding_windows(4, 3, padding=1)
    [[-1, 0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4]]
    """
    return _Geometry(length, kernel_size, stride, padding, dilation).windows


def _values(
    geo: _Geometry,
    x: npt.ArrayLike | None,
    weight: npt.ArrayLike | None,
    bias: float | None,
    padding_mode: str,
) -> tuple[Array | None, Array | None, Array | None]:
    """Padded input values and outputs, computed by convlab's own pad_input and conv1d."""
    padded: Array | None
    outputs: Array | None
    w: Array | None
    padded = outputs = w = None
    if x is not None:
        x = float_array(x, "x")
        check_rank(x, (1,), "x", "(L,)")
        if x.shape[0] != geo.length:
            raise ValueError(f"x has {x.shape[0]} values but length is {geo.length}")
        pairs = ((geo.before, geo.after),)
        if padding_mode != "zeros":
            _check_pad_fits((geo.length,), pairs, padding_mode, ("L",))
        padded = pad_input(x[None, None], pairs, padding_mode)[0, 0]
    if weight is not None:
        w = float_array(weight, "weight")
        check_rank(w, (1,), "weight", "(kernel_size,)")
        if w.shape[0] != geo.k:
            raise ValueError(f"weight has {w.shape[0]} taps but kernel_size is {geo.k}")
    if x is not None and w is not None:
        b = None if bias is None else [float(bias)]
        outputs = conv1d(
            x[None, None],
            w[None, None].astype(x.dtype),
            b,
            geo.s,
            geo.padding,
            geo.d,
            padding_mode=padding_mode,
        )[0, 0]
    return padded, w, outputs


def _source_labels(geo: _Geometry, padding_mode: str) -> list[str]:
    """What a cell holds when no values are given: ``x_j`` (or 0 for zero padding)."""
    pairs = ((geo.before, geo.after),)
    if padding_mode != "zeros":
        _check_pad_fits((geo.length,), pairs, padding_mode, ("L",))
    source = pad_input(np.arange(geo.length, dtype=np.float64)[None, None], pairs, padding_mode)[
        0, 0
    ]
    labels = []
    for pos, j in enumerate(range(geo.first, geo.last + 1)):
        if geo.is_pad(j) and padding_mode == "zeros":
            labels.append("0")
        else:
            labels.append(f"$x_{{{int(source[pos])}}}$")
    return labels


def sliding_window_diagram(
    length: int,
    kernel_size: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    *,
    x: npt.ArrayLike | None = None,
    weight: npt.ArrayLike | None = None,
    bias: float | None = None,
    padding_mode: str = "zeros",
    highlight: int | None = None,
    links: bool = True,
    title: bool | str = True,
    ax: Axes | None = None,
) -> Axes:
    """Draw which input cells feed which output of a 1-D convolution.

    The top row holds the input (padded cells grey and hatched), the bottom row the outputs; a line
    joins every output to each input cell its window reads, one colour per output.

    Parameters
    ----------
    length : int
        Input length ``L``.
    kernel_size, stride, dilation : int
    padding : int, ``"same"`` or ``"valid"``
        ``"same"`` with an even span puts the extra cell at the end, as PyTorch does.
    x : array_like, shape (length,), optional
        Input values to write in the cells; without them cells read ``x_0, x_1, ...``.
    weight : array_like, shape (kernel_size,), optional
        Kernel; with ``x`` the outputs of :func:`convlab.conv1d` are written in the output cells.
    bias : float, optional
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        What the padded cells hold (their values come from :func:`convlab.conv.pad_input`).
    highlight : int, optional
        Fill the window of this output with its colour and thin the other lines.
    links : bool
        Draw the lines from windows to outputs.
    title : bool or str
        ``True`` writes the parameters and the output length; a string replaces it.
    ax : matplotlib.axes.Axes, optional
        Draw here; by default a new pyplot figure sized to the diagram.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    ValueError, TypeError
        For a bad size, a kernel larger than the padded input, ``"same"`` with a stride, values of
        the wrong length or a padding mode the input is too short for.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> ax = sliding_window_diagram(6, 3, stride=3)
    >>> sorted(a.get_gid() for a in ax.patches if a.get_gid().startswith("output"))
    ['output:0', 'output:1']
    """
    geo = _Geometry(length, kernel_size, stride, padding, dilation)
    padding_mode = check_padding_mode(padding_mode)
    padded, w, outputs = _values(geo, x, weight, bias, padding_mode)
    if highlight is not None:
        if isinstance(highlight, bool) or not isinstance(highlight, (numbers.Integral, np.integer)):
            raise TypeError(f"highlight must be an output index (int), got {highlight!r}")
        if not 0 <= highlight < geo.n_out:
            raise ValueError(
                f"highlight must be an output index in [0, {geo.n_out}), got {highlight}"
            )

    n_cells = geo.last - geo.first + 1
    if ax is None:
        import matplotlib.pyplot as plt

        width = min(0.55 * (n_cells + 2.5), 16)
        _, ax = plt.subplots(figsize=(width, 2.3 if title else 2.0))

    labels = _source_labels(geo, padding_mode) if padded is None else [_fmt(v) for v in padded]
    window: set[int] = set(geo.windows[highlight]) if highlight is not None else set()
    for pos, j in enumerate(range(geo.first, geo.last + 1)):
        pad = geo.is_pad(j)
        face = PAD_FACE if pad else INPUT_FACE
        if highlight is not None and j in window:  # (window is empty without highlight)
            face = _CYCLE[highlight % len(_CYCLE)]
        ax.add_patch(
            Rectangle(
                (j, _INPUT_Y),
                1,
                1,
                facecolor=face,
                edgecolor=EDGE,
                hatch=PAD_HATCH if pad else None,
                alpha=0.55 if j in window else 1,
                **(_HATCH_KW if pad else {}),
                gid=f"{'pad' if pad else 'input'}:{j}",
            )
        )
        ax.text(
            j + 0.5,
            _INPUT_Y + 0.5,
            labels[pos],
            ha="center",
            va="center",
            fontsize=9,
            gid=f"input-value:{j}",
        )
        if not pad:
            ax.text(
                j + 0.5,
                _INPUT_Y + 1.15,
                str(j),
                ha="center",
                va="bottom",
                fontsize=MIN_FONTSIZE,
                color="0.4",
            )

    for i, win in enumerate(geo.windows):
        cx = geo.output_center(i)
        colour = _CYCLE[i % len(_CYCLE)]
        ax.add_patch(
            Rectangle(
                (cx - 0.5, _OUTPUT_Y),
                1,
                1,
                facecolor=OUTPUT_FACE,
                edgecolor=colour,
                linewidth=1.6,
                gid=f"output:{i}",
            )
        )
        text = _fmt(outputs[i]) if outputs is not None else f"$y_{{{i}}}$"
        ax.text(
            cx, _OUTPUT_Y + 0.5, text, ha="center", va="center", fontsize=9, gid=f"output-value:{i}"
        )
        if not links:
            continue
        faded = highlight is not None and i != highlight
        for j in win:
            ax.plot(
                [j + 0.5, cx],
                [_INPUT_Y, _OUTPUT_Y + 1],
                color=colour,
                linewidth=0.7 if faded else 1.4,
                alpha=0.25 if faded else 0.85,
                gid=f"link:{i}:{j}",
            )

    left = geo.first - 0.2
    ax.text(left, _INPUT_Y + 0.5, "input", ha="right", va="center", fontsize=9)
    ax.text(left, _OUTPUT_Y + 0.5, "output", ha="right", va="center", fontsize=9)
    if w is not None:
        ax.text(
            geo.last + 1.2,
            _OUTPUT_Y + 0.5,
            "w = [" + ", ".join(_fmt(v) for v in w) + "]",
            ha="left",
            va="center",
            fontsize=8,
            color="0.3",
        )
    if title:
        ax.set_title(geo.label() if title is True else str(title), fontsize=9)
    right = geo.last + (4.5 if w is not None else 1.2)
    right = max(right, max(geo.output_center(i) for i in range(geo.n_out)) + 0.7)
    ax.set_xlim(geo.first - 2.6, right)
    ax.set_ylim(_OUTPUT_Y - 0.2, _INPUT_Y + 1.6)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


class SlidingWindowAnimation(FuncAnimation):
    """A ``FuncAnimation`` of a 1-D kernel sliding over its input, one frame per output.

    Built by :func:`sliding_window_animation`. Besides the animation it keeps what it shows:
    ``windows`` (input indices per output), ``padded`` (the padded input), ``weight``,
    ``outputs`` (from :func:`convlab.conv1d`) and ``n_frames``; :meth:`draw_frame` draws one frame.
    """

    def __init__(
        self,
        geo: _Geometry,
        padded: Array,
        weight: Array,
        outputs: Array,
        bias: float | None,
        interval: int,
        dpi: float,
    ) -> None:
        self.geometry = geo
        self.windows = geo.windows
        self.padded = padded
        self.weight = weight
        self.outputs = outputs
        self.bias = bias
        self.n_frames = geo.n_out
        n_cells = geo.last - geo.first + 1
        # a plain Figure, not a pyplot one: the notebook shows the animation's HTML, not a stray
        # static copy of the figure.
        fig = Figure(figsize=(min(0.55 * (n_cells + 3), 12), 2.7), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        self.ax = ax
        self._cells: dict[int, Rectangle] = {}
        for pos, j in enumerate(range(geo.first, geo.last + 1)):
            pad = geo.is_pad(j)
            rect = Rectangle(
                (j, _INPUT_Y),
                1,
                1,
                facecolor=PAD_FACE if pad else INPUT_FACE,
                edgecolor=EDGE,
                hatch=PAD_HATCH if pad else None,
                **(_HATCH_KW if pad else {}),
                gid=f"{'pad' if pad else 'input'}:{j}",
            )
            ax.add_patch(rect)
            self._cells[j] = rect
            ax.text(
                j + 0.5, _INPUT_Y + 0.5, _fmt(padded[pos]), ha="center", va="center", fontsize=9
            )
        self._taps: list[tuple[Rectangle, Text]] = []
        for t in range(geo.k):
            rect = Rectangle(
                (0, _WEIGHT_Y), 1, 0.8, facecolor=WINDOW_FACE, edgecolor=EDGE, gid=f"weight:{t}"
            )
            ax.add_patch(rect)
            label = ax.text(
                0,
                _WEIGHT_Y + 0.4,
                _fmt(weight[t]),
                ha="center",
                va="center",
                fontsize=8,
                color="#08306b",
            )
            self._taps.append((rect, label))
        self._outs: list[tuple[Rectangle, Text]] = []
        for i in range(geo.n_out):
            cx = geo.output_center(i)
            rect = Rectangle(
                (cx - 0.5, _OUTPUT_Y - 0.3),
                1,
                0.9,
                facecolor=INPUT_FACE,
                edgecolor=EDGE,
                gid=f"output:{i}",
            )
            ax.add_patch(rect)
            label = ax.text(cx, _OUTPUT_Y + 0.15, "", ha="center", va="center", fontsize=9)
            self._outs.append((rect, label))
        left = geo.first - 0.2
        ax.text(left, _INPUT_Y + 0.5, "input", ha="right", va="center", fontsize=8)
        ax.text(left, _WEIGHT_Y + 0.4, "kernel", ha="right", va="center", fontsize=8)
        ax.text(left, _OUTPUT_Y + 0.15, "output", ha="right", va="center", fontsize=8)
        self._sum = ax.text(
            geo.first - 2.4, _OUTPUT_Y - 0.75, "", ha="left", va="center", fontsize=8
        )
        ax.set_xlim(geo.first - 2.5, max(geo.last + 1.5, geo.output_center(geo.n_out - 1) + 1))
        ax.set_ylim(_OUTPUT_Y - 1.1, _INPUT_Y + 1.2)
        ax.axis("off")
        super().__init__(
            fig, self.draw_frame, frames=geo.n_out, interval=interval, repeat=True, blit=False
        )

    def products(self, i: int) -> list[tuple[float, float]]:
        """``[(x, w), ...]`` multiplied for output ``i``."""
        geo = self.geometry
        return [(self.padded[j - geo.first], self.weight[t]) for t, j in enumerate(self.windows[i])]

    def draw_frame(self, i: int) -> list[Rectangle | Text]:
        """Draw frame ``i``: window of output ``i`` highlighted, outputs ``0..i`` filled in."""
        geo = self.geometry
        window = set(self.windows[i])
        for j, rect in self._cells.items():
            base = PAD_FACE if geo.is_pad(j) else INPUT_FACE
            rect.set_facecolor(WINDOW_FACE if j in window else base)
        for (rect, label), j in zip(self._taps, self.windows[i], strict=True):
            rect.set_x(j)
            label.set_x(j + 0.5)
        for m, (rect, label) in enumerate(self._outs):
            rect.set_facecolor(WINDOW_FACE if m == i else (OUTPUT_FACE if m < i else INPUT_FACE))
            label.set_text(_fmt(self.outputs[m]) if m <= i else "")
        terms = " + ".join(f"{_fmt(a)}\u00d7{_fmt(b)}" for a, b in self.products(i))
        if self.bias is not None:
            terms += f" + {_fmt(self.bias)}"
        self._sum.set_text(f"y[{i}] = {terms} = {_fmt(self.outputs[i])}")
        return (
            list(self._cells.values())
            + [a for pair in self._taps + self._outs for a in pair]
            + [self._sum]
        )

    def highlighted(self) -> list[int]:
        """Input indices currently filled as the window (for tests)."""
        return sorted(
            j
            for j, rect in self._cells.items()
            if np.allclose(rect.get_facecolor()[:3], _rgb(WINDOW_FACE))
        )


def _rgb(colour: str) -> tuple[float, float, float]:
    from matplotlib.colors import to_rgb

    rgb: tuple[float, float, float] = to_rgb(colour)  # Any with matplotlib 3.7
    return rgb


def sliding_window_animation(
    x: npt.ArrayLike,
    weight: npt.ArrayLike,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    *,
    bias: float | None = None,
    padding_mode: str = "zeros",
    interval: int = 900,
    dpi: int = 100,
) -> SlidingWindowAnimation:
    """Animate a 1-D convolution: the kernel slides, one frame per output.

    Each frame highlights the window, moves the kernel under it, writes the products and their sum
    and fills in the outputs computed so far. Embed it in a notebook with
    ``display(HTML(anim.to_jshtml()))``: the frames are stored as PNGs in the HTML, so it plays on
    a static page. Keep inputs short (a dozen cells): every frame is one image.

    Parameters
    ----------
    x : array_like, shape (L,)
    weight : array_like, shape (k,)
    stride, dilation : int
    padding : int, ``"same"`` or ``"valid"``
    bias : float, optional
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
    interval : int
        Milliseconds between frames.
    dpi : int
        Resolution of the frames (the embedded HTML grows with its square). At the default 100,
        as for the book's figures, the 8-point labels are 8 points on the page.

    Returns
    -------
    SlidingWindowAnimation
        A ``matplotlib.animation.FuncAnimation`` with ``n_frames`` equal to the output length.

    Examples
    --------
    >>> anim = sliding_window_animation([1, 2, 3, 4, 5, 6], [2, 2, 2])
    >>> anim.n_frames, anim.outputs.tolist()
    (4, [12.0, 18.0, 24.0, 30.0])
    >>> anim.draw_frame(1)[-1].get_text()
    'y[1] = 2×2 + 3×2 + 4×2 = 18'
    >>> anim._draw_was_started = True  # silence matplotlib's "deleted without rendering" warning
    """
    x_arr = float_array(x, "x")
    check_rank(x_arr, (1,), "x", "(L,)")
    w_arr = float_array(weight, "weight")
    check_rank(w_arr, (1,), "weight", "(kernel_size,)")
    if x_arr.shape[0] == 0:
        raise ValueError("x must have at least one value, got shape (0,)")
    if w_arr.shape[0] == 0:
        raise ValueError("weight must have at least one tap, got shape (0,)")
    geo = _Geometry(x_arr.shape[0], w_arr.shape[0], stride, padding, dilation)
    padding_mode = check_padding_mode(padding_mode)
    positive_int(interval, "interval")
    positive_int(dpi, "dpi")
    padded, w, outputs = _values(geo, x_arr, w_arr, bias, padding_mode)
    assert padded is not None and w is not None and outputs is not None  # x and weight given
    return SlidingWindowAnimation(
        geo, padded, w, outputs, None if bias is None else float(bias), interval, dpi
    )


def padding_modes_figure(
    x: npt.ArrayLike, pad: IntOrTuple, modes: str | Sequence[str] = PADDING_MODES
) -> Figure:
    """Draw a small 1-D or 2-D array padded in each padding mode, values written in the cells.

    The padded arrays come from :func:`convlab.conv.pad_input`, the function
    :func:`convlab.conv1d`/``conv2d``/``conv3d`` pad with, so the figure shows exactly what a
    convolution with ``padding_mode=...`` sees. Padded cells are grey and hatched; the original
    array is outlined.

    Parameters
    ----------
    x : array_like, shape (L,) or (H, W)
    pad : int or tuple of int
        Cells added on each side (per dimension). ``reflect`` needs ``pad < size``, ``circular``
        needs ``pad <= size`` (as in PyTorch).
    modes : sequence of str
        Which of ``"zeros"``, ``"reflect"``, ``"replicate"``, ``"circular"`` to draw.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per mode, titled with the mode.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> fig = padding_modes_figure([1, 2, 3], 2)
    >>> [ax.get_title() for ax in fig.axes]
    ['zeros', 'reflect', 'replicate', 'circular']
    """
    arr = float_array(x, "x")
    check_rank(arr, (1, 2), "x", "(L,) or (H, W)")
    if 0 in arr.shape:
        raise ValueError(f"x must not be empty, got shape {arr.shape}")
    pads = ntuple(pad, arr.ndim, "pad", allow_zero=True)
    if isinstance(modes, str):
        modes = (modes,)
    modes = tuple(check_padding_mode(m) for m in modes)
    if not modes:
        raise ValueError("modes must name at least one padding mode")
    pairs = tuple((p, p) for p in pads)
    for mode in modes:
        if mode != "zeros":
            _check_pad_fits(arr.shape, pairs, mode, ("L",) if arr.ndim == 1 else ("H", "W"))
    grid = arr if arr.ndim == 2 else arr[None]
    grid_pairs = pairs if arr.ndim == 2 else ((0, 0),) + pairs
    rows, cols = grid.shape[0] + 2 * grid_pairs[0][0], grid.shape[1] + 2 * grid_pairs[1][0]

    import matplotlib.pyplot as plt

    if arr.ndim == 1:
        nrows, ncols = len(modes), 1
        figsize = (min(0.5 * cols + 0.6, 14), 0.75 * len(modes) + 0.1)
    else:
        ncols = min(2, len(modes))
        nrows = -(-len(modes) // ncols)
        figsize = (min(ncols * (0.45 * cols + 0.4), 14), nrows * (0.45 * rows + 0.5))
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    fontsize = 9 if max(rows, cols) <= 10 else 7
    # an odd number of modes leaves the grid one panel more than there are modes
    for ax, mode in zip(axes.ravel(), modes, strict=False):
        if arr.ndim == 1:
            padded = pad_input(arr[None, None], pairs, mode)[0, 0][None]
        else:
            padded = pad_input(arr[None, None], pairs, mode)[0, 0]
        (top, _), (left, _) = grid_pairs
        for r in range(rows):
            for c in range(cols):
                inside = top <= r < top + grid.shape[0] and left <= c < left + grid.shape[1]
                ax.add_patch(
                    Rectangle(
                        (c, r),
                        1,
                        1,
                        facecolor=INPUT_FACE if inside else PAD_FACE,
                        edgecolor=EDGE,
                        linewidth=0.6,
                        hatch=None if inside else PAD_HATCH,
                        **({} if inside else _HATCH_KW),
                        gid=f"{'input' if inside else 'pad'}:{r}:{c}",
                    )
                )
                ax.text(
                    c + 0.5,
                    r + 0.5,
                    _fmt(padded[r, c]),
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    gid=f"value:{r}:{c}",
                )
        ax.add_patch(
            Rectangle(
                (left, top),
                grid.shape[1],
                grid.shape[0],
                fill=False,
                edgecolor="#d62728",
                linewidth=2,
                gid="original",
            )
        )
        ax.set_xlim(-0.05, cols + 0.05)
        ax.set_ylim(rows + 0.05, -0.05)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(mode, fontsize=9)
    for ax in axes.ravel()[len(modes) :]:
        ax.remove()
    fig.tight_layout()
    return fig


class ConvExplorer:
    """Sliders for ``(L, k, s, p, d)`` redrawing :func:`sliding_window_diagram`.

    Built by :func:`conv_explorer`. ``sliders`` maps parameter names to the ipywidgets sliders,
    ``same`` is the ``padding='same'`` checkbox, ``widget`` the box to display; after every change
    :meth:`update` stores ``result`` (the output of :func:`convlab.conv1d` on ``[1..L]`` with all
    weights 2, or ``None``), ``message`` (what is printed) and ``figure``.
    """

    def __init__(
        self,
        widgets: Any,
        length: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        max_length: int,
    ) -> None:
        def slider(value: int, lo: int, hi: int, description: str) -> Any:
            return widgets.IntSlider(
                value=value,
                min=lo,
                max=hi,
                step=1,
                description=description,
                continuous_update=False,
            )

        self.sliders = {
            "length": slider(length, 1, max_length, "L (input)"),
            "kernel_size": slider(kernel_size, 1, 7, "k (kernel)"),
            "stride": slider(stride, 1, 4, "s (stride)"),
            "padding": slider(padding, 0, 4, "p (padding)"),
            "dilation": slider(dilation, 1, 4, "d (dilation)"),
        }
        self.same = widgets.Checkbox(value=False, description="padding='same'")
        self.output = widgets.Output()
        self.result: Array | None = None
        self.message = ""
        self.figure: Figure | None = None
        controls = list(self.sliders.values()) + [self.same]
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:3]), widgets.HBox(controls[3:]), self.output]
        )
        for control in controls:
            control.observe(self._changed, names="value")
        if not hasattr(self.widget, "_repr_mimebundle_"):
            # ipywidgets 7 (Google Colab ships 7.7) displays a widget only through its
            # _ipython_display_, which IPython prefers to _repr_mimebundle_ when both exist
            self._ipython_display_ = self.widget._ipython_display_
        self.update()

    def _changed(self, change: object) -> None:
        self.update()

    def params(self) -> dict[str, Any]:
        """The current ``(length, kernel_size, stride, padding, dilation)``."""
        p = {name: s.value for name, s in self.sliders.items()}
        if self.same.value:
            p["padding"] = "same"
        return p

    def update(self) -> None:
        """Recompute the output and redraw (called whenever a control changes)."""
        p = self.params()
        x = np.arange(1, p["length"] + 1, dtype=np.float64)
        w = np.full(p["kernel_size"], 2.0)
        fig = Figure(figsize=(min(0.55 * (p["length"] + 2 * 4 + 4), 14), 2.3))
        try:
            y = conv1d(x[None], w[None, None], None, p["stride"], p["padding"], p["dilation"])[0]
        except ValueError as exc:
            self.result = None
            self.message = f"no output: {exc}"
            ax = fig.add_subplot()
            ax.text(0.5, 0.5, self.message, ha="center", va="center", fontsize=9, wrap=True)
            ax.axis("off")
        else:
            self.result = y
            self.message = (
                f"conv1d([1..{p['length']}], weights all 2, stride={p['stride']}, "
                f"padding={p['padding']!r}, dilation={p['dilation']}) = "
                + np.array2string(y, precision=4, separator=", ")
            )
            sliding_window_diagram(
                p["length"],
                p["kernel_size"],
                p["stride"],
                p["padding"],
                p["dilation"],
                x=x,
                weight=w,
                ax=fig.add_subplot(),
            )
        self.figure = fig
        self._render()

    def _render(self) -> None:
        import io

        from IPython.core.getipython import get_ipython
        from IPython.display import Image, clear_output, display

        if get_ipython() is None:  # plain Python (tests): nothing to show the widget in
            return
        # a PNG, not the Figure itself: a Figure made without pyplot has no inline display
        # formatter until pyplot has been imported in the kernel
        buffer = io.BytesIO()
        cast("Figure", self.figure).savefig(buffer, format="png", dpi=90, bbox_inches="tight")
        with self.output:
            clear_output(wait=True)
            display(Image(data=buffer.getvalue(), format="png"))
            print(self.message)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        # ipywidgets 8; with ipywidgets 7, __init__ set _ipython_display_, which IPython calls first
        return self.widget._repr_mimebundle_(**kwargs)


def conv_explorer(
    length: int = 6,
    kernel_size: int = 3,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    max_length: int = 12,
) -> ConvExplorer:
    """An interactive sliding-window diagram: sliders for ``L``, ``k``, ``s``, ``p``, ``d``.

    Every change redraws :func:`sliding_window_diagram` for the input ``[1, 2, ..., L]`` with all
    weights 2 and prints what :func:`convlab.conv1d` returns (or why there is no output, e.g. a
    kernel wider than the padded input). Needs ipywidgets and a running kernel (Jupyter, Binder,
    Colab); on a static page the sliders do nothing.

    Parameters
    ----------
    length, kernel_size, stride, padding, dilation : int
        Initial slider positions.
    max_length : int
        Largest input length offered.

    Returns
    -------
    ConvExplorer
        Displays as the widget; ``explorer.sliders[name].value = ...`` changes it from code.

    Raises
    ------
    ImportError
        If ipywidgets is not installed (``pip install convlab[book]`` or ``pip install ipywidgets``).
    """
    try:
        import ipywidgets as widgets
    except ImportError as exc:
        raise ImportError(
            "conv_explorer needs ipywidgets, an optional dependency: install it with "
            "`pip install ipywidgets` (or `pip install convlab[book]`)"
        ) from exc
    max_length = positive_int(max_length, "max_length")
    length = positive_int(length, "length")
    if length > max_length:
        raise ValueError(f"length ({length}) must not exceed max_length ({max_length})")
    for name, value, lo, hi in (
        ("kernel_size", kernel_size, 1, 7),
        ("stride", stride, 1, 4),
        ("padding", padding, 0, 4),
        ("dilation", dilation, 1, 4),
    ):
        if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if not lo <= value <= hi:
            raise ValueError(f"{name} must be in [{lo}, {hi}] (the slider's range), got {value}")
    return ConvExplorer(widgets, length, kernel_size, stride, padding, dilation, max_length)

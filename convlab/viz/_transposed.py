"""Figures for transposed convolution: zero insertion, the matrix view, checkerboard overlaps.

Everything drawn is computed by the package. The zero-insertion construction of seed 001 (insert
``s - 1`` zeros between input elements, pad by ``k - 1 - p``, run a stride-1 convolution with the
kernel rotated by 180 degrees) is built by :func:`zero_insertion_steps`, whose last step is a
:func:`convlab.conv2d` call and whose result the chapter compares with
:func:`convlab.conv_transpose2d`; the matrices come from :func:`convlab.conv_matrix`; the overlap
counts are outputs of :func:`convlab.conv_transpose1d`/``2d`` and :func:`convlab.conv2d` applied
to all-ones inputs with all-ones kernels, so each count is the number of (input element, kernel
tap) pairs that land on an output element.

These helpers handle a single channel and square-or-rectangular 2-D arrays: they are for
teaching, the kernels themselves never insert zeros.

Artists carry ``gid`` labels so that tests (and readers) can ask a figure what it shows:

* :func:`zero_insertion_figure`: ``"<panel>:<kind>:r:c"`` for every cell, ``panel`` one of
  ``input``, ``spread`` (zeros inserted), ``padded``, ``kernel`` (rotated), ``output``; ``kind``
  is ``input``, ``zero`` (an inserted zero) or ``pad`` in the ``spread`` and ``padded`` panels and
  ``value`` elsewhere;
* :func:`zero_insertion_animation`: ``"padded:<kind>:r:c"`` and ``"output:value:r:c"`` cells,
  ``"window"`` for the outline of the current window;
* :func:`scatter_figure`: ``"stamp:<n>"`` / ``"sum"`` images (``AxesImage`` whose array is the
  stamp) and ``"crop"`` for the rectangle of the kept part;
* :func:`conv_matrix_figure`: ``"matrix"`` and ``"matrix_T"`` images (the dense ``W'`` and
  ``W'^T``);
* :func:`overlap_figure`: ``"footprint:<p>:<i>:<o>"`` for output cell ``o`` written by input
  ``i`` in panel ``p``, ``"count:<p>:<o>"`` for the count cells;
* :func:`coverage_figure`: ``"coverage:<p>"`` for each panel's image.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .._args import check_rank, float_array, ntuple, positive_int
from ..conv import conv2d
from ..matrix import conv_matrix
from ..shapes import conv_transpose_output_size
from ..transposed import conv_transpose1d, conv_transpose2d
from ._page import MIN_FONTSIZE, PAGE_WIDTH

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.text import Text
    from numpy.typing import NDArray

    from .._args import Array
    from ..shapes import IntOrTuple

__all__ = [
    "insert_zeros",
    "zero_insertion_steps",
    "ZeroInsertion",
    "zero_insertion_figure",
    "zero_insertion_animation",
    "ZeroInsertionAnimation",
    "scatter_stamps",
    "scatter_figure",
    "conv_matrix_figure",
    "transposed_coverage",
    "resize_conv_coverage",
    "overlap_figure",
    "coverage_figure",
]

EDGE = "#333333"
INPUT_FACE = "#c6dbef"  # the transposed convolution's input values
ZERO_FACE = "#ffffff"  # zeros inserted between them
PAD_FACE = "#d9d9d9"  # padding (hatched, as everywhere in the book)
PAD_HATCH = "///"
KERNEL_FACE = "#fde0c5"
OUTPUT_FACE = "#fff2cc"
WINDOW_FACE = "#9ecae1"
_HATCH_KW: dict[str, Any] = (
    {"hatchcolor": "#9a9a9a"} if hasattr(Rectangle, "set_hatchcolor") else {}
)
_FACES = {"input": INPUT_FACE, "zero": ZERO_FACE, "pad": PAD_FACE, "value": OUTPUT_FACE}
_CYCLE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _fmt(value: float | np.number[Any]) -> str:
    """Integers without a decimal point, other numbers with 3 significant digits."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def _plane(value: npt.ArrayLike, name: str) -> Array:
    arr = float_array(value, name)
    check_rank(arr, (2,), name, "(H, W): one channel, no batch dimension")
    if 0 in arr.shape:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    return arr


# --- the zero-insertion construction (seed 001) ----------------------------------------------------


def insert_zeros(x: npt.ArrayLike, stride: IntOrTuple) -> Array:
    """Put ``stride - 1`` zeros between neighbouring elements of a 2-D array.

    The first step of seed 001's construction of a transposed convolution: an ``H x W`` input
    becomes ``((H-1) s_h + 1) x ((W-1) s_w + 1)``, with the input values at the positions that are
    multiples of the stride. (This is why a transposed convolution is also called a *fractionally
    strided* convolution: a stride-1 convolution over the spread input moves by ``1/s`` of an
    input element per output.)

    Parameters
    ----------
    x : array_like, shape (H, W)
    stride : int or tuple of 2 ints, positive

    Returns
    -------
    numpy.ndarray
        float64 for integer input, else the input's float dtype.

    Examples
    --------
    >>> insert_zeros([[1, 2], [3, 4]], 2)
    array([[1., 0., 2.],
           [0., 0., 0.],
           [3., 0., 4.]])
    >>> insert_zeros([[1, 2, 3]], (1, 3)).tolist()
    [[1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 3.0]]
    """
    arr = _plane(x, "x")
    s = ntuple(stride, 2, "stride")
    out = np.zeros(((arr.shape[0] - 1) * s[0] + 1, (arr.shape[1] - 1) * s[1] + 1), dtype=arr.dtype)
    out[:: s[0], :: s[1]] = arr
    return out


ZeroInsertion = namedtuple(
    "ZeroInsertion",
    [
        "x",
        "kernel",
        "stride",
        "padding",
        "output_padding",
        "spread",
        "pad",
        "padded",
        "kinds",
        "flipped",
        "output",
    ],
)
ZeroInsertion.__doc__ = """The steps of seed 001's construction, as returned by :func:`zero_insertion_steps`.

``x``, ``kernel``: the inputs (2-D); ``stride``, ``padding``, ``output_padding``: 2-tuples;
``spread``: :func:`insert_zeros` of ``x``; ``pad``: ``((top, bottom), (left, right))`` added
around it, ``k - 1 - p`` before and ``k - 1 - p + a`` after; ``padded``: the padded array;
``kinds``: same shape, ``"input"``, ``"zero"`` (inserted) or ``"pad"`` per cell; ``flipped``:
the kernel rotated by 180 degrees; ``output``: the stride-1 convolution of ``padded`` with
``flipped``, which equals ``conv_transpose2d(x, kernel, stride, padding, output_padding)``.
"""


def zero_insertion_steps(
    x: npt.ArrayLike,
    kernel: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
) -> ZeroInsertion:
    """Seed 001's construction of a transposed convolution, one step at a time.

    1. insert ``s - 1`` zeros between neighbouring input elements (:func:`insert_zeros`);
    2. pad by ``k - 1 - p`` zeros on every side, plus ``a`` (``output_padding``) more at the
       bottom and right;
    3. run a stride-1, unpadded :func:`convlab.conv2d` with the kernel rotated by 180 degrees.

    The result is exactly ``conv_transpose2d(x, kernel, stride=s, padding=p, output_padding=a)``
    of size ``(i - 1) s + k - 2p + a`` (:func:`convlab.conv_transpose_output_size`). The rotation
    is needed because ``conv2d`` is a cross-correlation: the transposed convolution sends input
    element ``j`` times tap ``t`` to output ``j s + t - p``, so read from the output's side the
    taps come in reverse order.

    Parameters
    ----------
    x : array_like, shape (H, W)
        One channel of the transposed convolution's input.
    kernel : array_like, shape (kH, kW)
        The transposed convolution's kernel, as stored in its weight ``(C_in, C_out, kH, kW)``.
    stride : int or tuple of 2 ints, positive
    padding : int or tuple of 2 ints, ``0 <= p <= k - 1``
        The padding of the convolution being transposed; the construction pads ``k - 1 - p``.
    output_padding : int or tuple of 2 ints, ``0 <= a < s``

    Returns
    -------
    ZeroInsertion
        A named tuple of every intermediate array (see :class:`ZeroInsertion`).

    Raises
    ------
    ValueError
        For a padding above ``k - 1`` (the construction would have to crop, not pad) or an
        ``output_padding`` not smaller than the stride.

    Examples
    --------
    The seed's example: a 2x2 input, a 3x3 kernel, stride 2, no padding.

    >>> steps = zero_insertion_steps([[1, 2], [3, 4]], np.ones((3, 3)), stride=2)
    >>> steps.spread.shape, steps.pad, steps.padded.shape, steps.output.shape
    ((3, 3), ((2, 2), (2, 2)), (7, 7), (5, 5))
    >>> steps.output[0].tolist()
    [1.0, 1.0, 3.0, 2.0, 2.0]
    """
    arr = _plane(x, "x")
    w = _plane(kernel, "kernel").astype(arr.dtype)
    k = w.shape
    s = ntuple(stride, 2, "stride")
    p = ntuple(padding, 2, "padding", allow_zero=True)
    a = ntuple(output_padding, 2, "output_padding", allow_zero=True)
    for kk, pp in zip(k, p, strict=True):
        if pp > kk - 1:
            raise ValueError(
                f"padding {p} must be at most kernel_size - 1 = {kk - 1} for the zero-insertion "
                f"construction (it pads by k - 1 - p = {kk - 1 - pp}, which must not be negative)"
            )
    # validates output_padding < stride (PyTorch's rule) and gives the size the result must have
    expected = conv_transpose_output_size(arr.shape, k, s, p, a)
    spread = insert_zeros(arr, s)
    pad = tuple((kk - 1 - pp, kk - 1 - pp + aa) for kk, pp, aa in zip(k, p, a, strict=True))
    padded = np.pad(spread, pad)
    kinds = np.full(padded.shape, "pad", dtype="<U5")
    inner = kinds[pad[0][0] : pad[0][0] + spread.shape[0], pad[1][0] : pad[1][0] + spread.shape[1]]
    inner[...] = "zero"
    inner[:: s[0], :: s[1]] = "input"
    flipped = np.ascontiguousarray(w[::-1, ::-1])
    output = conv2d(padded[None, None], flipped[None, None])[0, 0]
    assert output.shape == tuple(expected), (output.shape, expected)
    return ZeroInsertion(arr, w, s, p, a, spread, pad, padded, kinds, flipped, output)


def _grid(
    ax: Axes,
    values: NDArray[Any],
    x0: float,
    panel: str,
    kinds: NDArray[np.str_] | None = None,
    fontsize: float = 9,
    y0: float = 0.0,
) -> dict[tuple[int, int], Rectangle]:
    """Draw ``values`` as unit cells with their numbers, top-left corner at ``(x0, y0)``."""
    cells: dict[tuple[int, int], Rectangle] = {}
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            kind = "value" if kinds is None else str(kinds[r, c])
            pad = kind == "pad"
            face = (
                _FACES[kind]
                if kinds is not None
                else (
                    KERNEL_FACE
                    if panel == "kernel"
                    else INPUT_FACE
                    if panel == "input"
                    else OUTPUT_FACE
                )
            )
            rect = Rectangle(
                (x0 + c, y0 + r),
                1,
                1,
                facecolor=face,
                edgecolor=EDGE,
                lw=0.8,
                hatch=PAD_HATCH if pad else None,
                **(_HATCH_KW if pad else {}),
                gid=f"{panel}:{kind}:{r}:{c}",
            )
            ax.add_patch(rect)
            cells[(r, c)] = rect
            ax.text(
                x0 + c + 0.5,
                y0 + r + 0.5,
                _fmt(values[r, c]),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="0.55" if kind in ("zero", "pad") else "black",
            )
    return cells


def zero_insertion_figure(
    x: npt.ArrayLike,
    kernel: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
) -> Figure:
    """The zero-insertion construction drawn step by step, values written in the cells.

    Five panels from left to right: the input, the input with ``s - 1`` zeros inserted (blue:
    input values, white: inserted zeros), the padded array (grey hatched: the ``k - 1 - p``
    padding), the kernel rotated by 180 degrees, and the output of the stride-1 convolution, all
    from :func:`zero_insertion_steps`.

    Parameters
    ----------
    x, kernel, stride, padding, output_padding
        As in :func:`zero_insertion_steps`.

    Returns
    -------
    matplotlib.figure.Figure
        One Axes holding the five grids, cells labelled as in the module docstring; the steps are
        attached as ``fig.steps``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = zero_insertion_figure([[1, 2], [3, 4]], np.ones((3, 3)), stride=2)
    >>> gids = [p.get_gid() for p in fig.axes[0].patches]
    >>> sum(g.startswith("padded:input") for g in gids), sum(g.startswith("padded:pad") for g in gids)
    (4, 40)
    """
    import matplotlib.pyplot as plt

    steps = zero_insertion_steps(x, kernel, stride, padding, output_padding)
    panels = [
        ("input", steps.x, None, "input"),
        (
            "spread",
            steps.spread,
            steps.kinds[
                steps.pad[0][0] : steps.pad[0][0] + steps.spread.shape[0],
                steps.pad[1][0] : steps.pad[1][0] + steps.spread.shape[1],
            ],
            f"insert s-1 = {steps.stride[1] - 1} zero(s)",
        ),
        (
            "padded",
            steps.padded,
            steps.kinds,
            f"pad k-1-p = {steps.pad[1][0]}"
            + (f" (+{steps.output_padding[1]} at the end)" if any(steps.output_padding) else ""),
        ),
        ("kernel", steps.flipped, None, "kernel rotated 180°"),
        ("output", steps.output, None, "stride-1 conv"),
    ]
    gap = 1.6
    width = sum(v.shape[1] for _, v, _, _ in panels) + gap * (len(panels) - 1)
    height = max(v.shape[0] for _, v, _, _ in panels)
    # inches per cell: as large as the page allows (the seed's five grids span 26 cells: 0.28 in,
    # room for an 8-point "-36")
    cell = min(0.42, (PAGE_WIDTH - 0.4) / width)
    fig = plt.figure(figsize=(cell * width + 0.4, cell * height + 1.0))
    ax = fig.add_axes((0.01, 0.01, 0.98, 0.86))
    x0 = 0.0
    for name, values, kinds, title in panels:
        y0 = (height - values.shape[0]) / 2
        _grid(ax, values, x0, name, kinds, fontsize=MIN_FONTSIZE, y0=y0)
        ax.text(
            x0 + values.shape[1] / 2,
            -0.35,
            f"{title}\n{values.shape[0]}×{values.shape[1]}",
            ha="center",
            va="bottom",
            fontsize=MIN_FONTSIZE,
        )
        if name != "output":
            ax.annotate(
                "",
                xy=(x0 + values.shape[1] + gap - 0.3, height / 2),
                xytext=(x0 + values.shape[1] + 0.3, height / 2),
                arrowprops=dict(arrowstyle="->", color="0.3"),
            )
        x0 += values.shape[1] + gap
    ax.set_xlim(-0.2, width + 0.2)
    ax.set_ylim(height + 0.2, -1.6)
    ax.set_aspect("equal")
    ax.axis("off")
    cast(Any, fig).steps = steps  # an attribute matplotlib's Figure does not declare
    return fig


class ZeroInsertionAnimation(FuncAnimation):
    """A ``FuncAnimation`` of the stride-1 convolution step of the zero-insertion construction.

    Built by :func:`zero_insertion_animation`; one frame per output element, in row-major order.
    Keeps ``steps`` (the :class:`ZeroInsertion`) and ``n_frames``; :meth:`draw_frame` draws a
    frame and :meth:`terms` lists the products that are not zero for one output.
    """

    def __init__(self, steps: ZeroInsertion, interval: int, dpi: float) -> None:
        self.steps = steps
        out = steps.output
        self.n_frames = out.size
        ph, pw = steps.padded.shape
        oh, ow = out.shape
        gap = 2.0
        width, height = pw + gap + ow, max(ph, oh)
        # a plain Figure, not a pyplot one: the notebook shows the animation's HTML only
        # 0.45 inches per cell: room for a tap's 8-point number in the corner next to the value
        fig = Figure(figsize=(0.45 * width + 0.3, 0.45 * height + 1.0), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        self.ax = ax
        self._padded = _grid(
            ax, steps.padded, 0.0, "padded", steps.kinds, fontsize=8, y0=(height - ph) / 2
        )
        self._out_x0, self._out_y0 = pw + gap, (height - oh) / 2
        self._outputs: dict[tuple[int, int], tuple[Rectangle, Text]] = {}
        for r in range(oh):
            for c in range(ow):
                rect = Rectangle(
                    (self._out_x0 + c, self._out_y0 + r),
                    1,
                    1,
                    facecolor=ZERO_FACE,
                    edgecolor=EDGE,
                    lw=0.8,
                    gid=f"output:value:{r}:{c}",
                )
                ax.add_patch(rect)
                label = ax.text(
                    self._out_x0 + c + 0.5,
                    self._out_y0 + r + 0.5,
                    "",
                    ha="center",
                    va="center",
                    fontsize=8,
                )
                self._outputs[(r, c)] = (rect, label)
        kh, kw = steps.flipped.shape
        self._pad_y0 = (height - ph) / 2
        self._window = Rectangle(
            (0, self._pad_y0), kw, kh, fill=False, edgecolor="#08519c", lw=2.2, gid="window"
        )
        ax.add_patch(self._window)
        self._taps = [
            ax.text(
                0,
                0,
                _fmt(steps.flipped[a, b]),
                ha="right",
                va="top",
                fontsize=MIN_FONTSIZE,
                color="#a63603",
                fontweight="bold",
            )
            for a in range(kh)
            for b in range(kw)
        ]
        ax.text(
            pw / 2,
            -0.3,
            "input, zeros inserted, padded\n(red: rotated kernel)",
            ha="center",
            va="bottom",
            fontsize=8,
        )
        ax.text(self._out_x0 + ow / 2, -0.3, "output", ha="center", va="bottom", fontsize=8)
        self._caption = ax.text(width / 2, height + 0.4, "", ha="center", va="top", fontsize=9)
        ax.set_xlim(-0.3, width + 0.3)
        ax.set_ylim(height + 1.2, -1.6)
        ax.axis("off")
        super().__init__(
            fig, self.draw_frame, frames=self.n_frames, interval=interval, repeat=True, blit=False
        )

    def position(self, frame: int) -> tuple[int, int]:
        """The output element ``(row, col)`` computed in ``frame``."""
        position: tuple[int, int] = divmod(int(frame), self.steps.output.shape[1])
        return position

    def terms(self, frame: int) -> list[tuple[float, float]]:
        """``[(input value, rotated tap), ...]`` for the window of ``frame`` where the input is not 0."""
        r, c = self.position(frame)
        kh, kw = self.steps.flipped.shape
        window = self.steps.padded[r : r + kh, c : c + kw]
        return [
            (window[a, b], self.steps.flipped[a, b])
            for a in range(kh)
            for b in range(kw)
            if window[a, b] != 0
        ]

    def draw_frame(self, frame: int) -> list[Artist]:
        """Draw ``frame``: its window outlined, outputs up to it filled in, the sum written out."""
        steps = self.steps
        r, c = self.position(frame)
        kh, kw = steps.flipped.shape
        for (i, j), rect in self._padded.items():
            inside = r <= i < r + kh and c <= j < c + kw
            base = _FACES[str(steps.kinds[i, j])]
            rect.set_facecolor(WINDOW_FACE if inside and steps.kinds[i, j] == "input" else base)
        self._window.set_xy((c, self._pad_y0 + r))
        for t, label in enumerate(self._taps):
            a, b = divmod(t, kw)
            label.set_position((c + b + 0.97, self._pad_y0 + r + a + 0.05))
        ow = steps.output.shape[1]
        for (i, j), (rect, label) in self._outputs.items():
            n = i * ow + j
            rect.set_facecolor(
                WINDOW_FACE if n == frame else (OUTPUT_FACE if n < frame else ZERO_FACE)
            )
            label.set_text(_fmt(steps.output[i, j]) if n <= frame else "")
        terms = self.terms(frame)
        text = " + ".join(f"{_fmt(v)}×{_fmt(w)}" for v, w in terms) if terms else "0"
        self._caption.set_text(f"y[{r}, {c}] = {text} = {_fmt(steps.output[r, c])}")
        return (
            list(self._padded.values())
            + [self._window, self._caption]
            + self._taps
            + [a for pair in self._outputs.values() for a in pair]
        )


def zero_insertion_animation(
    x: npt.ArrayLike,
    kernel: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    *,
    interval: int = 700,
    dpi: int = 100,
) -> ZeroInsertionAnimation:
    """Animate the last step of the zero-insertion construction: the stride-1 convolution.

    Each frame outlines one window on the zero-inserted, padded input, writes the rotated
    kernel's taps in its cells (small numbers), colours the input values the window covers, fills
    in the outputs computed so far and writes the sum of the non-zero products. Embed it with
    ``display(HTML(anim.to_jshtml()))``; every frame is a PNG in that HTML, so keep the input tiny
    (the seed's 2x2 gives 25 frames).

    Parameters
    ----------
    x, kernel, stride, padding, output_padding
        As in :func:`zero_insertion_steps`.
    interval : int
        Milliseconds between frames.
    dpi : int
        Resolution of the frames; at the default 100, as for the book's figures, the 8-point
        numbers are 8 points on the page.

    Returns
    -------
    ZeroInsertionAnimation

    Examples
    --------
    >>> anim = zero_insertion_animation([[1, 2], [3, 4]], np.arange(1, 10).reshape(3, 3), stride=2)
    >>> anim.n_frames, [(float(x), float(w)) for x, w in anim.terms(6)]  # only the input value 1
    (25, [(1.0, 5.0)])
    >>> anim._draw_was_started = True  # silence matplotlib's "deleted without rendering" warning
    """
    steps = zero_insertion_steps(x, kernel, stride, padding, output_padding)
    return ZeroInsertionAnimation(
        steps, positive_int(interval, "interval"), positive_int(dpi, "dpi")
    )


# --- the scatter view -------------------------------------------------------------------------------


def scatter_stamps(x: npt.ArrayLike, kernel: npt.ArrayLike, stride: IntOrTuple = 1) -> Array:
    """Each input element's copy of the kernel, placed where a transposed convolution adds it.

    The other way to read a transposed convolution (and how convlab's kernels compute it): input
    element ``(i, j)`` adds ``x[i, j] * kernel`` to the output block whose top-left corner is
    ``(i s_h, j s_w)``. Summing the stamps gives the full, uncropped result of size
    ``(H - 1) s + k``; a padding ``p`` then removes ``p`` rows and columns on each side.

    Parameters
    ----------
    x : array_like, shape (H, W)
    kernel : array_like, shape (kH, kW)
    stride : int or tuple of 2 ints

    Returns
    -------
    numpy.ndarray, shape (H * W, (H-1) s_h + kH, (W-1) s_w + kW)
        One full-size array per input element, in row-major order.

    Examples
    --------
    >>> stamps = scatter_stamps([[1, 2]], [[1, 1, 1]], stride=2)
    >>> stamps.tolist(), stamps.sum(axis=0).tolist()
    ([[[1.0, 1.0, 1.0, 0.0, 0.0]], [[0.0, 0.0, 2.0, 2.0, 2.0]]], [[1.0, 1.0, 3.0, 2.0, 2.0]])
    """
    arr = _plane(x, "x")
    w = _plane(kernel, "kernel").astype(arr.dtype)
    s = ntuple(stride, 2, "stride")
    full = ((arr.shape[0] - 1) * s[0] + w.shape[0], (arr.shape[1] - 1) * s[1] + w.shape[1])
    stamps = np.zeros((arr.size,) + full, dtype=arr.dtype)
    for n in range(arr.size):
        i, j = divmod(n, arr.shape[1])
        stamps[n, i * s[0] : i * s[0] + w.shape[0], j * s[1] : j * s[1] + w.shape[1]] = (
            arr[i, j] * w
        )
    return stamps


def scatter_figure(
    x: npt.ArrayLike,
    kernel: npt.ArrayLike,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    cmap: str = "RdBu_r",
) -> Figure:
    """One panel per input element's stamp (:func:`scatter_stamps`), then their sum.

    The last panel is the sum with the part a ``padding`` keeps outlined (the whole array for
    ``padding=0``); that part equals :func:`convlab.conv_transpose2d`, which the function checks.
    Values are written in the cells, blank where a stamp does not reach.

    Parameters
    ----------
    x : array_like, shape (H, W)
        Keep it tiny: one panel per element.
    kernel : array_like, shape (kH, kW)
    stride : int or tuple of 2 ints
    padding : int or tuple of 2 ints
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = scatter_figure([[1, 2], [3, 4]], np.ones((3, 3)), stride=2)
    >>> [im.get_gid() for ax in fig.axes for im in ax.images]
    ['stamp:0', 'stamp:1', 'stamp:2', 'stamp:3', 'sum']
    >>> fig.axes[-1].images[0].get_array()[2].tolist()
    [4.0, 4.0, 10.0, 6.0, 6.0]
    """
    import matplotlib.pyplot as plt

    arr = _plane(x, "x")
    stamps = scatter_stamps(arr, kernel, stride)
    p = ntuple(padding, 2, "padding", allow_zero=True)
    total = stamps.sum(axis=0)
    if any(2 * pp >= n for pp, n in zip(p, total.shape, strict=True)):
        raise ValueError(f"padding {p} removes the whole {total.shape} result (2p must be smaller)")
    kept = total[p[0] : total.shape[0] - p[0], p[1] : total.shape[1] - p[1]]
    w = _plane(kernel, "kernel")
    check = conv_transpose2d(
        arr[None, None], w[None, None].astype(arr.dtype), stride=stride, padding=p
    )[0, 0]
    np.testing.assert_allclose(kept, check, rtol=1e-12, atol=1e-12)
    limit = max(float(np.abs(total).max()), 1e-12)
    n = len(stamps) + 1
    panel = min(2.1, PAGE_WIDTH / n)  # the seed's five panels: 1.5 inches, 8-point numbers
    fig, grid = plt.subplots(1, n, figsize=(panel * n, panel + 0.6), squeeze=False)
    axes = list(grid[0])
    for idx, ax in enumerate(axes):
        data = total if idx == len(stamps) else stamps[idx]
        shown = np.ma.masked_where(data == 0, data) if idx < len(stamps) else data
        ax.imshow(
            shown,
            cmap=cmap,
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
            gid="sum" if idx == len(stamps) else f"stamp:{idx}",
        )
        for (r, c), v in np.ndenumerate(data):
            if idx == len(stamps) or v != 0:
                # white digits on the dark ends of the colour map, black on the light middle
                colour = "white" if abs(v) > 0.55 * limit else "black"
                ax.text(
                    c, r, _fmt(v), ha="center", va="center", fontsize=MIN_FONTSIZE, color=colour
                )
        if idx < len(stamps):
            i, j = divmod(idx, arr.shape[1])
            ax.set_title(f"x[{i},{j}] = {_fmt(arr[i, j])}\ntimes the kernel", fontsize=MIN_FONTSIZE)
        else:
            ax.set_title("sum" + (f", crop p = {p}" if any(p) else ""), fontsize=MIN_FONTSIZE)
            ax.add_patch(
                Rectangle(
                    (p[1] - 0.5, p[0] - 0.5),
                    kept.shape[1],
                    kept.shape[0],
                    fill=False,
                    edgecolor="black",
                    lw=2,
                    gid="crop",
                )
            )
        ax.set_xticks(np.arange(data.shape[1] + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(data.shape[0] + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="0.8", lw=0.5)
        ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    fig.tight_layout()
    return fig


# --- the matrix view ---------------------------------------------------------------------------------


def conv_matrix_figure(
    weight: npt.ArrayLike,
    input_shape: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    cmap: str = "RdBu_r",
    annotate: bool = True,
) -> Figure:
    """Heat maps of a convolution's matrix ``W'`` and of its transpose ``W'^T`` (seed 001).

    ``W'`` (:func:`convlab.conv_matrix`) has one row per output element and one column per input
    element: ``conv2d(x).ravel() == W' @ x.ravel()``. Its transpose, drawn next to it, maps an
    output-shaped array back to the input's shape: the transposed convolution. Zero entries are
    white, the taps coloured on a symmetric scale and, with ``annotate``, written in the cells.

    Parameters
    ----------
    weight : array_like, shape (kH, kW) or (1, 1, kH, kW)
        One kernel (the figure is for one channel in and out).
    input_shape : tuple of 2 ints
        ``(H, W)``.
    stride, padding, dilation
        As in :func:`convlab.conv_matrix`.
    cmap : str
    annotate : bool

    Returns
    -------
    matplotlib.figure.Figure
        Two Axes holding the images ``"matrix"`` (``W'`` as a dense array) and ``"matrix_T"``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = conv_matrix_figure(np.arange(1, 10).reshape(3, 3), (4, 4))
    >>> [(im.get_gid(), im.get_array().shape) for ax in fig.axes for im in ax.images]
    [('matrix', (4, 16)), ('matrix_T', (16, 4))]
    """
    import matplotlib.pyplot as plt

    w = float_array(weight, "weight")
    check_rank(w, (2, 4), "weight", "(kH, kW) or (1, 1, kH, kW)")
    if w.ndim == 4 and w.shape[:2] != (1, 1):
        raise ValueError(
            f"weight must have one input and one output channel for this figure, got shape {w.shape}"
        )
    shape = ntuple(input_shape, 2, "input_shape")
    dense = conv_matrix(w, shape, stride=stride, padding=padding, dilation=dilation).toarray()
    rows, cols = dense.shape
    limit = max(float(np.abs(dense).max()), 1e-12)
    # inches per matrix cell, as large as the page allows: an 8-point "-9" fits in 0.28 in
    cell = min(0.4, (PAGE_WIDTH - 2.2) / (cols + rows))
    fig = plt.figure(
        figsize=(cell * (cols + rows) + 2.2, cell * max(rows, cols) + 1.2), layout="constrained"
    )
    grid = fig.add_gridspec(1, 2, width_ratios=(cols, rows))
    for idx, (data, gid, title) in enumerate(
        ((dense, "matrix", "W'"), (dense.T, "matrix_T", "W'ᵀ"))
    ):
        ax = fig.add_subplot(grid[0, idx])
        ax.imshow(
            np.ma.masked_equal(data, 0),
            cmap=cmap,
            vmin=-limit,
            vmax=limit,
            interpolation="nearest",
            gid=gid,
        )
        if annotate:
            for (r, c), v in np.ndenumerate(data):
                if v != 0:
                    # white digits on the dark end of the colour map, black on the light one
                    dark = abs(v) > 0.55 * limit
                    ax.text(
                        c,
                        r,
                        _fmt(v),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if dark else "black",
                    )
        ax.set_xticks(np.arange(data.shape[1] + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(data.shape[0] + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="0.85", lw=0.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xticks(range(data.shape[1]))
        ax.set_yticks(range(data.shape[0]))
        ax.tick_params(labelsize=8)
        ax.set_xlabel("input element" if idx == 0 else "output element (of the conv)", fontsize=8)
        ax.set_ylabel("output element" if idx == 0 else "input element", fontsize=8)
        ax.set_title(f"{title}: {data.shape[0]}×{data.shape[1]}", fontsize=10)
    return fig


# --- overlaps and checkerboards (Odena et al. 2016) -------------------------------------------------


def transposed_coverage(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple,
    padding: IntOrTuple = 0,
    output_padding: IntOrTuple = 0,
    layers: int = 1,
) -> NDArray[np.int64]:
    """How many (input element, kernel tap) pairs land on each output element of a transposed conv.

    Computed with :func:`convlab.conv_transpose2d` itself: an all-ones input and an all-ones
    kernel make each output the count of the products added into it. Uneven counts are the
    checkerboard pattern of Odena, Dumoulin & Olah (2016): they appear whenever the kernel size is
    not a multiple of the stride. With ``layers > 1`` the same layer is applied again to the
    result (all-ones kernels), so a count is the number of paths from the input.

    Parameters
    ----------
    input_size : int or tuple of 2 ints
    kernel_size, stride : int or tuple of 2 ints, positive
    padding, output_padding : int or tuple of 2 ints
        As in :func:`convlab.conv_transpose2d`.
    layers : int, positive

    Returns
    -------
    numpy.ndarray of int64, 2-D

    Examples
    --------
    >>> transposed_coverage(3, 3, 2)[0].tolist()    # 1, 1, 2, 1, 2, 1, 1 along a row
    [1, 1, 2, 1, 2, 1, 1]
    >>> transposed_coverage(3, 4, 2, padding=1)[1].tolist()
    [2, 4, 4, 4, 4, 2]
    """
    size = ntuple(input_size, 2, "input_size")
    k = ntuple(kernel_size, 2, "kernel_size")
    layers = positive_int(layers, "layers")
    y: Array = np.ones((1, 1) + size)
    w = np.ones((1, 1) + k)
    for _ in range(layers):
        y = conv_transpose2d(y, w, stride=stride, padding=padding, output_padding=output_padding)
    coverage: NDArray[np.int64] = np.rint(y[0, 0]).astype(np.int64)
    return coverage


def resize_conv_coverage(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    scale: IntOrTuple,
    padding: IntOrTuple | None = None,
    layers: int = 1,
) -> NDArray[np.int64]:
    """The counts of :func:`transposed_coverage` for nearest-neighbour upsampling then a conv.

    The alternative Odena, Dumoulin & Olah (2016) recommend: repeat every element ``scale`` times
    along each axis, then run a stride-1 :func:`convlab.conv2d`. Every output away from the
    border reads the same number of taps (``kH * kW``), whatever the kernel size: no checkerboard.
    Near the border the zero padding removes taps, as in any convolution.

    Parameters
    ----------
    input_size : int or tuple of 2 ints
    kernel_size, scale : int or tuple of 2 ints, positive
    padding : int or tuple of 2 ints, optional
        Of the convolution; default ``(k - 1) // 2``, which keeps the upsampled size for odd ``k``.
    layers : int, positive

    Returns
    -------
    numpy.ndarray of int64, 2-D

    Examples
    --------
    >>> resize_conv_coverage(3, 3, 2)[2].tolist()
    [6, 9, 9, 9, 9, 6]
    """
    size = ntuple(input_size, 2, "input_size")
    k = ntuple(kernel_size, 2, "kernel_size")
    s = ntuple(scale, 2, "scale")
    p = (
        tuple((kk - 1) // 2 for kk in k)
        if padding is None
        else ntuple(padding, 2, "padding", allow_zero=True)
    )
    layers = positive_int(layers, "layers")
    y: Array = np.ones((1, 1) + size)
    w = np.ones((1, 1) + k)
    for _ in range(layers):
        y = np.repeat(np.repeat(y, s[0], axis=2), s[1], axis=3)
        y = conv2d(y, w, padding=p)
    coverage: NDArray[np.int64] = np.rint(y[0, 0]).astype(np.int64)
    return coverage


def overlap_figure(
    cases: Iterable[tuple[int, int]] = ((3, 2), (4, 2)), n_inputs: int = 4
) -> Figure:
    """Odena et al.'s 1-D picture: each input's footprint on the output, and the overlap counts.

    One panel per ``(kernel_size, stride)``: input element ``i`` of a 1-D transposed convolution
    (no padding) writes the ``k`` outputs ``i s .. i s + k - 1``, drawn as a bar of ``k`` cells in
    its own row; under the bars, the number of bars over each output. The counts are
    :func:`convlab.conv_transpose1d` of ones with ones, so they are what the library adds.

    Parameters
    ----------
    cases : sequence of (int, int)
        ``(kernel_size, stride)`` pairs.
    n_inputs : int

    Returns
    -------
    matplotlib.figure.Figure
        Attribute ``counts``: the list of count arrays, one per case.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = overlap_figure(((3, 2), (4, 2)), n_inputs=3)
    >>> [c.tolist() for c in fig.counts]
    [[1, 1, 2, 1, 2, 1, 1], [1, 1, 2, 2, 2, 2, 1, 1]]
    """
    import matplotlib.pyplot as plt

    n = positive_int(n_inputs, "n_inputs")
    cases = [(positive_int(k, "kernel_size"), positive_int(s, "stride")) for k, s in cases]
    if not cases:
        raise ValueError("cases must hold at least one (kernel_size, stride) pair")
    counts = [
        np.rint(conv_transpose1d(np.ones((1, 1, n)), np.ones((1, 1, k)), stride=s)[0, 0]).astype(
            np.int64
        )
        for k, s in cases
    ]
    length = max(len(c) for c in counts)
    fig, axes = plt.subplots(
        len(cases),
        1,
        figsize=(0.45 * length + 1.6, (0.38 * (n + 2) + 0.5) * len(cases)),
        squeeze=False,
    )
    for p, (ax, (k, s), count) in enumerate(zip(axes[:, 0], cases, counts, strict=True)):
        for i in range(n):
            for o in range(i * s, i * s + k):
                ax.add_patch(
                    Rectangle(
                        (o, i),
                        1,
                        0.8,
                        facecolor=_CYCLE[i % len(_CYCLE)],
                        alpha=0.55,
                        edgecolor=EDGE,
                        gid=f"footprint:{p}:{i}:{o}",
                    )
                )
            ax.text(-0.3, i + 0.4, f"x[{i}]", ha="right", va="center", fontsize=8)
        top = n + 0.3
        most = int(count.max())
        for o, v in enumerate(count):
            shade = 0.95 - 0.6 * (v / most)
            ax.add_patch(
                Rectangle(
                    (o, top), 1, 0.9, facecolor=str(shade), edgecolor=EDGE, gid=f"count:{p}:{o}"
                )
            )
            ax.text(
                o + 0.5,
                top + 0.45,
                str(int(v)),
                ha="center",
                va="center",
                fontsize=9,
                color="white" if shade < 0.5 else "black",
            )
        ax.text(-0.3, top + 0.45, "count", ha="right", va="center", fontsize=8)
        even = "even" if k % s == 0 else "uneven"
        ax.set_title(
            f"k = {k}, s = {s}: k {'is' if k % s == 0 else 'is not'} a multiple of s, "
            f"{even} overlap",
            fontsize=9,
        )
        ax.set_xlim(-1.6, length + 0.2)
        ax.set_ylim(top + 1.1, -0.3)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    cast(Any, fig).counts = counts  # an attribute matplotlib's Figure does not declare
    return fig


def coverage_figure(
    counts: Mapping[str, npt.ArrayLike], cmap: str = "viridis", annotate: bool = True
) -> Figure:
    """Heat maps of overlap counts side by side (:func:`transposed_coverage`, :func:`resize_conv_coverage`).

    Parameters
    ----------
    counts : dict of str to 2-D array
        Title -> counts; one panel each, each with its own colour scale and its min-max range in
        the title.
    cmap : str
    annotate : bool
        Write the counts in the cells (for small arrays).

    Returns
    -------
    matplotlib.figure.Figure
        One Axes per entry, holding the image ``"coverage:<p>"``.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = coverage_figure({"k=3, s=2": transposed_coverage(2, 3, 2)})
    >>> int(fig.axes[0].images[0].get_array().max())
    4
    """
    import matplotlib.pyplot as plt

    if not counts:
        raise ValueError("counts must hold at least one array")
    arrays: dict[str, NDArray[Any]] = {}
    for title, value in counts.items():
        arr = np.asarray(value)
        if arr.ndim != 2 or 0 in arr.shape:
            raise ValueError(
                f"counts[{title!r}] must be a non-empty 2-D array, got shape {arr.shape}"
            )
        arrays[title] = arr
    n = len(arrays)
    panel = min(3.3, PAGE_WIDTH / n)  # three panels: 2.5 inches, 8-point counts on the page
    fig, axes = plt.subplots(
        1, n, figsize=(panel * n, panel + 0.4), squeeze=False, layout="constrained"
    )
    for p, (ax, (title, arr)) in enumerate(zip(axes[0], arrays.items(), strict=True)):
        im = ax.imshow(arr, cmap=cmap, interpolation="nearest", gid=f"coverage:{p}")
        if annotate:
            lo, hi = float(arr.min()), float(arr.max())
            for (r, c), v in np.ndenumerate(arr):
                light = hi > lo and (v - lo) / (hi - lo) < 0.5
                ax.text(
                    c,
                    r,
                    _fmt(v),
                    ha="center",
                    va="center",
                    fontsize=MIN_FONTSIZE,
                    color="white" if light else "black",
                )
        ax.set_title(f"{title}\ncounts {_fmt(arr.min())} to {_fmt(arr.max())}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        im.set_clim(arr.min(), max(arr.max(), arr.min() + 1))
    return fig

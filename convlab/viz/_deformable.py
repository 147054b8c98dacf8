"""Figures for deformable convolution: bilinear sampling, deformed sampling grids, learning curves.

Every point drawn is computed by the package's own rules: the regular grid by the convolution
formula ``oy*s - p + i*d`` (the one :func:`convlab.deform_conv2d` uses), the bilinear neighbours
and weights by torchvision's rule as :func:`convlab.deform_conv2d` applies it.

Artists carry ``gid`` labels so that tests (and readers) can ask a figure what it shows:

* :func:`bilinear_figure`: ``"point:i"`` for the ``i``-th sampling point, ``"neighbour:i:r:c"``
  for the cell of each of its four neighbours and ``"weight:i:r:c"`` for the text of its weight;
* :func:`sampling_grid_figure`: ``"grid:o"`` (the regular taps of the ``o``-th output position),
  ``"samples:o"`` (the deformed taps) and ``"arrows:o"`` (a quiver from the first to the second);
* :func:`loss_curve_figure`: ``"loss"``; :func:`timing_figure`: ``"bar:<name>"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from matplotlib.patches import Rectangle
from numpy.typing import NDArray

from .._args import ntuple

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from ..shapes import IntOrTuple

__all__ = [
    "sampling_points",
    "bilinear_neighbours",
    "bilinear_figure",
    "sampling_grid_figure",
    "offset_fields_figure",
    "loss_curve_figure",
    "timing_figure",
]

_CYCLE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def _new_axes(
    ax: Axes | None, size: tuple[float, float] = (4.5, 4.5)
) -> tuple[Figure | SubFigure, Axes]:
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size)
    return fig, ax


def sampling_points(
    offset: npt.ArrayLike,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    image: int = 0,
    group: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Regular and deformed sampling points of every output position and kernel tap.

    Parameters
    ----------
    offset : array_like, shape (N, 2*G*kH*kW, H_out, W_out)
        As passed to :func:`convlab.deform_conv2d`.
    kernel_size, stride, padding, dilation : int or tuple of 2 ints
    image, group : int
        Which image of the batch and which offset group.

    Returns
    -------
    regular, deformed : numpy.ndarray, shape (H_out, W_out, kH*kW, 2)
        ``(y, x)`` of tap ``i*kW + j`` of output ``(oy, ox)``: ``regular`` is the plain
        convolution's ``(oy*sh - ph + i*dh, ox*sw - pw + j*dw)``, ``deformed`` adds the offset.

    Examples
    --------
    >>> import numpy as np
    >>> off = np.zeros((1, 2, 2, 2)); off[0, 1] = 0.5
    >>> regular, deformed = sampling_points(off, 1)
    >>> regular[1, 0, 0], deformed[1, 0, 0]
    (array([1., 0.]), array([1. , 0.5]))
    """
    off = np.asarray(offset, dtype=np.float64)
    kh, kw = ntuple(kernel_size, 2, "kernel_size")
    sh, sw = ntuple(stride, 2, "stride")
    ph, pw = ntuple(padding, 2, "padding", allow_zero=True)
    dh, dw = ntuple(dilation, 2, "dilation")
    taps = kh * kw
    if off.ndim != 4 or off.shape[1] % (2 * taps):
        raise ValueError(f"offset must be (N, 2*G*{kh}*{kw}, H_out, W_out), got shape {off.shape}")
    oh, ow = off.shape[2:]
    oy, ox, i, j = np.meshgrid(
        np.arange(oh), np.arange(ow), np.arange(kh), np.arange(kw), indexing="ij"
    )
    regular = np.stack([oy * sh - ph + i * dh, ox * sw - pw + j * dw], axis=-1).astype(np.float64)
    regular = regular.reshape(oh, ow, taps, 2)
    pairs = off[image, 2 * taps * group : 2 * taps * (group + 1)].reshape(taps, 2, oh, ow)
    deformed = regular + pairs.transpose(2, 3, 0, 1)
    return regular, deformed


def bilinear_neighbours(
    y: float, x: float, shape: Sequence[int]
) -> list[tuple[int, int, float, bool]]:
    """The four neighbours of the point ``(y, x)`` and their bilinear weights (torchvision's rule).

    Returns
    -------
    list of (row, col, weight, inside)
        For ``y0 = floor(y)``, ``x0 = floor(x)``: ``(y0, x0)``, ``(y0, x0+1)``, ``(y0+1, x0)``,
        ``(y0+1, x0+1)`` with weights ``(1-ly)(1-lx)``, ``(1-ly)lx``, ``ly(1-lx)``, ``ly*lx``;
        ``inside`` tells whether the neighbour is a pixel of an image of ``shape`` (outside ones
        read 0). A point with ``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W`` reads 0 as a
        whole: then every weight is reported as 0.

    Examples
    --------
    >>> [(r, c, float(w)) for r, c, w, _ in bilinear_neighbours(0.25, 1.5, (3, 3))]
    [(0, 1, 0.375), (0, 2, 0.375), (1, 1, 0.125), (1, 2, 0.125)]
    """
    height, width = shape
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    in_band = -1 < y < height and -1 < x < width
    out = []
    for r, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for c, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            inside = 0 <= r < height and 0 <= c < width
            out.append((r, c, wy * wx if in_band else 0.0, inside))
    return out


def bilinear_figure(
    image: npt.ArrayLike,
    points: Sequence[tuple[float, float]],
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Pixels of a small image with sampling points and their four weighted neighbours.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Drawn as a grid of cells with their values; the cells are centred on integer coordinates.
    points : sequence of (y, x)
        Fractional sampling points; each is drawn with lines to its four neighbours, labelled with
        the bilinear weights. Neighbours outside the image are drawn as dashed cells reading 0.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    img = np.asarray(image, dtype=np.float64)
    fig, ax = _new_axes(ax)
    height, width = img.shape
    for r in range(height):
        for c in range(width):
            ax.add_patch(
                Rectangle(
                    (c - 0.5, r - 0.5),
                    1,
                    1,
                    facecolor="#f4f4f4",
                    edgecolor="#555555",
                    lw=1,
                    gid=f"cell:{r}:{c}",
                )
            )
            ax.text(
                c, r + 0.3, f"{img[r, c]:g}", ha="center", va="center", fontsize=8, color="#555555"
            )
    for n, (y, x) in enumerate(points):
        color = _CYCLE[n % len(_CYCLE)]
        for r, c, w, inside in bilinear_neighbours(y, x, img.shape):
            if not inside:
                ax.add_patch(
                    Rectangle(
                        (c - 0.5, r - 0.5),
                        1,
                        1,
                        facecolor="none",
                        edgecolor=color,
                        ls="--",
                        lw=1,
                        gid=f"neighbour:{n}:{r}:{c}",
                    )
                )
                ax.text(c, r + 0.3, "0", ha="center", va="center", fontsize=8, color=color)
            else:
                ax.add_patch(
                    Rectangle(
                        (c - 0.45, r - 0.45),
                        0.9,
                        0.9,
                        facecolor="none",
                        edgecolor=color,
                        lw=1.5,
                        gid=f"neighbour:{n}:{r}:{c}",
                    )
                )
            ax.plot([x, c], [y, r], color=color, lw=0.8 + 3 * w, alpha=0.7)
            # the weight sits on the line, 60% of the way from the point to the neighbour
            ax.text(
                x + 0.6 * (c - x),
                y + 0.6 * (r - y),
                f"{w:.2f}",
                color=color,
                fontsize=8,
                ha="center",
                va="center",
                gid=f"weight:{n}:{r}:{c}",
                bbox=dict(
                    boxstyle="round,pad=0.1", facecolor="white", edgecolor="none", alpha=0.85
                ),
            )
        ax.plot([x], [y], "o", color=color, ms=8, gid=f"point:{n}")
    ys = [p[0] for p in points] + [-1.5, height + 0.5]
    xs = [p[1] for p in points] + [-1.5, width + 0.5]
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylim(max(ys) + 0.5, min(ys) - 0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("x (column)")
    ax.set_ylabel("y (row)")
    if title:
        ax.set_title(title)
    return ax


def sampling_grid_figure(
    image: npt.ArrayLike,
    offset: npt.ArrayLike,
    kernel_size: IntOrTuple,
    positions: Sequence[tuple[int, int]],
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    mask: npt.ArrayLike | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    view: tuple[float, float, float, float] | None = None,
    marker_size: float = 14.0,
) -> Axes:
    """The regular and the deformed sampling grids of some output positions, over an image.

    Parameters
    ----------
    image : array_like, shape (H, W)
        Drawn in gray; pixel ``(r, c)`` is centred on ``(c, r)``.
    offset : array_like, shape (1, 2*kH*kW, H_out, W_out)
        The offsets (one offset group; image 0 of the batch is drawn).
    kernel_size, stride, padding, dilation
        As for :func:`convlab.deform_conv2d`.
    positions : sequence of (oy, ox)
        Output positions whose taps are drawn: hollow squares on the regular grid, dots at the
        deformed points, arrows from the first to the second.
    mask : array_like, shape (1, kH*kW, H_out, W_out), optional
        DCN v2 modulation: the dots are scaled by it (a tap with mask 0 vanishes).
    view : (row0, row1, col0, col1), optional
        Show only this part of the image (the default shows all of it).
    marker_size : float
        Area (points^2) of a dot with mask 1.

    Returns
    -------
    matplotlib.axes.Axes
    """
    img = np.asarray(image, dtype=np.float64)
    fig, ax = _new_axes(ax)
    regular, deformed = sampling_points(offset, kernel_size, stride, padding, dilation)
    ax.imshow(img, cmap="gray", interpolation="nearest")
    m = None if mask is None else np.asarray(mask, dtype=np.float64)[0]
    for n, (oy, ox) in enumerate(positions):
        color = _CYCLE[n % len(_CYCLE)]
        reg, dfm = regular[oy, ox], deformed[oy, ox]
        ax.scatter(
            reg[:, 1],
            reg[:, 0],
            s=marker_size,
            marker="s",
            facecolors="none",
            edgecolors=color,
            lw=0.8,
            gid=f"grid:{n}",
        )
        sizes = marker_size * (np.ones(len(dfm)) if m is None else np.clip(m[:, oy, ox], 0, None))
        ax.scatter(dfm[:, 1], dfm[:, 0], s=sizes, color=color, gid=f"samples:{n}")
        ax.quiver(
            reg[:, 1],
            reg[:, 0],
            dfm[:, 1] - reg[:, 1],
            dfm[:, 0] - reg[:, 0],
            color=color,
            angles="xy",
            scale_units="xy",
            scale=1,
            width=0.004,
            gid=f"arrows:{n}",
        )
    row0, row1, col0, col1 = (0, img.shape[0], 0, img.shape[1]) if view is None else view
    ax.set_xlim(col0 - 0.5, col1 - 0.5)
    ax.set_ylim(row1 - 0.5, row0 - 0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def offset_fields_figure(
    image: npt.ArrayLike,
    fields: Mapping[str, npt.ArrayLike],
    kernel_size: IntOrTuple,
    positions: Sequence[tuple[int, int]],
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    masks: Mapping[str, npt.ArrayLike] | None = None,
    ncols: int = 2,
    panel_size: float = 3.6,
    view: tuple[float, float, float, float] | None = None,
    marker_size: float = 14.0,
) -> Figure:
    """One :func:`sampling_grid_figure` panel per named offset field.

    Parameters
    ----------
    fields : dict of name -> offset array (1, 2*kH*kW, H_out, W_out)
    masks : dict of name -> mask array, optional
    view, marker_size
        As for :func:`sampling_grid_figure`.

    Returns
    -------
    matplotlib.figure.Figure
        Its axes are in the order of ``fields``, each titled with the field's name.
    """
    import matplotlib.pyplot as plt

    names = list(fields)
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows), squeeze=False
    )
    # the grid may have one panel more than there are fields (hidden below)
    for ax, name in zip(axes.ravel(), names, strict=False):
        mask = None if masks is None else masks.get(name)
        sampling_grid_figure(
            image,
            fields[name],
            kernel_size,
            positions,
            padding=padding,
            dilation=dilation,
            mask=mask,
            ax=ax,
            title=name,
            view=view,
            marker_size=marker_size,
        )
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def loss_curve_figure(losses: npt.ArrayLike, ax: Axes | None = None, title: str = "loss") -> Axes:
    """The loss per iteration on a logarithmic axis; returns the Axes."""
    fig, ax = _new_axes(ax, size=(5, 3))
    values = np.asarray(losses, dtype=np.float64)
    ax.semilogy(np.arange(len(values)), values, color=_CYCLE[1], gid="loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    return ax


def timing_figure(
    times: Mapping[str, float], ax: Axes | None = None, title: str = "time per call"
) -> Axes:
    """Horizontal bars of ``{name: seconds}``, labelled in milliseconds; returns the Axes."""
    fig, ax = _new_axes(ax, size=(6, 0.6 + 0.5 * len(times)))
    names = list(times)
    ms = [1e3 * times[k] for k in names]
    for i, (name, value) in enumerate(zip(names, ms, strict=True)):
        ax.barh(i, value, color=_CYCLE[i % len(_CYCLE)], gid=f"bar:{name}")
        ax.text(value, i, f" {value:.1f} ms", va="center", fontsize=9)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("milliseconds")
    ax.set_xlim(0, max(ms) * 1.3 if ms else 1)
    ax.set_title(title)
    return ax

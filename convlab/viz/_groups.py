"""Figures for grouped and depthwise convolution: channel connections and feature-map grids.

:func:`channel_connections` lists which input channel feeds which output channel under the rule
``torch.nn.Conv2d`` follows (output channel ``o`` belongs to group ``o // (C_out / G)`` and reads
the input channels of that group), after checking the divisibility rules with the messages of
:func:`convlab.count_params`. :func:`channel_connections_figure` draws those pairs as lines,
coloured by group; :func:`feature_maps_figure` shows a stack of 2-D maps (the output channels of
a layer) in a grid with titles.

Artists carry ``gid`` labels: ``"in:<p>:<i>"`` and ``"out:<p>:<o>"`` for the channel boxes of panel
``p``, ``"link:<p>:<i>:<o>:<g>"`` for the line from input ``i`` to output ``o`` in group ``g``;
``"map:<n>"`` for the ``n``-th image of a feature-map grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt
from matplotlib.patches import FancyBboxPatch

from .._args import positive_int
from ..shapes import _channels_and_groups
from ._page import PAGE_WIDTH

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["channel_connections", "channel_connections_figure", "feature_maps_figure"]

EDGE = "#333333"
BOX_FACE = "#f2f2f2"
_CYCLE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")


def channel_connections(
    in_channels: int, out_channels: int, groups: int = 1
) -> list[tuple[int, int, int]]:
    """The ``(input channel, output channel, group)`` triples of a grouped convolution.

    With ``G`` groups, input channels ``g*C_in/G .. (g+1)*C_in/G - 1`` and output channels
    ``g*C_out/G .. (g+1)*C_out/G - 1`` form group ``g``; every output channel of a group reads
    every input channel of that group and nothing else. ``G = 1`` connects everything
    (``C_in * C_out`` pairs); ``G = C_in`` is depthwise: each output reads one input channel.

    Parameters
    ----------
    in_channels, out_channels, groups : int
        Both channel counts must be divisible by ``groups``.

    Returns
    -------
    list of tuple of int
        ``C_out * C_in / G`` triples ``(i, o, g)``, sorted by output channel then input channel.

    Raises
    ------
    ValueError
        ``"in_channels (4) must be divisible by groups (3)"`` and the like.

    Examples
    --------
    >>> channel_connections(4, 2, groups=2)
    [(0, 0, 0), (1, 0, 0), (2, 1, 1), (3, 1, 1)]
    >>> len(channel_connections(6, 6)), len(channel_connections(6, 6, groups=6))
    (36, 6)
    """
    c_in, c_out, g = _channels_and_groups(in_channels, out_channels, groups)
    in_per_group, out_per_group = c_in // g, c_out // g
    return [
        (group * in_per_group + i, o, group)
        for o in range(c_out)
        for group in (o // out_per_group,)
        for i in range(in_per_group)
    ]


def _box(
    ax: Axes, x: float, y: float, label: str, gid: str, colour: tuple[float, float, float]
) -> None:
    ax.add_patch(
        FancyBboxPatch(
            (x - 0.32, y - 0.32),
            0.64,
            0.64,
            boxstyle="round,pad=0.02",
            facecolor=colour,
            edgecolor=EDGE,
            lw=0.8,
            gid=gid,
            zorder=3,
        )
    )
    ax.text(x, y, label, ha="center", va="center", fontsize=8, zorder=4)


def channel_connections_figure(
    in_channels: int,
    out_channels: int,
    groups: int | Iterable[int] = (1, 2),
    axes: Iterable[Axes] | None = None,
) -> Figure:
    """Input channels (left) joined to the output channels they feed (right), one panel per ``groups``.

    Each line is one ``(input, output)`` pair of :func:`channel_connections`, coloured by its
    group; the channel boxes are tinted with their group's colour. ``groups = 1`` is the dense
    bipartite graph, ``groups = 2`` two independent halves (AlexNet's two GPUs), ``groups = C_in``
    one line per output channel (depthwise; ``C_out = K * C_in`` gives each input ``K`` lines).

    Parameters
    ----------
    in_channels, out_channels : int
    groups : int or sequence of int
        One panel per value.
    axes : sequence of matplotlib.axes.Axes, optional
        One per panel; a new figure otherwise.

    Returns
    -------
    matplotlib.figure.Figure
        Artists labelled as in the module docstring.

    Raises
    ------
    ValueError
        If a ``groups`` value does not divide both channel counts.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> fig = channel_connections_figure(4, 4, groups=(1, 4))
    >>> [sum(1 for l in ax.lines if l.get_gid().startswith("link:")) for ax in fig.axes]
    [16, 4]
    """
    values = [groups] if isinstance(groups, (int, np.integer)) else list(groups)
    if not values:
        raise ValueError("groups must hold at least one value")
    pairs = [channel_connections(in_channels, out_channels, g) for g in values]  # validates all
    c_in, c_out = (
        positive_int(in_channels, "in_channels"),
        positive_int(out_channels, "out_channels"),
    )
    height = max(c_in, c_out)
    if axes is None:
        import matplotlib.pyplot as plt

        fig, grid = plt.subplots(
            1, len(values), figsize=(2.9 * len(values), 0.42 * height + 1.3), squeeze=False
        )
        axes = list(grid[0])
    else:
        axes = list(axes)
        if len(axes) != len(values):
            raise ValueError(f"got {len(axes)} axes for {len(values)} panels")
        fig = cast("Figure", axes[0].figure)  # a Figure: tight_layout() below needs one
    # channels top to bottom, centred on the taller column
    y_in = [(height - 1) / 2 + (c_in - 1) / 2 - i for i in range(c_in)]
    y_out = [(height - 1) / 2 + (c_out - 1) / 2 - o for o in range(c_out)]
    for p, (ax, g, links) in enumerate(zip(axes, values, pairs, strict=True)):
        in_group = {i: grp for i, _, grp in links}
        out_group = {o: grp for _, o, grp in links}
        for i, o, grp in links:
            ax.plot(
                [0.35, 2.65],
                [y_in[i], y_out[o]],
                color=_CYCLE[grp % len(_CYCLE)],
                lw=1.2,
                alpha=0.8,
                gid=f"link:{p}:{i}:{o}:{grp}",
                zorder=2,
            )
        for i in range(c_in):
            _box(ax, 0, y_in[i], str(i), f"in:{p}:{i}", _tint(in_group[i]))
        for o in range(c_out):
            _box(ax, 3, y_out[o], str(o), f"out:{p}:{o}", _tint(out_group[o]))
        name = "depthwise" if g == c_in else ("dense" if g == 1 else f"{g} groups")
        ax.set_title(f"groups = {g} ({name})\n{len(links)} connections", fontsize=10)
        ax.text(0, height - 0.2, "in", ha="center", fontsize=9)
        ax.text(3, height - 0.2, "out", ha="center", fontsize=9)
        ax.set_xlim(-0.6, 3.6)
        ax.set_ylim(-0.8, height + 0.3)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    return fig


def _tint(group: int) -> tuple[float, float, float]:
    """The group's colour, mixed with white so the channel number stays readable."""
    from matplotlib.colors import to_rgb

    r, g, b = to_rgb(_CYCLE[group % len(_CYCLE)])
    return (0.35 * r + 0.65, 0.35 * g + 0.65, 0.35 * b + 0.65)


def feature_maps_figure(
    maps: npt.ArrayLike,
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    cmap: str = "gray",
    size: float = 2.2,
    suptitle: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
) -> Figure:
    """Show ``N`` feature maps in a grid, each with its own title and colour scale.

    Parameters
    ----------
    maps : array_like, shape (N, H, W) or (N, H, W, 3)
        ``N`` single-channel maps (drawn with ``cmap``) or RGB images with values in ``[0, 1]``.
        A leading batch axis of size 1, ``(1, N, H, W)``, is dropped.
    titles : sequence of str, optional
        One per map; ``"map n"`` by default.
    ncols : int, optional
        Maps per row; ``min(N, 4)`` by default.
    cmap : str
    size : float
        Inches per panel, at most: a row never gets wider than the book's page (so that the
        titles stay 9 points on it; three panels of 2.5 inches fill a row).
    suptitle : str, optional
    vmin, vmax : float, optional
        A shared colour scale; by default each map is scaled to its own range.

    Returns
    -------
    matplotlib.figure.Figure
        One ``AxesImage`` per map, gid ``"map:<n>"``, holding that map; unused panels are hidden.

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> import numpy as np
    >>> fig = feature_maps_figure(np.zeros((3, 4, 4)), titles=["a", "b", "c"], ncols=2)
    >>> [ax.get_title() for ax in fig.axes if ax.images]
    ['a', 'b', 'c']
    """
    arr = np.asarray(maps)
    if arr.ndim == 4 and arr.shape[0] == 1 and arr.shape[-1] != 3:
        arr = arr[0]
    rgb = arr.ndim == 4 and arr.shape[-1] == 3
    if arr.ndim != 3 and not rgb:
        raise ValueError(
            f"maps must be (N, H, W), (N, H, W, 3) or (1, N, H, W), got shape {arr.shape}"
        )
    n = arr.shape[0]
    if n == 0:
        raise ValueError("maps must hold at least one map")
    if titles is None:
        titles = [f"map {i}" for i in range(n)]
    titles = list(titles)
    if len(titles) != n:
        raise ValueError(f"got {len(titles)} titles for {n} maps")
    ncols = min(n, 4) if ncols is None else positive_int(ncols, "ncols")
    nrows = -(-n // ncols)
    size = min(float(size), PAGE_WIDTH / ncols)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)), squeeze=False
    )
    for idx, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if idx >= n:
            continue
        kwargs = {} if rgb else dict(cmap=cmap, vmin=vmin, vmax=vmax)
        ax.imshow(arr[idx], interpolation="nearest", gid=f"map:{idx}", **kwargs)
        ax.set_title(titles[idx], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig

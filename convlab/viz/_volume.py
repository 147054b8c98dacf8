"""The 3-D view of a convolution layer: input channels, the kernel volume, output channels.

A 2-D drawing hides the channel axis, and with it what ``groups`` does. Here every feature map is a
tile laid in perspective, the channels stacked one above the other. For each output channel and
position the animation lights the window on every input channel that output reads (all of them
for a standard convolution, those of its group for a grouped one, one for a depthwise one), shows
the output channel's own kernel volume ``(C_in / groups, k, k)`` with its weights, and writes the
value :func:`convlab.conv2d` returned into the output volume.

Artists carry ``gid`` labels: ``"in:ch:r:c"``, ``"kernel:j:r:c"`` (tap of the current kernel's
``j``-th input channel), ``"out:ch:r:c"``, each with a text ``"<prefix>-value:ch:r:c"``, and
``"status"``.
"""

from __future__ import annotations

import hashlib
import json
from collections import namedtuple
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from ..conv import conv2d
from ._gallery import (
    CELL,
    CURRENT_FACE,
    DPI,
    EDGE,
    EMPTY_FACE,
    FRAME_MS,
    GALLERY_VERSION,
    INPUT_FACE,
    LAST_FRAME_MS,
    OUTPUT_FACE,
    WINDOW_EDGE,
    WINDOW_FACE,
    _fmt,
    source_digest,
)

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.text import Text
    from numpy.typing import NDArray

    #: one drawn map: its cells and their texts, by (row, column)
    _Cells = tuple[dict[tuple[int, int], Polygon], dict[tuple[int, int], Text]]

__all__ = ["VOLUME_CASES", "VolumeCase", "volume_frames", "volume_animation", "VolumeAnimation"]

KERNEL_FACE = "#c7b9e0"  # the kernel volume: neither input nor output
IDLE_FACE = "#eeeeee"  # input channels the current output does not read
SKEW = 0.5  # a tile's row shifts right by this much ...
DEPTH = 0.5  # ... and down by this much: a square map seen in perspective
GAP = 0.55  # between stacked channels

VolumeCase = namedtuple("VolumeCase", "name title in_channels out_channels groups size kernel_size")
VolumeCase.__doc__ = (
    """One 3-D view: a 2-D convolution with channels and groups (no padding, stride 1)."""
)

#: the three 3-D views, by name
VOLUME_CASES = {
    "volume_standard": VolumeCase("volume_standard", "standard convolution", 3, 2, 1, 4, 3),
    "volume_grouped": VolumeCase("volume_grouped", "grouped convolution", 4, 4, 2, 4, 3),
    "volume_depthwise": VolumeCase("volume_depthwise", "depthwise convolution", 3, 3, 3, 4, 3),
}

VolumeFrame = namedtuple("VolumeFrame", "channel position group in_channels value")
VolumeFrame.__doc__ = (
    """One output element: its channel, position, group, the input channels it reads."""
)

VolumeFrames = namedtuple("VolumeFrames", "case x weight output frames")


def volume_frames(case: VolumeCase | str) -> VolumeFrames:
    """The frames of a 3-D view, the values from :func:`convlab.conv2d` with the case's groups.

    Examples
    --------
    >>> v = volume_frames("volume_depthwise")
    >>> v.output.shape, len(v.frames), v.frames[5].in_channels
    ((3, 2, 2), 12, (1,))
    """
    case = VOLUME_CASES[case] if isinstance(case, str) else case
    seed = int.from_bytes(hashlib.sha256(case.name.encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    cin, cout, g, n, k = (
        case.in_channels,
        case.out_channels,
        case.groups,
        case.size,
        case.kernel_size,
    )
    x = rng.integers(0, 4, size=(cin, n, n)).astype(np.float64)
    w = rng.integers(0, 3, size=(cout, cin // g, k, k)).astype(np.float64)
    out = conv2d(x, w, groups=g)  # unbatched (C, H, W) in, (C_out, H_out, W_out) out
    frames = []
    per_in, per_out = cin // g, cout // g
    for o in range(cout):
        group = o // per_out
        channels = tuple(range(group * per_in, (group + 1) * per_in))
        for r in range(out.shape[1]):
            for c in range(out.shape[2]):
                frames.append(VolumeFrame(o, (r, c), group, channels, float(out[o, r, c])))
    return VolumeFrames(case, x, w, out, frames)


def volume_spec(data: VolumeFrames) -> str:
    """A digest of what a 3-D view shows, as :func:`convlab.viz._gallery.gallery_spec`."""
    spec = {
        "version": GALLERY_VERSION,
        "case": list(data.case),
        "x": data.x.tolist(),
        "weight": data.weight.tolist(),
        "output": data.output.tolist(),
        "frames": [[f.channel, list(f.position), f.value] for f in data.frames],
        "ms": [FRAME_MS, LAST_FRAME_MS],
        "dpi": DPI,
        "code": source_digest(__file__),
    }
    text = json.dumps(spec, sort_keys=True)
    return "convlab.viz gallery " + hashlib.sha256(text.encode()).hexdigest()


def _tile(x: float, y: float, r: float, c: float) -> list[tuple[float, float]]:
    """Corners of map cell (r, c) of a tile whose far-left corner is (x, y)."""
    x0, y0 = x + c + r * SKEW, y + r * DEPTH
    return [(x0, y0), (x0 + 1, y0), (x0 + 1 + SKEW, y0 + DEPTH), (x0 + SKEW, y0 + DEPTH)]


def _centre(x: float, y: float, r: float, c: float) -> tuple[float, float]:
    return x + c + (r + 0.5) * SKEW + 0.5, y + (r + 0.5) * DEPTH


class VolumeAnimation(FuncAnimation):
    """The animation of one 3-D view; ``frames_data`` holds its numbers, ``n_frames`` its length."""

    def __init__(self, data: VolumeFrames, dpi: float = DPI) -> None:
        self.frames_data = data
        case = data.case
        cin, cout, k = case.in_channels, case.out_channels, case.kernel_size
        n, m = case.size, data.output.shape[1]
        pitch_in = n * DEPTH + GAP
        pitch_out = m * DEPTH + GAP
        pitch_k = k * DEPTH + GAP
        tile_in = n + n * SKEW
        tile_k = k + k * SKEW
        tile_out = m + m * SKEW
        cols_gap = 2.2
        width = max(tile_in + tile_k + tile_out + 2 * cols_gap + 1.6, 15.0)
        stack = max(cin * pitch_in, cout * pitch_out)
        top = 2.8
        height = top + stack + 1.8
        fig = Figure(figsize=(width * CELL, height * CELL), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)
        ax.set_axis_off()
        self._fig, self._ax = fig, ax
        x_in = (width - (tile_in + tile_k + tile_out + 2 * cols_gap)) / 2
        x_k = x_in + tile_in + cols_gap
        x_out = x_k + tile_k + cols_gap
        y_in = [top + (stack - cin * pitch_in) / 2 + ch * pitch_in for ch in range(cin)]
        y_out = [top + (stack - cout * pitch_out) / 2 + ch * pitch_out for ch in range(cout)]
        per_in = cin // case.groups
        y_k = [top + (stack - per_in * pitch_k) / 2 + j * pitch_k for j in range(per_in)]
        g = case.groups
        ax.text(
            width / 2,
            0.7,
            f"{case.title}: {cin} → {cout} channels, groups={g}, {k}×{k} kernel",
            ha="center",
            va="center",
            fontsize=11,
            gid="title",
        )
        self._status = ax.text(
            width / 2, 1.55, "", ha="center", va="center", fontsize=10, gid="status"
        )
        ax.text(x_in, top - 0.35, "input channels", fontsize=10, va="bottom")
        ax.text(x_k, top - 0.35, "kernel of the current output channel", fontsize=10, va="bottom")
        ax.text(
            x_out + tile_out, top - 0.35, "output channels", fontsize=10, va="bottom", ha="right"
        )

        def cells(
            x: float,
            y: float,
            rows: int,
            cols: int,
            prefix: str,
            ch: int,
            face: str,
            values: NDArray[Any] | None = None,
        ) -> _Cells:
            polys: dict[tuple[int, int], Polygon] = {}
            texts: dict[tuple[int, int], Text] = {}
            for r in range(rows):
                for c in range(cols):
                    poly = Polygon(
                        _tile(x, y, r, c),
                        closed=True,
                        facecolor=face,
                        edgecolor=EDGE,
                        linewidth=0.7,
                        gid=f"{prefix}:{ch}:{r}:{c}",
                    )
                    ax.add_patch(poly)
                    polys[r, c] = poly
                    cx, cy = _centre(x, y, r, c)
                    label = _fmt(values[r, c]) if values is not None else ""
                    texts[r, c] = ax.text(
                        cx,
                        cy + 0.03,
                        label,
                        ha="center",
                        va="center",
                        fontsize=9,
                        gid=f"{prefix}-value:{ch}:{r}:{c}",
                    )
            return polys, texts

        self._in: list[_Cells] = []
        for ch in range(cin):
            ax.text(
                x_in - 0.3, y_in[ch] + n * DEPTH / 2, f"c{ch}", ha="right", va="center", fontsize=9
            )
            self._in.append(cells(x_in, y_in[ch], n, n, "in", ch, INPUT_FACE, data.x[ch]))
        self._kernel: list[_Cells] = []
        for j in range(per_in):
            self._kernel.append(cells(x_k, y_k[j], k, k, "kernel", j, KERNEL_FACE))
        self._out: list[_Cells] = []
        for ch in range(cout):
            ax.text(
                x_out + tile_out + 0.3,
                y_out[ch] + m * DEPTH / 2,
                f"c{ch}",
                ha="left",
                va="center",
                fontsize=9,
            )
            self._out.append(cells(x_out, y_out[ch], m, m, "out", ch, EMPTY_FACE))
        self._geometry = (x_in, y_in, x_k, y_k, x_out, y_out)
        self._lines = [
            Line2D([], [], color=WINDOW_EDGE, linewidth=1.0, alpha=0.7) for _ in range(2 * cin + 1)
        ]
        for line in self._lines:
            ax.add_line(line)
        handles = [
            Patch(facecolor=INPUT_FACE, edgecolor=EDGE, label="input channels it reads"),
            Patch(facecolor=IDLE_FACE, edgecolor=EDGE, label="input channels it does not read"),
            Patch(facecolor=WINDOW_FACE, edgecolor=WINDOW_EDGE, linewidth=2, label="kernel window"),
            Patch(facecolor=KERNEL_FACE, edgecolor=EDGE, label="kernel (weights)"),
            Patch(facecolor=OUTPUT_FACE, edgecolor=EDGE, label="output"),
            Patch(facecolor=CURRENT_FACE, edgecolor=EDGE, label="output being computed"),
        ]
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=3,
            fontsize=9,
            frameon=False,
            handlelength=1.4,
            columnspacing=1.2,
        )
        self.n_frames = len(data.frames) + 1
        super().__init__(
            fig, self._draw, frames=self.n_frames, interval=FRAME_MS, blit=False, repeat=True
        )

    def _draw(self, n: int) -> list[Artist]:
        data = self.frames_data
        case = data.case
        k = case.kernel_size
        x_in, y_in, x_k, y_k, x_out, y_out = self._geometry
        last = n >= len(data.frames)
        frame = None if last else data.frames[n]
        reads = set(frame.in_channels) if frame else set(range(case.in_channels))
        for ch, (polys, texts) in enumerate(self._in):
            for (r, c), poly in polys.items():
                poly.set_facecolor(INPUT_FACE if ch in reads else IDLE_FACE)
                poly.set_edgecolor(EDGE)
                poly.set_linewidth(0.7)
                texts[r, c].set_color("black" if ch in reads else "#9a9a9a")
        for i, f in enumerate(data.frames):
            poly = self._out[f.channel][0][f.position]
            text = self._out[f.channel][1][f.position]
            shown = last or i <= n
            poly.set_facecolor(OUTPUT_FACE if shown else EMPTY_FACE)
            text.set_text(_fmt(f.value) if shown else "")
            text.set_color("black")
        for line in self._lines:
            line.set_data([], [])
        if frame is None:  # the last frame: the whole output
            for polys, texts in self._kernel:
                for key in polys:
                    texts[key].set_text("")
            self._status.set_text("the whole output volume, as convlab.conv2d computes it")
            return []
        o, (r0, c0) = frame.channel, frame.position
        for j, ch in enumerate(frame.in_channels):
            polys, _ = self._in[ch]
            for a in range(k):
                for b in range(k):
                    poly = polys[r0 + a, c0 + b]
                    poly.set_facecolor(WINDOW_FACE)
                    poly.set_edgecolor(WINDOW_EDGE)
                    poly.set_linewidth(1.8)
            kpolys, ktexts = self._kernel[j]
            for (a, b), text in ktexts.items():
                text.set_text(_fmt(data.weight[o, j, a, b]))
            # window centre -> kernel tile centre
            wx, wy = _centre(x_in, y_in[ch], r0 + (k - 1) / 2, c0 + (k - 1) / 2)
            kx, ky = _centre(x_k, y_k[j], (k - 1) / 2, (k - 1) / 2)
            self._lines[j].set_data([wx + k / 2, kx - k / 2], [wy, ky])
        current = self._out[o][0][frame.position]
        current.set_facecolor(CURRENT_FACE)
        self._out[o][1][frame.position].set_color("white")
        kx, ky = _centre(x_k, y_k[len(frame.in_channels) // 2], (k - 1) / 2, (k - 1) / 2)
        ox, oy = _centre(x_out, y_out[o], r0, c0)
        self._lines[-1].set_data([kx + k / 2, ox - 0.5], [ky, oy])
        self._lines[-1].set_color(CURRENT_FACE)
        chans = frame.in_channels
        span = f"channel {chans[0]}" if len(chans) == 1 else f"channels {chans[0]}–{chans[-1]}"
        self._status.set_text(
            f"out[c{o}, {r0}, {c0}] = {_fmt(frame.value)}: group {frame.group} reads input {span} "
            f"through a {len(chans)}×{k}×{k} kernel"
        )
        return []

    def draw_frame(self, n: int) -> Figure:
        self._draw(n)
        # a drawn frame is a rendering: no "deleted without rendering" warning from matplotlib
        self._draw_was_started = True
        return self._fig

    def durations(self) -> list[int]:
        return [FRAME_MS] * (self.n_frames - 1) + [LAST_FRAME_MS]


def volume_animation(case: VolumeCase | str, dpi: float = DPI) -> VolumeAnimation:
    """The animation of one 3-D view (:data:`VOLUME_CASES`), a matplotlib ``FuncAnimation``."""
    return VolumeAnimation(volume_frames(case), dpi=dpi)

"""The animation gallery: every padding and stride case of Dumoulin & Visin's guide, with numbers.

For each case of :data:`GALLERY_CASES` (no padding, half padding, full padding and dilation 2, each
with stride 1 and 2) there is an ordinary convolution and its transpose: the transposed case has the
ordinary case's output size as its input size, the same kernel, stride, padding and dilation, and
the ``output_padding`` (:func:`convlab.shapes.conv_transpose_output_padding`) that brings it back to
the ordinary case's input size, as in the guide's relationship 14.

Every frame shows one output position: the window on the input (a transposed convolution is
drawn as the stride-1 convolution it equals: ``s - 1`` zeros inserted between the input values,
``d(k - 1) - p`` zeros of padding around them, the kernel rotated by 180 degrees), the kernel's
weight in the corner of each cell of the window, and the output value, which is read from the
array :func:`convlab.conv2d` or :func:`convlab.conv_transpose2d` returns, never summed here.
Colours keep input and output apart in both directions: the layer's input is blue and its output
orange, whether the layer shrinks or grows the image (the guide's transposed animations draw the
larger map in the colour of its input).

The files the book serves (``book/gallery/*.gif``) are written by :func:`write_gallery`
(``python -m convlab.viz book/gallery``); each GIF's comment holds the digest of what
it draws (:func:`gallery_spec`), so tests/test_gallery.py can tell a stale file from a current one.

Artists carry ``gid`` labels: ``"in:<kind>:r:c"`` (cells of the drawn input, ``kind`` one of
``input``, ``pad``, ``zero``), ``"in-value:r:c"``, ``"weight:r:c"`` (the weight in a window cell),
``"out:r:c"``, ``"out-value:r:c"``, ``"status"`` (the line under the title).
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
from collections import namedtuple
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from ..conv import conv2d
from ..shapes import conv_output_size, conv_transpose_output_padding, padding_pairs
from ..transposed import conv_transpose2d

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.text import Text
    from numpy.typing import NDArray
    from PIL import Image

    from ._volume import VolumeAnimation, VolumeFrames

__all__ = [
    "GALLERY_CASES",
    "GalleryCase",
    "gallery_case",
    "gallery_frames",
    "gallery_animation",
    "GalleryAnimation",
    "gallery_spec",
    "save_gif",
    "write_gallery",
]

#: bump when a change of the drawing must regenerate the committed files (the spec changes too)
GALLERY_VERSION = 1

INPUT_FACE = "#9ecae1"  # the layer's input, ordinary or transposed
WINDOW_FACE = "#4292c6"  # input cells under the kernel
WINDOW_ZERO_FACE = "#deebf7"  # padding and inserted zeros under the kernel
WINDOW_EDGE = "#08519c"
PAD_FACE = "#e3e3e3"
PAD_HATCH = "///"
ZERO_FACE = "#ffffff"
OUTPUT_FACE = "#fdd0a2"  # the layer's output
CURRENT_FACE = "#d94801"  # the output being computed
EMPTY_FACE = "#ffffff"
EDGE = "#4a4a4a"
_HATCH_KW: dict[str, Any] = (
    {"hatchcolor": "#a9a9a9"} if hasattr(Rectangle, "set_hatchcolor") else {}
)

WEIGHT_BOX = {"boxstyle": "square,pad=0.08", "facecolor": "white", "edgecolor": "none"}
CELL = 0.42  # inches per cell: 13 pt digits fit, and a 11-cell input stays within the page width
DPI = 100
FRAME_MS = 700
LAST_FRAME_MS = 2000

GalleryCase = namedtuple(
    "GalleryCase",
    "name title transposed input_size kernel_size stride padding dilation output_padding",
)
GalleryCase.__doc__ = (
    """One animation: a 2-D convolution (or transposed convolution) of square sizes."""
)


def _ordinary(
    name: str,
    title: str,
    size: int,
    stride: int = 1,
    padding: int | str = 0,
    dilation: int = 1,
    kernel: int = 3,
) -> GalleryCase:
    return GalleryCase(name, title, False, size, kernel, stride, padding, dilation, 0)


#: the ordinary cases, in the guide's order; each has a transposed counterpart, name + "_transposed"
_ORDINARY = [
    _ordinary("no_padding", "no padding", 4),
    _ordinary("half_padding", "half ('same') padding", 5, padding="same"),
    _ordinary("full_padding", "full padding", 5, padding=2),
    _ordinary("dilation", "dilation 2", 7, dilation=2),
    _ordinary("no_padding_stride", "no padding, stride 2", 5, stride=2),
    _ordinary("half_padding_stride", "half padding, stride 2", 5, stride=2, padding=1),
    _ordinary("full_padding_stride", "full padding, stride 2", 5, stride=2, padding=2),
    _ordinary("dilation_stride", "dilation 2, stride 2", 7, stride=2, dilation=2),
]


def _transpose_of(case: GalleryCase) -> GalleryCase:
    """The transposed convolution that maps ``case``'s output size back to its input size."""
    k, s, d = case.kernel_size, case.stride, case.dilation
    ((before, after),) = padding_pairs(case.padding, (k,), (s,), (d,))
    # 'same' padding is symmetric here (odd kernel): the transpose takes its number
    p = before
    o = conv_output_size(case.input_size, k, s, case.padding, d)
    a = conv_transpose_output_padding(o, case.input_size, k, s, p, d)
    title = f"transpose of {case.title}"
    return GalleryCase(case.name + "_transposed", title, True, o, k, s, p, d, a)


#: every 2-D case of the gallery, by name
GALLERY_CASES: dict[str, GalleryCase] = {}
for _case in _ORDINARY:
    GALLERY_CASES[_case.name] = _case
for _case in _ORDINARY:
    GALLERY_CASES[_case.name + "_transposed"] = _transpose_of(_case)
del _case


def gallery_case(name: str) -> GalleryCase:
    """The :class:`GalleryCase` called ``name`` (a ``KeyError`` lists the names)."""
    try:
        return GALLERY_CASES[name]
    except KeyError:
        raise KeyError(
            f"no gallery case {name!r}; the cases are {', '.join(GALLERY_CASES)}"
        ) from None


# --- geometry: which drawn cell each output reads through which tap --------------------------------


class _Axis:
    """One spatial dimension of the drawn input: cell kinds and every output's window."""

    k: int
    cells: int
    kinds: list[str]  # "input", "pad" or "zero" per drawn cell
    index: list[int | None]  # the input index a drawn cell holds (None: padding or zero)
    n_out: int
    windows: list[list[tuple[int, int]]]  # per output: (drawn cell, weight tap) per tap

    def __init__(self, case: GalleryCase) -> None:
        k, s, d = case.kernel_size, case.stride, case.dilation
        self.k = k
        if not case.transposed:
            ((before, after),) = padding_pairs(case.padding, (k,), (s,), (d,))
            n = case.input_size
            self.cells = before + n + after
            self.kinds = [
                "pad" if u < before or u >= before + n else "input" for u in range(self.cells)
            ]
            self.index = [u - before for u in range(self.cells)]
            self.n_out = conv_output_size(n, k, s, case.padding, d)
            # tap t of output o reads padded position o*s + t*d
            self.windows = [[(o * s + t * d, t) for t in range(k)] for o in range(self.n_out)]
        else:
            i, p, a = case.input_size, case.padding, case.output_padding
            self.n_out = (i - 1) * s - 2 * p + d * (k - 1) + a + 1
            first = d * (k - 1) - p  # zeros before the first input value
            if first < 0:
                raise ValueError(
                    f"the gallery draws no cropped transposed cases (p > d(k-1)), got {case}"
                )
            self.cells = self.n_out + d * (k - 1)
            self.kinds, self.index = [], []
            for u in range(self.cells):
                r = u - first
                if r >= 0 and r % s == 0 and r // s < i:
                    self.kinds.append("input")
                elif 0 < r < (i - 1) * s:
                    self.kinds.append("zero")
                else:
                    self.kinds.append("pad")
                self.index.append(r // s if r >= 0 and r % s == 0 else None)
            # the equivalent stride-1 convolution reads u = o + t'*d with the rotated tap t'; the
            # weight there is the original tap k-1-t'
            self.windows = [[(o + t * d, k - 1 - t) for t in range(k)] for o in range(self.n_out)]


Frame = namedtuple("Frame", "position window value")
Frame.__doc__ = (
    """One output position: ``window`` lists ``(row, col, input value, weight)`` per tap."""
)

GalleryFrames = namedtuple("GalleryFrames", "case x weight output kinds values frames")
GalleryFrames.__doc__ = (
    """The numbers behind an animation (``kinds``/``values``: the drawn input grid)."""
)


def _case_arrays(case: GalleryCase) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The input and kernel of a case: small integers (a fixed seed per case) so sums stay legible."""
    seed = int.from_bytes(hashlib.sha256(case.name.encode()).digest()[:4], "little")
    rng = np.random.default_rng(seed)
    # inputs 1-4: a zero input would read like an inserted zero in the transposed cases
    x = rng.integers(1, 5, size=(case.input_size, case.input_size)).astype(np.float64)
    w = rng.integers(0, 3, size=(case.kernel_size, case.kernel_size)).astype(np.float64)
    return x, w


def gallery_frames(case: GalleryCase | str) -> GalleryFrames:
    """The frames of one case, with values from :func:`convlab.conv2d` / ``conv_transpose2d``.

    Parameters
    ----------
    case : GalleryCase or str

    Returns
    -------
    GalleryFrames
        ``output`` is convlab's result (2-D); frame ``n`` shows output position ``n`` in row-major
        order, its value ``output[position]``.

    Examples
    --------
    >>> g = gallery_frames("no_padding")
    >>> g.output.shape, len(g.frames)
    ((2, 2), 4)
    """
    case = gallery_case(case) if isinstance(case, str) else case
    x, w = _case_arrays(case)
    if case.transposed:
        out = conv_transpose2d(
            x[None, None],
            w[None, None],
            stride=case.stride,
            padding=case.padding,
            output_padding=case.output_padding,
            dilation=case.dilation,
        )[0, 0]
    else:
        out = conv2d(
            x[None, None],
            w[None, None],
            stride=case.stride,
            padding=case.padding,
            dilation=case.dilation,
        )[0, 0]
    axis = _Axis(case)
    n = axis.cells
    kinds = [[_combine(axis.kinds[r], axis.kinds[c]) for c in range(n)] for r in range(n)]
    values = [
        [x[axis.index[r], axis.index[c]] if kinds[r][c] == "input" else 0.0 for c in range(n)]
        for r in range(n)
    ]
    frames = []
    for orow in range(axis.n_out):
        for ocol in range(axis.n_out):
            window = [
                (ur, uc, values[ur][uc], w[tr, tc])
                for ur, tr in axis.windows[orow]
                for uc, tc in axis.windows[ocol]
            ]
            frames.append(Frame((orow, ocol), window, float(out[orow, ocol])))
    return GalleryFrames(case, x, w, out, kinds, values, frames)


def _combine(a: str, b: str) -> str:
    for kind in ("pad", "zero", "input"):
        if kind in (a, b):
            return kind
    return "input"


def _fmt(value: float | np.number[Any]) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:.3g}"


# --- drawing ---------------------------------------------------------------------------------------


class GalleryAnimation(FuncAnimation):
    """The animation of one case; ``frames_data`` holds its numbers, ``n_frames`` its length.

    Frame ``n < len(frames_data.frames)`` shows output position ``n``; the last frame shows the
    whole output.
    """

    def __init__(self, data: GalleryFrames, dpi: float = DPI) -> None:
        self.frames_data = data
        self.dpi = dpi
        case = data.case
        n_in = len(data.kinds)
        n_out = data.output.shape[0]
        gap = 1.6
        content_w = n_in + gap + n_out
        width = max(content_w + 1.2, 15.0)  # the legend needs ~15 cells
        height = max(n_in, n_out) + 2.6 + 1.6  # title lines above, legend below
        fig = Figure(figsize=(width * CELL, height * CELL), dpi=dpi)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(height, 0)  # rows downwards
        ax.set_axis_off()
        x0 = (width - content_w) / 2
        top = 2.4
        self._fig, self._ax = fig, ax
        op = data.output.shape
        ks = case.kernel_size
        if case.transposed:
            head = (
                f"conv_transpose2d: {case.input_size}×{case.input_size} input, {ks}×{ks} kernel, "
                f"stride {case.stride}, padding {case.padding}"
                + (f", dilation {case.dilation}" if case.dilation > 1 else "")
                + (f", output_padding {case.output_padding}" if case.output_padding else "")
                + f" → {op[0]}×{op[1]}"
            )
        else:
            pad = f"'{case.padding}'" if isinstance(case.padding, str) else case.padding
            head = (
                f"conv2d: {case.input_size}×{case.input_size} input, {ks}×{ks} kernel, "
                f"stride {case.stride}, padding {pad}"
                + (f", dilation {case.dilation}" if case.dilation > 1 else "")
                + f" → {op[0]}×{op[1]}"
            )
        ax.text(width / 2, 0.75, head, ha="center", va="center", fontsize=11, gid="title")
        self._status = ax.text(
            width / 2, 1.65, "", ha="center", va="center", fontsize=11, gid="status"
        )
        in_label = "input: zeros inserted, padded" if case.transposed else "input"
        ax.text(x0, top - 0.2, in_label, ha="left", va="bottom", fontsize=10)
        ax.text(x0 + n_in + gap, top - 0.2, "output", ha="left", va="bottom", fontsize=10)

        self._in_cells: dict[tuple[int, int], tuple[Rectangle, str]] = {}
        self._weights: dict[tuple[int, int], Text] = {}
        for r in range(n_in):
            for c in range(n_in):
                kind = data.kinds[r][c]
                face = {"input": INPUT_FACE, "pad": PAD_FACE, "zero": ZERO_FACE}[kind]
                rect = Rectangle(
                    (x0 + c, top + r),
                    1,
                    1,
                    facecolor=face,
                    edgecolor=EDGE,
                    linewidth=0.8,
                    linestyle="--" if kind == "zero" else "-",
                    hatch=PAD_HATCH if kind == "pad" else None,
                    gid=f"in:{kind}:{r}:{c}",
                    **(_HATCH_KW if kind == "pad" else {}),
                )
                ax.add_patch(rect)
                self._in_cells[r, c] = (rect, face)
                if kind == "input":
                    ax.text(
                        x0 + c + 0.45,
                        top + r + 0.58,
                        _fmt(data.values[r][c]),
                        ha="center",
                        va="center",
                        fontsize=13,
                        gid=f"in-value:{r}:{c}",
                    )
                self._weights[r, c] = ax.text(
                    x0 + c + 0.96,
                    top + r + 0.93,
                    "",
                    ha="right",
                    va="bottom",
                    fontsize=8,
                    color=WINDOW_EDGE,
                    fontweight="bold",
                    gid=f"weight:{r}:{c}",
                )
        ox = x0 + n_in + gap
        self._out_cells: dict[tuple[int, int], Rectangle] = {}
        self._out_values: dict[tuple[int, int], Text] = {}
        for r in range(op[0]):
            for c in range(op[1]):
                rect = Rectangle(
                    (ox + c, top + r),
                    1,
                    1,
                    facecolor=EMPTY_FACE,
                    edgecolor=EDGE,
                    linewidth=0.8,
                    gid=f"out:{r}:{c}",
                )
                ax.add_patch(rect)
                self._out_cells[r, c] = rect
                self._out_values[r, c] = ax.text(
                    ox + c + 0.5,
                    top + r + 0.55,
                    "",
                    ha="center",
                    va="center",
                    fontsize=13,
                    gid=f"out-value:{r}:{c}",
                )
        handles = [
            Patch(facecolor=INPUT_FACE, edgecolor=EDGE, label="input of this layer"),
            Patch(facecolor=PAD_FACE, edgecolor=EDGE, hatch=PAD_HATCH, label="padding (zeros)"),
        ]
        if case.transposed:
            handles.append(
                Patch(facecolor=ZERO_FACE, edgecolor=EDGE, linestyle="--", label="inserted zeros")
            )
        handles += [
            Patch(
                facecolor=WINDOW_FACE,
                edgecolor=WINDOW_EDGE,
                linewidth=2,
                label="kernel window (small: weight)",
            ),
            Patch(facecolor=OUTPUT_FACE, edgecolor=EDGE, label="output of this layer"),
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
            bbox_to_anchor=(0.5, 0.0),
        )
        self.n_frames = len(data.frames) + 1
        self._marked: list[tuple[Rectangle, str]] = []
        super().__init__(
            fig, self._draw, frames=self.n_frames, interval=FRAME_MS, blit=False, repeat=True
        )

    def _draw(self, n: int) -> list[Artist]:
        data = self.frames_data
        for rect, face in self._marked:
            rect.set_facecolor(face)
            rect.set_edgecolor(EDGE)
            rect.set_linewidth(0.8)
        self._marked = []
        for text in self._weights.values():
            text.set_text("")
            text.set_bbox(None)
        done = len(data.frames) if n >= len(data.frames) else n
        for i, frame in enumerate(data.frames):
            rect = self._out_cells[frame.position]
            shown = i <= done
            rect.set_facecolor(OUTPUT_FACE if shown else EMPTY_FACE)
            self._out_values[frame.position].set_text(_fmt(frame.value) if shown else "")
            self._out_values[frame.position].set_color("black")
        if n >= len(data.frames):
            self._status.set_text("the whole output, as convlab computes it")
            return []
        frame = data.frames[n]
        for r, c, _, weight in frame.window:
            rect, face = self._in_cells[r, c]
            self._marked.append((rect, face))
            rect.set_facecolor(WINDOW_FACE if data.kinds[r][c] == "input" else WINDOW_ZERO_FACE)
            rect.set_edgecolor(WINDOW_EDGE)
            rect.set_linewidth(2.2)
            self._weights[r, c].set_text(_fmt(weight))
            self._weights[r, c].set_bbox(WEIGHT_BOX)
        current = self._out_cells[frame.position]
        current.set_facecolor(CURRENT_FACE)
        self._out_values[frame.position].set_color("white")
        terms = [(v, w) for _, _, v, w in frame.window if v != 0 and w != 0]
        detail = (
            " + ".join(f"{_fmt(v)}·{_fmt(w)}" for v, w in terms)
            if len(terms) <= 9
            else "Σ input·weight"
        )
        r, c = frame.position
        if not terms:
            self._status.set_text(
                f"out[{r}, {c}] = {_fmt(frame.value)}: the window covers only zeros"
            )
        else:
            self._status.set_text(f"out[{r}, {c}] = {detail} = {_fmt(frame.value)}")
        return []

    def draw_frame(self, n: int) -> Figure:
        """Draw frame ``n`` and return the figure (for tests and for saving)."""
        self._draw(n)
        # a drawn frame is a rendering: no "deleted without rendering" warning from matplotlib
        self._draw_was_started = True
        return self._fig

    def durations(self) -> list[int]:
        return [FRAME_MS] * (self.n_frames - 1) + [LAST_FRAME_MS]


def gallery_animation(case: GalleryCase | str, dpi: float = DPI) -> GalleryAnimation:
    """The animation of one case (a :class:`GalleryAnimation`, a matplotlib ``FuncAnimation``).

    In a notebook, ``HTML(gallery_animation("dilation").to_jshtml())`` plays it; the book serves
    the GIFs :func:`write_gallery` writes.
    """
    case = gallery_case(case) if isinstance(case, str) else case
    return GalleryAnimation(gallery_frames(case), dpi=dpi)


# --- files -----------------------------------------------------------------------------------------


def source_digest(*paths: str | Path) -> str:
    """Digest of the drawing code: the committed files are stale once it changes.

    What is hashed is each module's syntax tree (:mod:`ast`) with its type annotations removed
    (argument and return annotations; an annotated assignment becomes a plain one, or goes when it
    has no value), written out by :func:`_ast_text` in a form that does not depend on the Python
    version. So formatting, comments and type hints do not make the GIFs stale; any other change
    of the code does, docstrings, imports and ``cast`` calls included.
    """
    h = hashlib.sha256()
    for path in paths:
        tree = _StripAnnotations().visit(ast.parse(Path(path).read_bytes()))
        h.update(_ast_text(tree).encode())
    return h.hexdigest()[:16]


class _StripAnnotations(ast.NodeTransformer):
    """Removes type annotations from a syntax tree (for :func:`source_digest`)."""

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AsyncFunctionDef:
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.Assign | None:
        if node.value is None:
            return None  # a declaration only
        plain = ast.Assign(targets=[node.target], value=self.visit(node.value))
        return ast.copy_location(plain, node)


def _ast_text(node: object) -> str:
    """A syntax tree as text, the same on every Python version convlab supports.

    ``ast.dump`` is not: 3.12 added fields (``type_params``) and 3.13 leaves empty ones out, so
    fields that are ``None`` or empty are always left out here, and an f-string's literal text is
    merged into one piece between its ``{}`` fields (3.12 and 3.13 split it differently, and 3.13
    gives a format spec as a ``Constant`` where earlier versions give a ``JoinedStr``).
    """
    if isinstance(node, ast.JoinedStr):
        return f"JoinedStr({_ast_text(_fstring_parts(node.values))})"
    if isinstance(node, ast.FormattedValue):
        spec = node.format_spec
        pieces = [] if spec is None else spec.values if isinstance(spec, ast.JoinedStr) else [spec]
        parts = _ast_text(_fstring_parts(pieces))
        return f"FormattedValue({_ast_text(node.value)}, {node.conversion}, {parts})"
    if isinstance(node, ast.AST):
        fields = ", ".join(
            f"{name}={_ast_text(value)}"
            for name, value in ast.iter_fields(node)
            if value is not None and value != []
        )
        return f"{type(node).__name__}({fields})"
    if isinstance(node, list):
        return "[" + ", ".join(_ast_text(item) for item in node) + "]"
    return repr(node)


def _fstring_parts(values: list[ast.expr]) -> list[object]:
    """An f-string's pieces: its fields, and its literal text merged, empty text left out."""
    parts: list[object] = []
    for value in values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            if parts and isinstance(parts[-1], str):
                parts[-1] += value.value
            elif value.value:
                parts.append(value.value)
        else:
            parts.append(value)
    return parts


def gallery_spec(data: GalleryFrames) -> str:
    """A digest of everything an animation shows: numbers, geometry, timing and the drawing code."""
    spec = {
        "version": GALLERY_VERSION,
        "case": list(data.case),
        "x": np.asarray(data.x).tolist(),
        "weight": np.asarray(data.weight).tolist(),
        "output": np.asarray(data.output).tolist(),
        "kinds": data.kinds,
        "frames": [[list(f.position), f.value, [list(t) for t in f.window]] for f in data.frames],
        "ms": [FRAME_MS, LAST_FRAME_MS],
        "dpi": DPI,
        "code": source_digest(__file__),
    }
    text = json.dumps(spec, sort_keys=True, default=float)
    return "convlab.viz gallery " + hashlib.sha256(text.encode()).hexdigest()


def _render(fig: Figure) -> Image.Image:
    from PIL import Image

    canvas: Any = FigureCanvasAgg(fig)  # matplotlib's backend_agg is not annotated
    canvas.draw()
    return Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba()).convert("RGB")


#: a path as given: save_gif and write_animation return the ``path`` they were passed
PathT = TypeVar("PathT", str, Path)

#: every flat colour the animations use: the shared palette keeps them exact
PALETTE = (
    INPUT_FACE,
    WINDOW_FACE,
    WINDOW_EDGE,
    WINDOW_ZERO_FACE,
    PAD_FACE,
    ZERO_FACE,
    OUTPUT_FACE,
    CURRENT_FACE,
    EMPTY_FACE,
    EDGE,
    "#a9a9a9",
    "#c7b9e0",
    "#eeeeee",
    "#000000",
    "#9a9a9a",
)


def save_gif(
    images: Sequence[Image.Image], path: PathT, durations: Sequence[int], comment: str
) -> PathT:
    """Write RGB frames as a looping GIF with one shared palette (flat colours stay exact)."""
    from PIL import Image, ImageColor

    w, h = images[0].size
    picks = [images[0], images[len(images) // 2], images[-1]]
    sample = Image.new("RGB", (w, len(picks) * h + 8), "white")
    for i, im in enumerate(picks):
        sample.paste(im, (0, i * h))
    # the flat colours exactly, then the shades of anti-aliased edges and text that median cut
    # finds in a few frames (median cut alone averages white into (250, 250, 251)); shades close
    # to a flat colour are dropped, since Pillow maps pixels to the palette at reduced precision
    exact = [ImageColor.getrgb(colour) for colour in PALETTE]
    found = cast(
        "list[int]", sample.quantize(colors=64, method=Image.Quantize.MEDIANCUT).getpalette()
    )[: 3 * 64]
    shades = [tuple(found[i : i + 3]) for i in range(0, len(found), 3)]
    shades = [
        s
        for s in shades
        if min(sum(abs(a - b) for a, b in zip(s, e, strict=True)) for e in exact) > 24
    ]
    palette = Image.new("P", (1, 1))
    palette.putpalette([v for rgb in exact + shades for v in rgb])
    frames = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    buffer = io.BytesIO()
    frames[0].save(
        buffer,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=durations,
        loop=0,
        comment=comment.encode(),
        disposal=1,
    )
    Path(path).write_bytes(buffer.getvalue())
    return path


def write_animation(anim: GalleryAnimation | VolumeAnimation, path: PathT, comment: str) -> PathT:
    images = [_render(anim.draw_frame(n)) for n in range(anim.n_frames)]
    return save_gif(images, path, anim.durations(), comment)


def write_gallery(directory: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Write every gallery animation (2-D cases and the 3-D views) as ``<name>.gif`` into ``directory``.

    Returns the list of paths written.
    """
    from . import _volume

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    data: GalleryFrames | VolumeFrames
    anim: GalleryAnimation | VolumeAnimation
    for name in names or list(GALLERY_CASES) + list(_volume.VOLUME_CASES):
        if name in GALLERY_CASES:
            data = gallery_frames(name)
            anim = GalleryAnimation(data)
            spec = gallery_spec(data)
        else:
            data = _volume.volume_frames(name)
            anim = _volume.VolumeAnimation(data)
            spec = _volume.volume_spec(data)
        written.append(write_animation(anim, directory / f"{name}.gif", spec))
    return written

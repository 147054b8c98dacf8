"""Every figure and animation the chapters draw stays legible on the book's page.

The book shows a notebook figure at its own size, saved at 100 dpi with a tight bounding box, as
long as it fits the 784-pixel text column; a wider one is scaled down to the column, its text with
it. A label of ``f`` points therefore measures ``f * 100 / 96 * scale`` points on the page
(``scale = min(1, 784 / width in pixels)``), and issue 14 asks for at least 8. Animations embedded
with ``to_jshtml`` are PNG frames at the animation's own dpi, shown at their own size up to the
column.

Each case below draws one figure family with the arguments its chapter uses (placeholder arrays
of the same shapes where the chapter passes data: the labels, not the values, set the layout), and
the test measures every text matplotlib actually draws.
"""

from pathlib import Path

import matplotlib
import matplotlib.text
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from convlab import viz

ROOT = Path(__file__).resolve().parents[1]
PAGE_PX = 784  # the book's text column at a 1400-pixel window (tests/test_browser.py's width)
NOTEBOOK_DPI = 100  # matplotlib's default, which the chapters' inline figures use
MIN_PT = 8.0


def drawn_texts(fig):
    """Every non-empty Text artist that drawing ``fig`` actually draws."""
    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    drawn = []
    original = matplotlib.text.Text.draw

    def record(self, renderer):
        if self.get_visible() and self.get_text().strip():
            drawn.append(self)
        return original(self, renderer)

    matplotlib.text.Text.draw = record
    try:
        fig.canvas.draw()
    finally:
        matplotlib.text.Text.draw = original
    return drawn


def smallest_on_page(fig, dpi=NOTEBOOK_DPI, tight=True):
    """(points on the page, text) of the smallest label of ``fig`` as the book shows it."""
    texts = drawn_texts(fig)
    if tight:  # notebook figures: saved with bbox_inches="tight" (pad 0.1 in each side)
        width = (fig.get_tightbbox(fig.canvas.get_renderer()).width + 0.2) * dpi
    else:  # animation frames: the whole figure
        width = fig.get_figwidth() * dpi
    scale = min(1.0, PAGE_PX / width)
    sizes = [(t.get_fontsize() * dpi / 96 * scale, t.get_text()) for t in texts]
    return min(sizes) if sizes else (float("inf"), "")


def _bench():
    return viz.recorded_benchmark()


# chapter: (what it draws, as the chapter calls it)
FIGURES = {
    "ch1 sliding windows": lambda: (
        viz.sliding_window_diagram(
            6, 3, padding=1, x=np.arange(1, 7), weight=np.full(3, 2.0)
        ).figure
    ),
    "ch1 padding modes 1-D": lambda: viz.padding_modes_figure(np.arange(1, 6), 2),
    "ch1 padding modes 2-D": lambda: viz.padding_modes_figure(np.arange(1, 10).reshape(3, 3), 2),
    "ch1 explorer still": lambda: (
        viz.sliding_window_diagram(
            7, 3, stride=2, padding=1, dilation=2, x=np.arange(1, 8), weight=np.full(3, 2.0)
        ).figure
    ),
    "ch2 dilation grids": lambda: viz.dilation_grid_figure(
        7, 3, rates=(1, 2, 3), outputs=((0, 0), (0, 1))
    ),
    "ch2 receptive field growth": lambda: viz.receptive_field_growth_figure(
        {"rates 1, 2, 4": [(3, 1, 2**i) for i in range(6)], "rate 1": [(3, 1, 1)] * 6}
    ),
    "ch2 gridding": lambda: viz.gridding_figure(((2, 2, 2), (1, 2, 3))),
    "ch3 channel connections": lambda: viz.channel_connections_figure(6, 6, groups=(1, 2, 6)),
    "ch3 depthwise connections": lambda: viz.channel_connections_figure(3, 6, groups=3),
    "ch3 feature maps": lambda: viz.feature_maps_figure(
        np.zeros((6, 112, 112)),
        titles=[f"green top-bottom {c}" for c in range(6)],
        ncols=3,
        suptitle="depthwise Sobel bank: two edge filters per colour channel",
    ),
    "ch4 zero insertion": lambda: viz.zero_insertion_figure(
        np.array([[1.0, 2.0], [3.0, 4.0]]), -np.arange(1.0, 10.0).reshape(3, 3) * 4, stride=2
    ),
    "ch4 scatter": lambda: viz.scatter_figure(
        np.array([[1.0, 2.0], [3.0, 4.0]]), -np.arange(1.0, 10.0).reshape(3, 3), stride=2
    ),
    "ch4 matrix view": lambda: viz.conv_matrix_figure(-np.arange(1.0, 10.0).reshape(3, 3), (4, 4)),
    "ch4 overlaps": lambda: viz.overlap_figure(((3, 2), (4, 2)), n_inputs=4),
    "ch4 coverage": lambda: viz.coverage_figure(
        {
            "2 x transposed k=3 s=2": viz.transposed_coverage(
                3, 3, 2, padding=1, output_padding=1, layers=2
            ),
            "2 x transposed k=4 s=2": viz.transposed_coverage(3, 4, 2, padding=1, layers=2),
            "2 x (nearest x2, 3x3 conv)": viz.resize_conv_coverage(3, 3, 2, layers=2),
        }
    ),
    "ch4 checkerboard photos": lambda: viz.filtered_images_figure(
        {
            name: np.zeros((48, 48))
            for name in ("input", "k=3 uniform", "k=3 bilinear", "k=4 uniform", "resize + 3x3")
        },
        ncols=3,
    ),
    "ch5 cost ratio": lambda: viz.separable_cost_figure(kernel_sizes=(3, 5, 7), max_channels=1024),
    "ch5 MobileNet": lambda: viz.mobilenet_macs_figure(
        [(f"pw{i}", "pw" if i % 2 else "dw", 1e6 * (i + 1)) for i in range(28)]
    ),
    "ch5 blur": lambda: viz.filtered_images_figure(
        {
            name: np.zeros((300, 256, 3))
            for name in ("original", "conv2d, 15x15 Gaussian", "column + row passes")
        }
    ),
    "ch5 blur timing": lambda: viz.blur_timing_figure(
        [3, 5, 9, 15, 21, 31], [1e-4, 6e-4, 2e-3, 5e-3, 9e-3, 2e-2], [6e-4] * 6
    ),
    "ch5 low rank": lambda: viz.low_rank_figure(
        -np.add.outer(np.arange(7.0), np.arange(7.0)) / 100, ranks=(1, 2)
    ),
    "ch6 bilinear": lambda: (
        viz.bilinear_figure(
            np.arange(1.0, 10.0).reshape(3, 3), [(0.7, 0.4), (-0.5, 2.0), (2.6, 2.3), (1.3, -1.2)]
        ).figure
    ),
    "ch6 offset fields": lambda: viz.offset_fields_figure(
        np.zeros((75, 64)),
        {name: np.zeros((1, 18, 75, 64)) for name in ("zero", "shift", "dilation", "rotate")},
        3,
        positions=[(20, 22), (42, 40)],
        padding=1,
        view=(8, 56, 8, 56),
        marker_size=18,
    ),
    "ch6 feature maps": lambda: viz.feature_maps_figure(
        np.zeros((4, 75, 64)), titles=["dilation pattern"] * 4, ncols=4, cmap="RdBu_r"
    ),
    "ch6 timing": lambda: (
        viz.timing_figure(
            {"convlab deform_conv2d": 0.02, "convlab conv2d": 0.002}, title="3x3 DCN v2 layer"
        ).figure
    ),
    "ch7 memory access": lambda: viz.memory_access_figure(3, 3, 2),
    "ch7 im2col": lambda: viz.im2col_figure(np.zeros((2, 3, 3)), 2),
    "ch7 benchmark": lambda: viz.benchmark_figure(_bench()),
    "ch7 roofline": lambda: viz.roofline_figure(_bench()),
    "ch7 engine": lambda: viz.engine_figure(48, 80, 3, 40, batch=4),
    "ch7 implicit": lambda: viz.implicit_figure(3, (5, 7), 1),
    "ch7 breadth": lambda: viz.breadth_figure(viz.recorded_breadth()),
}

# name: (the animation, as its chapter calls it)
ANIMATIONS = {
    "ch1 sliding window": lambda: viz.sliding_window_animation(
        np.arange(1.0, 7.0), np.full(3, 2.0), padding=1
    ),
    "ch4 zero insertion": lambda: viz.zero_insertion_animation(
        np.array([[1.0, 2.0], [3.0, 4.0]]), -np.arange(1.0, 10.0).reshape(3, 3), stride=2
    ),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_figure_text_is_at_least_8_points_on_the_page(name):
    fig = FIGURES[name]()
    size, text = smallest_on_page(fig)
    assert size >= MIN_PT, f"{name}: {text!r} is {size:.1f} pt on the page"


@pytest.mark.parametrize("name", sorted(ANIMATIONS))
def test_animation_text_is_at_least_8_points_on_the_page(name):
    anim = ANIMATIONS[name]()
    anim._draw_was_started = True  # drawn here by hand: no "deleted without rendering" warning
    anim.draw_frame(1)
    size, text = smallest_on_page(anim._fig, dpi=anim._fig.dpi, tight=False)
    assert size >= MIN_PT, f"{name}: {text!r} is {size:.1f} pt on the page"


def test_the_measure_sees_a_figure_shrunk_by_the_page():
    """An 8-point label on a 14-inch-wide figure shrinks below 8 points; on a 6-inch one it does not."""
    import matplotlib.pyplot as plt

    wide = plt.figure(figsize=(14, 2))
    wide.text(0.01, 0.5, "left")
    wide.text(0.9, 0.5, "right", fontsize=8)
    size, text = smallest_on_page(wide)
    assert text == "right" and size < 6
    narrow = plt.figure(figsize=(6, 2))
    narrow.text(0.01, 0.5, "left", fontsize=8)
    narrow.text(0.9, 0.5, "right", fontsize=6).set_visible(False)  # not drawn: not counted
    assert smallest_on_page(narrow) == (pytest.approx(8 * 100 / 96), "left")

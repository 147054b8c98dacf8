"""Tests of convlab.viz._deformable: the points and weights each figure draws.

The expected grids come from the convolution formula written out here (tap ``(i, j)`` of output
``(oy, ox)`` reads ``(oy*s - p + i*d, ox*s - p + j*d)``) and the expected bilinear weights are
computed by hand.
"""

import numpy as np
import pytest

import convlab
from convlab import viz


def _by_gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, (gid, found)
    return found[0]


def test_sampling_points_follow_the_convolution_formula():
    rng = np.random.default_rng(0)
    off = rng.standard_normal((2, 2 * 2 * 6, 3, 4))  # 2 offset groups, 2x3 kernel
    regular, deformed = viz.sampling_points(
        off, (2, 3), stride=(2, 1), padding=(1, 0), dilation=(1, 2), image=1, group=1
    )
    assert regular.shape == deformed.shape == (3, 4, 6, 2)
    for oy in range(3):
        for ox in range(4):
            for i in range(2):
                for j in range(3):
                    t = i * 3 + j
                    assert tuple(regular[oy, ox, t]) == (oy * 2 - 1 + i, ox + 2 * j)
                    ch = 2 * (6 + t)
                    assert deformed[oy, ox, t, 0] == regular[oy, ox, t, 0] + off[1, ch, oy, ox]
                    assert deformed[oy, ox, t, 1] == regular[oy, ox, t, 1] + off[1, ch + 1, oy, ox]


def test_sampling_points_rejects_wrong_channels():
    with pytest.raises(ValueError, match="offset must be"):
        viz.sampling_points(np.zeros((1, 10, 2, 2)), 3)


@pytest.mark.parametrize(
    "y, x, expected",
    [
        (
            0.25,
            1.5,
            [(0, 1, 0.375, True), (0, 2, 0.375, True), (1, 1, 0.125, True), (1, 2, 0.125, True)],
        ),
        (
            -0.5,
            0.0,
            [(-1, 0, 0.5, False), (-1, 1, 0.0, False), (0, 0, 0.5, True), (0, 1, 0.0, True)],
        ),
        (
            -1.0,
            1.0,
            [(-1, 1, 0.0, False), (-1, 2, 0.0, False), (0, 1, 0.0, True), (0, 2, 0.0, True)],
        ),
        (
            2.5,
            2.75,
            [(2, 2, 0.125, True), (2, 3, 0.375, False), (3, 2, 0.125, False), (3, 3, 0.375, False)],
        ),
    ],
)
def test_bilinear_neighbours(y, x, expected):
    got = viz.bilinear_neighbours(y, x, (3, 3))
    assert [(r, c, inside) for r, c, _, inside in got] == [
        (r, c, inside) for r, c, _, inside in expected
    ]
    np.testing.assert_allclose([w for _, _, w, _ in got], [w for _, _, w, _ in expected])


def test_bilinear_neighbours_agree_with_deform_conv2d():
    """Sum of weight * pixel over the inside neighbours is what a 1x1 deformable conv samples."""
    image = np.arange(1.0, 13.0).reshape(3, 4)
    for y, x in [(0.3, 0.6), (-0.4, 2.2), (2.7, 3.5), (-1.0, 0.0), (1.0, -0.999)]:
        expected = sum(
            w * image[r, c]
            for r, c, w, inside in viz.bilinear_neighbours(y, x, image.shape)
            if inside
        )
        off = np.zeros((1, 2, 3, 4))
        off[0, 0, 0, 0], off[0, 1, 0, 0] = y, x
        got = convlab.deform_conv2d(image[None, None], off, np.ones((1, 1, 1, 1)))[0, 0, 0, 0]
        assert got == pytest.approx(expected, abs=1e-12)


def test_bilinear_figure_draws_neighbours_and_weights():
    image = np.arange(9.0).reshape(3, 3)
    ax = viz.bilinear_figure(image, [(0.25, 1.5), (-0.5, 0.0)])
    assert _by_gid(ax, "point:0").get_data() == ([1.5], [0.25])
    assert _by_gid(ax, "weight:0:0:1").get_text() == "0.38"
    assert _by_gid(ax, "weight:0:1:2").get_text() == "0.12"
    # the second point's upper neighbours are outside: dashed cells
    assert _by_gid(ax, "neighbour:1:-1:0").get_linestyle() == "--"
    assert _by_gid(ax, "neighbour:1:0:0").get_linestyle() == "solid"
    assert _by_gid(ax, "weight:1:0:0").get_text() == "0.50"
    assert len([a for a in ax.get_children() if str(a.get_gid()).startswith("cell:")]) == 9


def test_sampling_grid_figure_draws_regular_and_deformed_taps():
    rng = np.random.default_rng(1)
    image = rng.random((8, 8))
    off = rng.standard_normal((1, 18, 8, 8))
    mask = rng.random((1, 9, 8, 8))
    ax = viz.sampling_grid_figure(image, off, 3, [(2, 3), (5, 5)], padding=1, mask=mask)
    regular, deformed = viz.sampling_points(off, 3, padding=1)
    grid = _by_gid(ax, "grid:1").get_offsets()
    np.testing.assert_array_equal(grid, regular[5, 5][:, ::-1])  # (x, y) in the plot
    samples = _by_gid(ax, "samples:0")
    np.testing.assert_allclose(samples.get_offsets(), deformed[2, 3][:, ::-1])
    np.testing.assert_allclose(samples.get_sizes(), 14 * mask[0, :, 2, 3])
    arrows = _by_gid(ax, "arrows:0")
    np.testing.assert_allclose(arrows.U, off[0, 1::2, 2, 3])
    np.testing.assert_allclose(arrows.V, off[0, 0::2, 2, 3])
    ax = viz.sampling_grid_figure(image, off, 3, [(2, 3)], padding=1, view=(1, 5, 2, 7))
    assert ax.get_xlim() == (1.5, 6.5) and ax.get_ylim() == (4.5, 0.5)


def test_offset_fields_figure_has_one_panel_per_field():
    image = np.zeros((6, 6))
    fields = {
        "zero": np.zeros((1, 18, 6, 6)),
        "shift": np.ones((1, 18, 6, 6)),
        "x": np.zeros((1, 18, 6, 6)),
    }
    fig = viz.offset_fields_figure(image, fields, 3, [(3, 3)], padding=1)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["zero", "shift", "x"]
    assert len(fig.axes) == 4


def test_loss_and_timing_figures():
    ax = viz.loss_curve_figure([4.0, 2.0, 1.0])
    np.testing.assert_array_equal(_by_gid(ax, "loss").get_ydata(), [4.0, 2.0, 1.0])
    assert ax.get_yscale() == "log"
    ax = viz.timing_figure({"convlab": 0.002, "torchvision": 0.02})
    assert _by_gid(ax, "bar:torchvision").get_width() == pytest.approx(20.0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["convlab", "torchvision"]

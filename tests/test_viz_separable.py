"""Tests of convlab.viz._separable: what each figure draws, read back from the returned artists.

Expected values are written out here from the formulas (``1/N + 1/D_K^2``, ``k^2`` and ``2k``,
Eckart–Young's ``sqrt(sum of discarded s^2)``), not taken from the functions under test.
"""

import numpy as np
import pytest
from matplotlib.colors import to_hex

from convlab import viz
from convlab.viz import _separable


def _by_gid(artists, gid):
    found = [a for a in artists if a.get_gid() == gid]
    assert len(found) == 1, (gid, [a.get_gid() for a in artists])
    return found[0]


def test_cost_ratios_follow_the_formula():
    n = np.array([1, 4, 32, 1000])
    for k in (3, 5, 7):
        np.testing.assert_allclose(viz.separable_cost_ratios(n, k), 1 / n + 1 / k**2, rtol=1e-12)
    # independent of the input's channels and size
    np.testing.assert_allclose(
        viz.separable_cost_ratios([8], 3, in_channels=5, input_size=(9, 11)),
        [1 / 8 + 1 / 9],
        rtol=1e-12,
    )


def test_cost_figure_curves_limits_and_seed_point():
    fig = viz.separable_cost_figure((3, 5), max_channels=256)
    ax = fig.axes[0]
    for k in (3, 5):
        line = _by_gid(ax.lines, f"ratio:{k}")
        n, ratio = line.get_xdata(), line.get_ydata()
        assert n[0] == 1 and n[-1] == 256
        np.testing.assert_allclose(ratio, 1 / n + 1 / k**2, rtol=1e-12)
        limit = _by_gid(ax.lines, f"limit:{k}")
        np.testing.assert_allclose(limit.get_ydata(), [1 / k**2] * 2)
        assert to_hex(limit.get_color()) == to_hex(line.get_color())
    seed = _by_gid(ax.lines, "seed")
    assert (seed.get_xdata()[0], seed.get_ydata()[0]) == (4, pytest.approx(39 / 108))
    assert ax.get_xscale() == "log"


def test_cost_figure_without_seed_point():
    ax = viz.separable_cost_figure((3,), max_channels=8, seed_point=False).axes[0]
    assert "seed" not in [line.get_gid() for line in ax.lines]


def test_mobilenet_figure_bars_and_shares():
    layers = [("conv", "conv", 2e6), ("dw1", "dw", 1e6), ("pw1", "pw", 6e6), ("fc", "fc", 1e6)]
    fig = viz.mobilenet_macs_figure(layers)
    ax = fig.axes[0]
    heights = [_by_gid(ax.patches, f"bar:{i}").get_height() for i in range(4)]
    assert heights == [2.0, 1.0, 6.0, 1.0]
    assert to_hex(_by_gid(ax.patches, "bar:2").get_facecolor()) == _separable.KIND_COLOURS["pw"]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["conv: 20.00%", "dw: 10.00%", "pw: 60.00%", "fc: 10.00%"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv", "dw1", "pw1", "fc"]


def test_mobilenet_figure_rejects_bad_layers():
    with pytest.raises(ValueError, match=r"kind must be one of .*got 'pool'"):
        viz.mobilenet_macs_figure([("avg", "pool", 1)])
    with pytest.raises(ValueError, match="layers must not be empty"):
        viz.mobilenet_macs_figure([])


def test_blur_timing_figure():
    k = [3, 5, 9]
    full, sep = [0.003, 0.010, 0.030], [0.002, 0.003, 0.005]
    fig = viz.blur_timing_figure(k, full, sep)
    left, right, twin = fig.axes
    np.testing.assert_allclose(_by_gid(left.lines, "time:conv2d").get_ydata(), [3.0, 10.0, 30.0])
    np.testing.assert_allclose(_by_gid(left.lines, "time:separable").get_ydata(), [2.0, 3.0, 5.0])
    np.testing.assert_array_equal(_by_gid(right.lines, "macs:conv2d").get_ydata(), [9, 25, 81])
    np.testing.assert_array_equal(_by_gid(right.lines, "macs:separable").get_ydata(), [6, 10, 18])
    np.testing.assert_allclose(
        _by_gid(twin.lines, "speedup:measured").get_ydata(), [1.5, 10 / 3, 6.0]
    )
    np.testing.assert_allclose(_by_gid(twin.lines, "speedup:ideal").get_ydata(), [1.5, 2.5, 4.5])


def test_blur_timing_figure_rejects_mismatched_lengths():
    with pytest.raises(
        ValueError, match=r"must be 1-D of one length, got shapes \(2,\), \(3,\), \(2,\)"
    ):
        viz.blur_timing_figure([3, 5], [1, 2, 3], [1, 2])


def test_low_rank_figure_images_and_errors():
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((5, 5))
    s = np.linalg.svd(kernel, compute_uv=False)
    fig = viz.low_rank_figure(kernel, ranks=(1, 2))
    axes = fig.axes
    assert len(axes) == 3
    np.testing.assert_array_equal(_by_gid(axes[0].images, "image:kernel").get_array(), kernel)
    assert axes[0].get_title() == "kernel (rank 5)"
    for ax, r in zip(axes[1:], (1, 2), strict=True):
        image = _by_gid(ax.images, f"image:rank{r}").get_array()
        assert np.linalg.matrix_rank(image) == r
        error = np.sqrt(np.sum(s[r:] ** 2))
        np.testing.assert_allclose(np.linalg.norm(kernel - image), error, rtol=1e-10)
        assert ax.get_title() == f"rank {r}: error {error:.3f}"
    # one symmetric colour scale for every panel
    vmax = np.abs(kernel).max()
    for ax in axes:
        assert ax.images[0].get_clim() == pytest.approx((-vmax, vmax))


def test_filtered_images_figure():
    gray, rgb = np.linspace(0, 1, 12).reshape(3, 4), np.full((3, 4, 3), 2.0)
    fig = viz.filtered_images_figure({"gray": gray, "rgb": rgb})
    assert [ax.get_title() for ax in fig.axes] == ["gray", "rgb"]
    np.testing.assert_array_equal(_by_gid(fig.axes[0].images, "image:gray").get_array(), gray)
    np.testing.assert_array_equal(
        _by_gid(fig.axes[1].images, "image:rgb").get_array(), np.ones((3, 4, 3))
    )
    with pytest.raises(ValueError, match="images must not be empty"):
        viz.filtered_images_figure({})
    with pytest.raises(ValueError, match=r"image 'bad' must be 2-D or 3-D"):
        viz.filtered_images_figure({"bad": np.ones(3)})


def test_blur_two_ways_agree_and_keep_the_size():
    rng = np.random.default_rng(1)
    image = rng.random((3, 20, 17))
    g = np.exp(-0.5 * (np.arange(7) - 3.0) ** 2 / 1.5**2)
    kernel = np.outer(g, g) / g.sum() ** 2
    full, sep = viz.blur_two_ways(image, kernel)
    assert full.shape == sep.shape == image.shape
    np.testing.assert_allclose(full, sep, rtol=1e-12, atol=1e-12)
    # a blur keeps a constant image constant away from the zero-padded border
    flat, _ = viz.blur_two_ways(np.ones((1, 20, 20)), kernel)
    np.testing.assert_allclose(flat[0, 3:-3, 3:-3], 1.0, rtol=1e-12)


def test_blur_two_ways_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"image must be 3-D \(C, H, W\)"):
        viz.blur_two_ways(np.ones((5, 5)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"kernel must be 2-D \(kH, kW\)"):
        viz.blur_two_ways(np.ones((1, 5, 5)), np.ones(3))

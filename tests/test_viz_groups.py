"""Tests of convlab.viz._groups: channel connections and feature-map grids, on the artists drawn.

The expected connections are written out from the rule in torch.nn.Conv2d's documentation
(seed 002: "groups=2 is two convolutions side by side, each seeing half the input channels and
producing half the output channels") and cross-checked against convlab.conv2d itself: an output
channel depends on an input channel exactly when a connection is listed.
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import convlab
from convlab import viz

CONFIGS = [(6, 6, 1), (6, 6, 2), (6, 6, 3), (6, 6, 6), (4, 8, 4), (2, 6, 2), (6, 2, 2), (1, 3, 1)]


@pytest.mark.parametrize("c_in, c_out, groups", CONFIGS)
def test_connections_follow_the_group_rule(c_in, c_out, groups):
    links = viz.channel_connections(c_in, c_out, groups)
    assert len(links) == c_out * (c_in // groups)
    for i, o, g in links:
        assert g == o // (c_out // groups) == i // (c_in // groups)
    assert len({(i, o) for i, o, _ in links}) == len(links)


@pytest.mark.parametrize("c_in, c_out, groups", CONFIGS)
def test_connections_are_what_conv2d_computes(c_in, c_out, groups):
    """Output o changes when input i changes iff (i, o) is a connection."""
    w = np.ones((c_out, c_in // groups, 1, 1))
    depends = set()
    for i in range(c_in):
        x = np.zeros((1, c_in, 1, 1))
        x[0, i] = 1.0
        out = convlab.conv2d(x, w, groups=groups)[0, :, 0, 0]
        depends |= {(i, int(o)) for o in np.flatnonzero(out)}
    assert depends == {(i, o) for i, o, _ in viz.channel_connections(c_in, c_out, groups)}


def test_connections_depthwise_multiplier():
    # groups = C_in, C_out = K * C_in: output o reads input o // K (seed 002)
    assert viz.channel_connections(3, 6, 3) == [
        (0, 0, 0),
        (0, 1, 0),
        (1, 2, 1),
        (1, 3, 1),
        (2, 4, 2),
        (2, 5, 2),
    ]


def test_connections_reject_groups_not_dividing_in_channels():
    with pytest.raises(ValueError, match=r"in_channels \(4\) must be divisible by groups \(3\)"):
        viz.channel_connections(4, 6, 3)


def test_connections_reject_groups_not_dividing_out_channels():
    with pytest.raises(ValueError, match=r"out_channels \(5\) must be divisible by groups \(2\)"):
        viz.channel_connections(4, 5, 2)


def test_connections_reject_zero_groups():
    with pytest.raises(ValueError, match=r"groups must be a positive int, got 0"):
        viz.channel_connections(4, 4, 0)


def _links(ax):
    return [line for line in ax.lines if line.get_gid().startswith("link:")]


def test_figure_one_panel_per_groups_value():
    fig = viz.channel_connections_figure(6, 6, groups=(1, 2, 6))
    assert len(fig.axes) == 3
    assert [len(_links(ax)) for ax in fig.axes] == [36, 18, 6]
    assert [ax.get_title().splitlines()[0] for ax in fig.axes] == [
        "groups = 1 (dense)",
        "groups = 2 (2 groups)",
        "groups = 6 (depthwise)",
    ]


def test_figure_lines_coloured_by_group():
    fig = viz.channel_connections_figure(6, 6, groups=(2,))
    colours = {}
    for line in _links(fig.axes[0]):
        _, _, i, o, g = line.get_gid().split(":")
        colours.setdefault(g, set()).add(line.get_color())
        assert (int(i), int(o), int(g)) in viz.channel_connections(6, 6, 2)
    assert len(colours) == 2 and all(len(c) == 1 for c in colours.values())
    assert colours["0"] != colours["1"]


def test_figure_line_endpoints_join_the_right_boxes():
    fig = viz.channel_connections_figure(2, 4, groups=2)
    ax = fig.axes[0]
    centre = {p.get_gid(): p.get_y() + p.get_height() / 2 for p in ax.patches}
    for line in _links(ax):
        _, p, i, o, _ = line.get_gid().split(":")
        y0, y1 = line.get_ydata()
        assert y0 == pytest.approx(centre[f"in:{p}:{i}"])
        assert y1 == pytest.approx(centre[f"out:{p}:{o}"])


def test_figure_draws_on_given_axes():
    fig, axes = plt.subplots(1, 2)
    assert viz.channel_connections_figure(4, 4, groups=(1, 4), axes=axes) is fig
    assert [len(_links(ax)) for ax in axes] == [16, 4]


def test_figure_rejects_wrong_number_of_axes():
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match=r"got 2 axes for 3 panels"):
        viz.channel_connections_figure(6, 6, groups=(1, 2, 3), axes=axes)


def test_figure_rejects_bad_groups_before_drawing():
    with pytest.raises(ValueError, match=r"in_channels \(6\) must be divisible by groups \(4\)"):
        viz.channel_connections_figure(6, 8, groups=(2, 4))
    assert plt.get_fignums() == []


# --- feature_maps_figure -----------------------------------------------------------------------


def test_feature_maps_grid_holds_each_map_with_its_title():
    maps = np.arange(6 * 4 * 5, dtype=float).reshape(6, 4, 5)
    titles = [f"channel {i}" for i in range(6)]
    fig = viz.feature_maps_figure(maps, titles=titles, ncols=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 8  # 2 rows of 4, two panels hidden
    assert [ax.get_title() for ax in shown] == titles
    for n, ax in enumerate(shown):
        (im,) = ax.images
        assert im.get_gid() == f"map:{n}"
        np.testing.assert_array_equal(im.get_array(), maps[n])
    assert not any(ax.axison for ax in fig.axes)


def test_feature_maps_drops_batch_axis_and_defaults():
    fig = viz.feature_maps_figure(np.zeros((1, 3, 4, 4)), suptitle="x")
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["map 0", "map 1", "map 2"]
    assert fig._suptitle.get_text() == "x"


def test_feature_maps_rgb_images():
    rgb = np.random.default_rng(0).random((2, 5, 5, 3))
    fig = viz.feature_maps_figure(rgb)
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), rgb[1])


def test_feature_maps_shared_scale():
    fig = viz.feature_maps_figure(np.ones((2, 3, 3)), vmin=-1, vmax=2)
    assert fig.axes[0].images[0].get_clim() == (-1, 2)


def test_feature_maps_reject_bad_shape():
    with pytest.raises(ValueError, match=r"maps must be \(N, H, W\).* got shape \(4, 4\)"):
        viz.feature_maps_figure(np.zeros((4, 4)))


def test_feature_maps_reject_title_count():
    with pytest.raises(ValueError, match=r"got 1 titles for 2 maps"):
        viz.feature_maps_figure(np.zeros((2, 3, 3)), titles=["a"])


def test_feature_maps_reject_empty():
    with pytest.raises(ValueError, match=r"maps must hold at least one map"):
        viz.feature_maps_figure(np.zeros((0, 3, 3)))

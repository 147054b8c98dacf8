"""Tests of convlab.viz._dilation: what each figure draws, checked on the returned artists.

Expected cells come from the definition written out here (output ``(i, j)`` reads
``(i*s + a*d, j*s + b*d)``), expected receptive fields from the closed forms ``1 + 2L`` (plain 3x3
stack) and ``2^(L+1) - 1`` (rates 1, 2, 4, ...; Yu & Koltun 2016), and expected gridding counts
from a brute-force enumeration of every path through the stack.
"""

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest

from convlab import viz


def _gids(ax, prefix):
    return sorted(p.get_gid() for p in ax.patches if p.get_gid() and p.get_gid().startswith(prefix))


# --- dilated_taps -------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1, 2, 3])
@pytest.mark.parametrize("output", [(0, 0), (1, 0), (0, 2)])
def test_dilated_taps_seed_7x7(rate, output):
    out_size = 7 - 2 * rate  # (7 - d*(3-1) - 1) / 1 + 1
    if max(output) >= out_size:
        with pytest.raises(ValueError, match=r"outside the output grid"):
            viz.dilated_taps(7, 3, rate, output)
        return
    i, j = output
    expected = [(i + a * rate, j + b * rate) for a in range(3) for b in range(3)]
    assert viz.dilated_taps(7, 3, rate, output) == expected


def test_dilated_taps_stride_moves_the_window_not_the_taps():
    first = viz.dilated_taps(9, 3, dilation=2, output=(0, 0), stride=2)
    second = viz.dilated_taps(9, 3, dilation=2, output=(0, 1), stride=2)
    assert [c for _, c in second] == [c + 2 for _, c in first]  # shifted by the stride
    assert sorted({c for _, c in first}) == [0, 2, 4]  # spaced by the rate


def test_dilated_taps_rectangular():
    assert viz.dilated_taps((5, 8), (2, 3), dilation=(1, 3), output=(3, 1)) == [
        (3, 1),
        (3, 4),
        (3, 7),
        (4, 1),
        (4, 4),
        (4, 7),
    ]


def test_dilated_taps_rejects_kernel_larger_than_input():
    with pytest.raises(
        ValueError, match=r"kernel extent .* = 9 is larger than the padded input size 7"
    ):
        viz.dilated_taps(7, 3, dilation=4)


def test_dilated_taps_rejects_negative_output():
    with pytest.raises(ValueError, match=r"output must be non-negative"):
        viz.dilated_taps(7, 3, output=(-1, 0))


# --- dilation_grid_figure -----------------------------------------------------------------------


def test_grid_figure_highlights_the_cells_each_output_reads():
    fig = viz.dilation_grid_figure(7, 3, rates=(1, 2, 3), outputs=((0, 0),))
    assert len(fig.axes) == 3
    for ax, rate in zip(fig.axes, (1, 2, 3), strict=True):
        assert len(_gids(ax, "cell:")) == 49
        read = {tuple(map(int, g.split(":")[2:])) for g in _gids(ax, "read:0:")}
        assert read == {(a * rate, b * rate) for a in range(3) for b in range(3)}
        (window,) = [p for p in ax.patches if p.get_gid() == "window:0"]
        assert window.get_width() == pytest.approx(2 * rate + 1 - 0.12)  # k + (k-1)(d-1) wide
        assert f"d = {rate}" in ax.get_title()
        assert f"output {7 - 2 * rate}x{7 - 2 * rate}" in ax.get_title()


def test_grid_figure_two_outputs_get_two_colours():
    fig = viz.dilation_grid_figure(7, 3, rates=(2,), outputs=((0, 0), (0, 1)))
    ax = fig.axes[0]
    faces = {}
    for p in ax.patches:
        gid = p.get_gid()
        if gid.startswith("read:"):
            faces.setdefault(gid.split(":")[1], set()).add(p.get_facecolor()[:3])
    assert len(faces["0"]) == 1 and len(faces["1"]) == 1 and faces["0"] != faces["1"]
    second = {tuple(map(int, g.split(":")[2:])) for g in _gids(ax, "read:1:")}
    assert second == {(a * 2, 1 + b * 2) for a in range(3) for b in range(3)}


def test_grid_figure_skips_an_output_missing_at_some_rate():
    # the seed's 7x7 input has a 1x1 output at rate 3: output (0, 1) exists only at rates 1, 2
    fig = viz.dilation_grid_figure(7, 3, rates=(1, 2, 3), outputs=((0, 0), (0, 1)))
    assert [len(_gids(ax, "read:1:")) for ax in fig.axes] == [9, 9, 0]
    assert [len(_gids(ax, "read:0:")) for ax in fig.axes] == [9, 9, 9]
    assert [len(_gids(ax, "window:")) for ax in fig.axes] == [2, 2, 1]


def test_grid_figure_rejects_output_missing_at_every_rate():
    with pytest.raises(
        ValueError, match=r"output \(5, 0\) is outside the output grid at every rate \(2, 3\)"
    ):
        viz.dilation_grid_figure(7, 3, rates=(2, 3), outputs=((5, 0),))


def test_grid_figure_rejects_empty_rates():
    with pytest.raises(ValueError, match=r"rates must hold at least one"):
        viz.dilation_grid_figure(rates=())


# --- receptive-field growth ---------------------------------------------------------------------


def test_receptive_field_growth_closed_forms():
    depth = 5
    plain = viz.receptive_field_growth([3] * depth)
    assert plain == [1 + 2 * n for n in range(depth + 1)]
    exponential = viz.receptive_field_growth([(3, 1, 2**n) for n in range(depth)])
    assert exponential == [2 ** (n + 1) - 1 for n in range(depth + 1)]


def test_receptive_field_growth_figure_lines():
    schedules = {"plain": [3, 3, 3, 3], "dilated": [(3, 1, 1), (3, 1, 2), (3, 1, 4), (3, 1, 8)]}
    fig = viz.receptive_field_growth_figure(schedules)
    lines = {line.get_gid(): line for line in fig.axes[0].lines}
    assert list(lines["rf:plain"].get_ydata()) == [1, 3, 5, 7, 9]
    assert list(lines["rf:dilated"].get_ydata()) == [1, 3, 7, 15, 31]
    assert list(lines["rf:dilated"].get_xdata()) == [0, 1, 2, 3, 4]


def test_receptive_field_growth_figure_on_given_axes():
    fig, ax = plt.subplots()
    assert viz.receptive_field_growth_figure({"a": [3]}, ax=ax) is fig
    assert [line.get_gid() for line in ax.lines] == ["rf:a"]


def test_receptive_field_growth_figure_rejects_empty():
    with pytest.raises(ValueError, match=r"schedules must hold at least one"):
        viz.receptive_field_growth_figure({})


# --- gridding ----------------------------------------------------------------------------------


def _paths_brute_force(rates, k=3):
    """Count paths to the centre by enumerating every choice of tap in every layer."""
    size = 1 + sum(r * (k - 1) for r in rates)
    counts = np.zeros((size, size), dtype=np.int64)
    centre = size // 2
    offsets = [range(-(k // 2), k // 2 + 1)] * 2
    for taps in itertools.product(*(itertools.product(*offsets) for _ in rates)):
        dy = sum(r * a for r, (a, _) in zip(rates, taps, strict=True))
        dx = sum(r * b for r, (_, b) in zip(rates, taps, strict=True))
        counts[centre + dy, centre + dx] += 1
    return counts


@pytest.mark.parametrize("rates", [(1,), (2,), (2, 2), (1, 2), (2, 2, 2), (1, 2, 3), (3, 1)])
def test_gridding_counts_match_path_enumeration(rates):
    np.testing.assert_array_equal(viz.gridding_counts(rates), _paths_brute_force(rates))


def test_gridding_counts_seed_claims():
    same = viz.gridding_counts((2, 2, 2))
    hybrid = viz.gridding_counts((1, 2, 3))
    assert same.shape == hybrid.shape == (13, 13)
    assert int((same > 0).sum()) == 49  # only every other row and column: the gridding holes
    assert same[1::2, :].sum() == 0 and same[:, 1::2].sum() == 0
    assert int((hybrid > 0).sum()) == 169  # HDC's (1, 2, 3) covers the whole field
    assert same.sum() == hybrid.sum() == 9**3  # every path counted once


def test_gridding_counts_rejects_even_kernel():
    with pytest.raises(ValueError, match=r"kernel_size must be odd .* got 4"):
        viz.gridding_counts((1, 2), kernel_size=4)


def test_gridding_counts_rejects_empty_rates():
    with pytest.raises(ValueError, match=r"rates must be a non-empty sequence"):
        viz.gridding_counts(())


def test_gridding_counts_rejects_zero_rate():
    with pytest.raises(ValueError, match=r"rate must be a positive int, got 0"):
        viz.gridding_counts((1, 0))


def test_gridding_figure_images_hold_the_counts():
    fig = viz.gridding_figure(((2, 2, 2), (1, 2, 3)))
    images = [im for ax in fig.axes for im in ax.images]
    assert [im.get_gid() for im in images] == ["gridding:0", "gridding:1"]
    first = images[0].get_array()
    np.testing.assert_array_equal(first.filled(0), viz.gridding_counts((2, 2, 2)))
    assert first.mask.sum() == 169 - 49  # the holes are masked (drawn white)
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert "49 of 169" in titles[0] and "169 of 169" in titles[1]

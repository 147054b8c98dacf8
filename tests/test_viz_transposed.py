"""Tests of convlab.viz._transposed: the zero-insertion steps, the figures' artists, the overlap counts.

Expected values come from elsewhere than the code under test: the seed's 2x2 -> 3x3 -> 7x7 -> 5x5
sizes, the scatter definition in ``tests/naive_transposed.py``, :func:`convlab.conv_matrix`, and
overlap counts enumerated here tap by tap (``count[o] = #{(i, t): i s + t - p = o}``, separable
in 2-D so the 2-D counts are outer products of 1-D ones).
"""

import numpy as np
import pytest
from naive_transposed import conv_transpose_scatter

import convlab
from convlab import viz

SEED_X = np.array([[1.0, 2.0], [3.0, 4.0]])
SEED_KERNEL = np.array([[-1, 2, -3], [4, -5, 6], [-7, 8, -9]], dtype=np.float64)


def _gids(ax, prefix):
    return sorted(p.get_gid() for p in ax.patches if p.get_gid() and p.get_gid().startswith(prefix))


# --- insert_zeros -------------------------------------------------------------------------------


def test_insert_zeros_seed():
    out = viz.insert_zeros(SEED_X, 2)
    np.testing.assert_array_equal(out, [[1, 0, 2], [0, 0, 0], [3, 0, 4]])


@pytest.mark.parametrize("shape,stride", [((3, 4), (2, 3)), ((1, 5), 1), ((2, 2), (1, 4))])
def test_insert_zeros_places_values_at_stride_multiples(shape, stride):
    x = np.arange(1, np.prod(shape) + 1, dtype=np.float64).reshape(shape)
    s = stride if isinstance(stride, tuple) else (stride, stride)
    out = viz.insert_zeros(x, stride)
    assert out.shape == ((shape[0] - 1) * s[0] + 1, (shape[1] - 1) * s[1] + 1)
    for (i, j), v in np.ndenumerate(x):
        assert out[i * s[0], j * s[1]] == v
    assert np.count_nonzero(out) == x.size


def test_insert_zeros_rejects_3d():
    with pytest.raises(ValueError, match=r"x must be 2-D \(H, W\).*got shape \(1, 2, 2\)"):
        viz.insert_zeros(np.ones((1, 2, 2)), 2)


def test_insert_zeros_rejects_zero_stride():
    with pytest.raises(ValueError, match=r"stride must be positive, got 0"):
        viz.insert_zeros(SEED_X, 0)


# --- zero_insertion_steps -----------------------------------------------------------------------


def test_zero_insertion_steps_seed_sizes():
    steps = viz.zero_insertion_steps(SEED_X, SEED_KERNEL, stride=2)
    assert steps.spread.shape == (3, 3)
    assert steps.pad == ((2, 2), (2, 2))  # k - p - 1 = 3 - 0 - 1
    assert steps.padded.shape == (7, 7)
    assert steps.output.shape == (5, 5)
    np.testing.assert_array_equal(steps.flipped, np.rot90(SEED_KERNEL, 2))
    kinds, counts = np.unique(steps.kinds, return_counts=True)
    assert dict(zip(kinds.tolist(), counts.tolist(), strict=True)) == {
        "input": 4,
        "zero": 5,
        "pad": 40,
    }
    np.testing.assert_array_equal(steps.padded[steps.kinds == "input"], [1, 2, 3, 4])


# (x shape, kernel shape, stride, padding, output_padding)
STEP_CASES = [
    ((2, 2), (3, 3), 2, 0, 0),  # the seed's example
    ((2, 2), (3, 3), 2, 0, 1),  # ... with the output padding that gives 6x6
    ((3, 4), (3, 2), (2, 3), (1, 0), (1, 2)),
    ((4, 4), (3, 3), 1, 0, 0),  # the seed's matrix example (stride 1, 2x2 -> 4x4 is its input)
    ((3, 3), (4, 4), 2, 1, 0),  # a DCGAN-style layer
    ((2, 3), (2, 2), 3, 1, 2),
]


@pytest.mark.parametrize("xs,ks,s,p,a", STEP_CASES)
def test_zero_insertion_equals_transposed_convolution(xs, ks, s, p, a):
    rng = np.random.default_rng(len(xs) + ks[0])
    x, w = rng.standard_normal(xs), rng.standard_normal(ks)
    steps = viz.zero_insertion_steps(x, w, stride=s, padding=p, output_padding=a)
    expected = convlab.conv_transpose2d(
        x[None, None], w[None, None], stride=s, padding=p, output_padding=a
    )
    naive = conv_transpose_scatter(
        x[None, None], w[None, None], stride=s, padding=p, output_padding=a
    )
    np.testing.assert_allclose(steps.output, expected[0, 0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(steps.output, naive[0, 0], rtol=1e-12, atol=1e-12)


def test_zero_insertion_rejects_padding_above_kernel_minus_one():
    with pytest.raises(ValueError, match=r"padding \(3, 3\) must be at most kernel_size - 1 = 2"):
        viz.zero_insertion_steps(SEED_X, SEED_KERNEL, stride=2, padding=3)


def test_zero_insertion_rejects_output_padding_not_below_stride():
    with pytest.raises(ValueError, match=r"output_padding"):
        viz.zero_insertion_steps(SEED_X, SEED_KERNEL, stride=2, output_padding=2)


def test_zero_insertion_rejects_3d_kernel():
    with pytest.raises(ValueError, match=r"kernel must be 2-D"):
        viz.zero_insertion_steps(SEED_X, np.ones((1, 3, 3)), stride=2)


# --- zero_insertion_figure ----------------------------------------------------------------------


def test_zero_insertion_figure_cells():
    fig = viz.zero_insertion_figure(SEED_X, SEED_KERNEL, stride=2)
    ax = fig.axes[0]
    assert len(_gids(ax, "input:value:")) == 4
    assert len(_gids(ax, "spread:input:")) == 4 and len(_gids(ax, "spread:zero:")) == 5
    assert len(_gids(ax, "padded:pad:")) == 40 and len(_gids(ax, "padded:input:")) == 4
    assert len(_gids(ax, "kernel:value:")) == 9 and len(_gids(ax, "output:value:")) == 25
    assert "padded:input:2:4" in _gids(ax, "padded:input:")  # x[0, 1] = 2 sits at (2, 4)
    texts = [t.get_text() for t in ax.texts]
    for v in fig.steps.output.ravel():
        assert f"{int(v)}" in texts
    np.testing.assert_array_equal(
        fig.steps.output,
        [
            [-1, 2, -5, 4, -6],
            [4, -5, 14, -10, 12],
            [-10, 14, -36, 24, -30],
            [12, -15, 34, -20, 24],
            [-21, 24, -55, 32, -36],
        ],
    )


# --- zero_insertion_animation -------------------------------------------------------------------


def test_animation_frames_and_terms():
    anim = viz.zero_insertion_animation(SEED_X, SEED_KERNEL, stride=2)
    anim._draw_was_started = True
    steps = anim.steps
    assert anim.n_frames == 25
    for frame in range(anim.n_frames):
        r, c = anim.position(frame)
        assert sum(v * w for v, w in anim.terms(frame)) == steps.output[r, c]
        # every non-zero term comes from an input value, never from an inserted zero or padding
        assert all(v in SEED_X for v, _ in anim.terms(frame))
    assert anim.terms(12) == [(1.0, -9.0), (2.0, -7.0), (3.0, -3.0), (4.0, -1.0)]


def test_animation_draw_frame_moves_window_and_fills_outputs():
    anim = viz.zero_insertion_animation(SEED_X, SEED_KERNEL, stride=2)
    anim._draw_was_started = True
    anim.draw_frame(7)  # output (1, 2)
    window = next(p for p in anim.ax.patches if p.get_gid() == "window")
    assert window.get_xy()[0] == 2 and (window.get_width(), window.get_height()) == (3, 3)
    labels = {p.get_gid(): label.get_text() for p, label in anim._outputs.values()}
    assert labels["output:value:1:2"] == "14"
    assert labels["output:value:1:3"] == ""  # not computed yet
    assert anim._caption.get_text() == "y[1, 2] = 1×6 + 2×4 = 14"


def test_animation_html_is_small():
    anim = viz.zero_insertion_animation(SEED_X, SEED_KERNEL, stride=2, dpi=40)
    html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == 25 and len(html) < 2_000_000


def test_animation_rejects_zero_interval():
    with pytest.raises(ValueError, match=r"interval must be a positive int, got 0"):
        viz.zero_insertion_animation(SEED_X, SEED_KERNEL, stride=2, interval=0)


# --- scatter view -------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 2, (3, 2)])
def test_scatter_stamps_sum_to_the_full_transposed_convolution(stride):
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    stamps = viz.scatter_stamps(x, w, stride)
    expected = conv_transpose_scatter(x[None, None], w[None, None], stride=stride)[0, 0]
    np.testing.assert_allclose(stamps.sum(axis=0), expected, rtol=1e-12, atol=1e-12)
    s = stride if isinstance(stride, tuple) else (stride, stride)
    for n, stamp in enumerate(stamps):
        i, j = divmod(n, 3)
        np.testing.assert_allclose(
            stamp[i * s[0] : i * s[0] + 3, j * s[1] : j * s[1] + 2], x[i, j] * w
        )
        assert np.count_nonzero(stamp) == np.count_nonzero(x[i, j] * w)


def test_scatter_figure_images_and_crop():
    fig = viz.scatter_figure(SEED_X, SEED_KERNEL, stride=2, padding=1)
    images = [im for ax in fig.axes for im in ax.images]
    assert [im.get_gid() for im in images] == ["stamp:0", "stamp:1", "stamp:2", "stamp:3", "sum"]
    total = np.asarray(images[-1].get_array())
    crop = next(p for p in fig.axes[-1].patches if p.get_gid() == "crop")
    assert (crop.get_width(), crop.get_height()) == (3, 3)
    expected = convlab.conv_transpose2d(
        SEED_X[None, None], SEED_KERNEL[None, None], stride=2, padding=1
    )[0, 0]
    np.testing.assert_array_equal(total[1:4, 1:4], expected)


def test_scatter_figure_rejects_padding_that_removes_everything():
    with pytest.raises(ValueError, match=r"padding \(3, 3\) removes the whole \(5, 5\) result"):
        viz.scatter_figure(SEED_X, SEED_KERNEL, stride=2, padding=3)


# --- conv_matrix_figure -------------------------------------------------------------------------


def test_conv_matrix_figure_shows_w_and_its_transpose():
    fig = viz.conv_matrix_figure(SEED_KERNEL, (4, 4))
    images = {im.get_gid(): np.ma.filled(im.get_array(), 0) for ax in fig.axes for im in ax.images}
    dense = convlab.conv_matrix(SEED_KERNEL, (4, 4)).toarray()
    np.testing.assert_array_equal(images["matrix"], dense)
    np.testing.assert_array_equal(images["matrix_T"], dense.T)
    # the seed's first row: the kernel's rows at columns 0-2, 4-6, 8-10
    np.testing.assert_array_equal(
        images["matrix"][0], [-1, 2, -3, 0, 4, -5, 6, 0, -7, 8, -9, 0, 0, 0, 0, 0]
    )
    # one written number per non-zero entry, in each panel
    assert [len(ax.texts) for ax in fig.axes] == [36, 36]


def test_conv_matrix_figure_stride_2():
    fig = viz.conv_matrix_figure(np.ones((3, 3)), (5, 5), stride=2)
    shapes = [np.asarray(im.get_array()).shape for ax in fig.axes for im in ax.images]
    assert shapes == [(4, 25), (25, 4)]


def test_conv_matrix_figure_rejects_several_channels():
    with pytest.raises(ValueError, match=r"one input and one output channel.*\(2, 1, 3, 3\)"):
        viz.conv_matrix_figure(np.ones((2, 1, 3, 3)), (4, 4))


# --- overlap counts -----------------------------------------------------------------------------


def _counts_1d(n, k, s, p=0, a=0, layers=1):
    """count[o] = number of (element, tap) pairs with i*s + t - p == o, layer after layer."""
    c = np.ones(n, dtype=np.int64)
    for _ in range(layers):
        out = np.zeros((len(c) - 1) * s + k - 2 * p + a, dtype=np.int64)
        for i, v in enumerate(c):
            for t in range(k):
                o = i * s + t - p
                if 0 <= o < len(out):
                    out[o] += v
        c = out
    return c


def _resize_counts_1d(n, k, s, p, layers=1):
    c = np.ones(n, dtype=np.int64)
    for _ in range(layers):
        up = np.repeat(c, s)
        out = np.zeros(len(up) + 2 * p - k + 1, dtype=np.int64)
        for o in range(len(out)):
            out[o] = sum(up[o + t - p] for t in range(k) if 0 <= o + t - p < len(up))
        c = out
    return c


@pytest.mark.parametrize(
    "n,k,s,p,a,layers",
    [
        (3, 3, 2, 0, 0, 1),
        (4, 3, 2, 1, 1, 1),
        (4, 4, 2, 1, 0, 1),
        (3, 3, 2, 1, 1, 2),
        (4, 4, 2, 1, 0, 2),
        (3, 5, 3, 0, 2, 1),
        (2, 3, 1, 0, 0, 2),
    ],
)
def test_transposed_coverage_counts_pairs(n, k, s, p, a, layers):
    c = _counts_1d(n, k, s, p, a, layers)
    np.testing.assert_array_equal(viz.transposed_coverage(n, k, s, p, a, layers), np.outer(c, c))


def test_transposed_coverage_rectangular():
    got = viz.transposed_coverage((2, 3), (3, 4), (2, 2), padding=(0, 1))
    np.testing.assert_array_equal(got, np.outer(_counts_1d(2, 3, 2), _counts_1d(3, 4, 2, 1)))


def test_even_overlap_when_kernel_is_a_multiple_of_the_stride():
    interior = viz.transposed_coverage(6, 4, 2, padding=1)[1:-1, 1:-1]
    assert (interior == 4).all()  # (k / s)^2
    uneven = viz.transposed_coverage(6, 3, 2, padding=1, output_padding=1)[:-1, :-1]
    assert sorted(np.unique(uneven).tolist()) == [1, 2, 4]
    two = viz.transposed_coverage(6, 3, 2, padding=1, output_padding=1, layers=2)
    # one layer gives rows 1, 2, 1, 2, ...; the second reads one of them at even positions and
    # two neighbours (1 + 2 = 3) at odd ones: 1, 3, 2, 3, 1, 3, 2, 3, ... (period 4)
    assert two[2, 3:11].tolist() == [6, 2, 6, 4, 6, 2, 6, 4]  # row 2 is 2 * that pattern


@pytest.mark.parametrize(
    "n,k,s,p,layers", [(4, 3, 2, None, 1), (3, 4, 2, 1, 1), (3, 3, 3, 0, 1), (3, 3, 2, None, 2)]
)
def test_resize_conv_coverage(n, k, s, p, layers):
    pad = (k - 1) // 2 if p is None else p
    c = _resize_counts_1d(n, k, s, pad, layers)
    got = viz.resize_conv_coverage(n, k, s, padding=p, layers=layers)
    np.testing.assert_array_equal(got, np.outer(c, c))


def test_resize_conv_is_even_away_from_the_border():
    got = viz.resize_conv_coverage(5, 3, 2)
    assert got.shape == (10, 10) and (got[1:-1, 1:-1] == 9).all()


def test_coverage_rejects_zero_layers():
    with pytest.raises(ValueError, match=r"layers must be a positive int, got 0"):
        viz.transposed_coverage(3, 3, 2, layers=0)
    with pytest.raises(ValueError, match=r"layers must be a positive int, got 0"):
        viz.resize_conv_coverage(3, 3, 2, layers=0)


# --- overlap_figure / coverage_figure -----------------------------------------------------------


def test_overlap_figure_footprints_match_counts():
    fig = viz.overlap_figure(((3, 2), (4, 2), (5, 3)), n_inputs=4)
    for p, ((k, s), ax) in enumerate(zip(((3, 2), (4, 2), (5, 3)), fig.axes, strict=True)):
        expected = _counts_1d(4, k, s)
        np.testing.assert_array_equal(fig.counts[p], expected)
        covered = np.zeros(len(expected), dtype=int)
        for gid in _gids(ax, f"footprint:{p}:"):
            covered[int(gid.split(":")[3])] += 1
        np.testing.assert_array_equal(covered, expected)
        assert len(_gids(ax, f"count:{p}:")) == len(expected)


def test_overlap_figure_rejects_no_cases():
    with pytest.raises(ValueError, match=r"cases must hold at least one"):
        viz.overlap_figure(())


def test_coverage_figure_images():
    counts = {"a": viz.transposed_coverage(3, 3, 2), "b": viz.resize_conv_coverage(3, 3, 2)}
    fig = viz.coverage_figure(counts)
    for p, (ax, arr) in enumerate(zip(fig.axes, counts.values(), strict=True)):
        (im,) = ax.images
        assert im.get_gid() == f"coverage:{p}"
        np.testing.assert_array_equal(im.get_array(), arr)
        assert len(ax.texts) == arr.size
    assert fig.axes[0].get_title() == "a\ncounts 1 to 4"


def test_coverage_figure_rejects_bad_counts():
    with pytest.raises(ValueError, match=r"counts must hold at least one array"):
        viz.coverage_figure({})
    with pytest.raises(
        ValueError, match=r"counts\['x'\] must be a non-empty 2-D array, got shape \(3,\)"
    ):
        viz.coverage_figure({"x": np.ones(3)})

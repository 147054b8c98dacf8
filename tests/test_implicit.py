"""convlab._implicit: the convolution as an implicit product (input rows read by tap, no columns).

Against the slow reference of tests/naive.py in 1, 2 and 3 dimensions, across strides, dilations,
paddings (zeros and the other modes, which the wrappers apply before), groups, kernels larger
than the input's halo, odd sizes, float32 and float64; with the default cut and with a cut forced
into one-row blocks, short passes over the sum and several parts of the output channels, so that
every branch of the kernel runs on small layers; the same bits on 1, 2 and 3 threads; and the
plan depends on the shapes only.
"""

import numba
import numpy as np
import pytest
import tolerances
from naive import convnd

import convlab
from convlab import _implicit, _tile


def force_small_cut(monkeypatch):
    """Blocks of one output row or a few columns, passes of 3 rows of the sum, and the output
    channels cut in parts: the smallest units the kernel can be given."""
    monkeypatch.setattr(_implicit, "BLOCK_BYTES", 1)
    monkeypatch.setattr(_implicit, "OUT_BYTES", 1)
    monkeypatch.setattr(_implicit, "TARGET_FLAT", 1)
    monkeypatch.setattr(_implicit, "MIN_FLAT", 1)
    monkeypatch.setattr(_implicit, "SUM_BYTES", 1)
    monkeypatch.setattr(_implicit, "MIN_PASS", 3)
    monkeypatch.setattr(_implicit, "MIN_UNITS", 64)


# nd, batch, C_in, C_out, size, kernel, stride, padding, dilation, groups
CASES = [
    (1, 2, 5, 7, 37, 3, 1, 1, 1, 1),
    (1, 1, 8, 6, 50, 5, 2, 3, 2, 2),
    (1, 3, 4, 16, 300, 1, 1, 0, 1, 1),  # 1x1: read in place
    (1, 1, 6, 4, 9, 4, 3, 0, 1, 1),
    (2, 2, 3, 13, (9, 11), 3, 1, 1, 1, 1),
    (2, 1, 8, 12, (12, 10), (5, 3), (2, 1), (2, 0), (1, 2), 4),
    (2, 1, 6, 9, (7, 13), 7, 1, 3, 1, 3),  # kernel as large as the image
    (2, 2, 4, 8, (10, 10), 1, 1, 0, 1, 2),  # 1x1 grouped, in place
    (2, 1, 4, 5, (17, 15), 3, 3, 1, 2, 1),  # stride larger than the dilated step
    (2, 1, 5, 4, (8, 9), (2, 4), (2, 3), (1, 2), (3, 1), 1),  # even kernels, mixed
    (3, 2, 3, 4, (5, 6, 7), 3, 1, 1, 1, 1),
    (3, 1, 4, 6, (6, 5, 8), (2, 3, 2), (2, 1, 3), (1, 0, 2), (1, 2, 1), 2),
    (3, 1, 2, 3, (4, 7, 5), 1, 1, 0, 1, 1),
    (3, 1, 6, 4, (7, 6, 6), 3, 2, 2, 2, 2),
    # depth stride and dilation 1: the input planes kept in a ring, one new plane per depth
    (3, 2, 4, 6, (9, 5, 6), (3, 2, 3), (1, 2, 1), (2, 0, 1), (1, 1, 2), 2),
    (3, 1, 3, 5, (3, 6, 5), (5, 3, 3), 1, (3, 1, 1), 1, 1),  # deeper than the input: zero planes
    # depth padding beyond the kernel's reach: the first and last depths are the bias alone
    (3, 1, 3, 4, (2, 5, 6), 3, 1, (3, 1, 1), 1, 1),
    (3, 2, 4, 4, (2, 5, 6), (3, 3, 1), 1, (3, 1, 0), 1, 2),  # ... written straight to the output
]


def _shapes(case):
    nd, batch, c_in, c_out, size, kernel, stride, padding, dilation, groups = case
    t = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    return nd, batch, c_in, c_out, t(size), t(kernel), t(stride), t(padding), t(dilation), groups


def _data(case, dtype):
    nd, batch, c_in, c_out, size, kernel, stride, padding, dilation, groups = _shapes(case)
    rng = np.random.default_rng(c_in * 7 + c_out + nd)
    x = rng.standard_normal((batch, c_in) + size).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + kernel).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    return x, w, b


def _run(case, x, w, b):
    nd, _, _, c_out, size, kernel, stride, padding, dilation, groups = _shapes(case)
    out_size = tuple(
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, p, d, k, st in zip(size, padding, dilation, kernel, stride, strict=True)
    )
    out = np.full((x.shape[0], c_out) + out_size, np.nan, dtype=x.dtype)
    _implicit.conv(x, w, b, out, stride, dilation, groups, padding)
    return out


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("shift", ["by-rule", "always"])
@pytest.mark.parametrize("forced", [False, True], ids=["default-cut", "forced-cut"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}d-{i}" for i, c in enumerate(CASES)])
def test_implicit_matches_naive(case, forced, shift, dtype, monkeypatch):
    """``always``: the shifted copies wherever they can be used (stride 1 along the width, 2-D
    and 3-D), not only where the rule finds the thrown-away positions worth them."""
    if forced:
        force_small_cut(monkeypatch)
    if shift == "always":
        monkeypatch.setattr(_implicit, "SHIFT_MIN_HALO", 0.0)
    x, w, b = _data(case, dtype)
    _, _, _, _, _, _, stride, padding, dilation, groups = _shapes(case)
    got = _run(case, x, w, b)
    want = convnd(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, **tolerances.tol(dtype))


@pytest.mark.parametrize(
    "case",
    [CASES[1], CASES[5], CASES[6], CASES[11], CASES[14]],
    ids=["1d", "2d", "2d-shifted", "3d", "3d-ring"],
)
def test_implicit_same_bits_on_any_thread_count(case):
    x, w, b = _data(case, np.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2, 3):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            results.append(_run(case, x, w, b))
    finally:
        numba.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_implicit_larger_layers_match_conv_by_taps():
    """Layers whose default cut has several blocks of rows, passes over the sum and parts of the
    output channels, against the float64 sum over taps (conv2d with algorithm="direct")."""
    rng = np.random.default_rng(5)
    for x_shape, w_shape, kw in [
        ((1, 64, 28, 28), (64, 64, 7, 7), dict(padding=3)),
        ((1, 96, 20, 20), (160, 96, 3, 3), dict(stride=2, padding=1)),
        ((2, 64, 1, 700), (96, 64, 1, 5), dict(padding=(0, 4), dilation=(1, 2))),
    ]:
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        b = rng.standard_normal(w_shape[0]).astype(np.float32)
        want = convlab.conv2d(
            x.astype(np.float64),
            w.astype(np.float64),
            b.astype(np.float64),
            **kw,
            algorithm="direct",
        )
        case = (
            2,
            x_shape[0],
            x_shape[1],
            w_shape[0],
            x_shape[2:],
            w_shape[2:],
            kw.get("stride", 1),
            kw["padding"],
            kw.get("dilation", 1),
            1,
        )
        got = _run(case, x, w, b)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3 * np.abs(want).max())


def test_plan_depends_on_shapes_only(monkeypatch):
    args = (2, 64, 128, (1, 5, 5), (1, 2, 2), (1, 1, 1), (1, 40, 40), 4, 1)
    plan = _implicit.implicit_plan(*args)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 7)
    assert _implicit.implicit_plan(*args) == plan
    shape, col_blocks, col_w, row_blocks, rows, parts, rq, wq, kc = plan
    assert col_blocks * col_w >= 40 and row_blocks * rows >= 40
    # the buffer's rows: the block's and the halo the 5x5 taps read at stride 2
    assert rq == rows + 2 and wq == col_w + 2
    assert 1 <= kc <= 64 * 25 and 1 <= parts


def test_plan_cuts_one_row_layers_into_column_blocks():
    plan = _implicit.implicit_plan(1, 64, 64, (1, 1, 5), (1, 1, 1), (1, 1, 1), (1, 1, 4096), 4, 1)
    _, col_blocks, col_w, row_blocks, rows, *_ = plan
    assert row_blocks == rows == 1 and col_blocks >= 2 and col_blocks * col_w >= 4096


def test_tap_offsets_address_each_taps_plane_row_and_column():
    boff = np.empty(2 * 3 * 3, np.int64)
    rq, wq = 6, 9
    _implicit.tap_offsets(2, (1, 3, 3), (1, 2, 2), (1, 1, 1), rq, wq, boff)
    plane = rq * wq
    # channel 1, tap (2, 1): phase (0, 1) of channel 1's four planes, row 1, column 0
    assert boff[(1 * 3 + 2) * 3 + 1] == (1 * 4 + 0 * 2 + 1) * plane + 1 * wq + 0
    # channel 0, tap (1, 2): phase (1, 0), row 0, column 1
    assert boff[1 * 3 + 2] == (0 * 4 + 1 * 2 + 0) * plane + 0 * wq + 1


def test_shifted_copies_threshold_follows_the_vector_width():
    # measured on AVX-512 (Zen 5) and AVX2 (Zen 3): the narrower tile pays more for the copies
    want = 0.15 if _tile.VECTOR_BYTES == 64 else 0.28
    assert want == _implicit.SHIFT_MIN_HALO


def test_shifted_copies_where_many_positions_would_be_thrown_away(monkeypatch):
    rule = _implicit.shifted_copies
    monkeypatch.setattr(_implicit, "SHIFT_MIN_HALO", 0.15)  # AVX-512's threshold
    one = (1, 1, 1)
    assert rule((1, 7, 7), one, one, (1, 28, 28))  # 6 of 34 positions per row
    assert rule((1, 7, 7), one, one, (1, 14, 14))  # 6 of 20
    assert not rule((1, 5, 5), one, one, (1, 35, 35))  # 4 of 39
    assert not rule((1, 3, 3), one, (1, 2, 2), (1, 56, 56))  # 4 of 60
    assert rule((1, 3, 3), one, (1, 6, 6), (1, 32, 32))  # 12 of 44
    assert not rule((1, 7, 7), (1, 1, 2), one, (1, 28, 28))  # strided along the width
    assert not rule((1, 1, 7), one, one, (1, 1, 28))  # 1-D: a block is part of one row
    assert not rule((1, 7, 1), one, one, (1, 28, 28))  # nothing thrown away
    assert rule((3, 3, 5), one, one, (4, 6, 10))  # 3-D: 4 of 14
    # exactly at the threshold: 6 of 40
    assert rule((1, 7, 7), one, one, (1, 34, 34))
    assert not rule((1, 7, 7), one, one, (1, 35, 35))


def test_shifted_copies_buffer_has_no_thrown_away_positions():
    """With shifted copies the buffer's rows are the block's output columns, and tap (kh, kw)
    of channel c reads copy kw of channel c at row kh: column 0, no offset along the row."""
    args = (1, 16, 16, (1, 7, 7), (1, 1, 1), (1, 1, 1), (1, 14, 14), 4, 1)
    plan = _implicit.implicit_plan(*args, shift=True)
    _, col_blocks, col_w, _, rows, _, rq, wq, _ = plan
    assert wq == col_w == 14 and col_blocks == 1 and rq == rows + 6
    boff = np.empty(2 * 7 * 7, np.int64)
    _implicit.tap_offsets(2, (1, 7, 7), (1, 1, 1), (1, 1, 1), rq, wq, boff, 0, False, True)
    for c in range(2):
        for kh in range(7):
            for kw in range(7):
                assert boff[(c * 7 + kh) * 7 + kw] == (c * 7 + kw) * rq * wq + kh * wq
    buf, *_ = _implicit._buffer_sizes(plan, 16, 16, (1, 7, 7), (1, 1, 1), 1, True)
    assert buf == 16 * 7 * rq * wq


def test_tap_offsets_in_a_ring_follow_the_input_depth():
    """With the ring, tap kd of a block whose first input depth is d_first reads depth slot
    (d_first + kd) % KD, where _fill put that input plane."""
    kernel, rq, wq = (3, 2, 2), 4, 5
    plain = np.empty(2 * 3 * 2 * 2, np.int64)
    _implicit.tap_offsets(2, kernel, (1, 1, 1), (1, 1, 1), rq, wq, plain)
    for d_first in (-1, 0, 4):
        ring = np.empty_like(plain)
        _implicit.tap_offsets(2, kernel, (1, 1, 1), (1, 1, 1), rq, wq, ring, d_first, True)
        for c in range(2):
            for kd in range(3):
                slot = (d_first + kd) % 3
                rows = slice(((kd * 2 + c) * 2) * 2, ((kd * 2 + c) * 2 + 2) * 2)  # depth first
                moved = (slot - kd) * rq * wq  # from plane (c, kd) to plane (c, slot)
                np.testing.assert_array_equal(ring[rows], plain[rows] + moved)


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_depth_taps_on_padding_are_skipped_only_for_a_finite_weight(value):
    """A block leaves the depth taps that read padding out of its sum (they add zeros), unless
    the weight holds an inf or a NaN: then 0 * inf gives NaN, as in the definition."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 4, 5, 5))
    w = rng.standard_normal((3, 2, 3, 3, 3))
    w[1, 0, 0, 1, 1] = value  # depth tap 0: reads the padding at output depth 0
    got = convlab.conv3d(x, w, padding=1)
    with np.errstate(invalid="ignore"):  # 0 * inf in the reference, on purpose
        want = convnd(x, w, padding=1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    assert np.isnan(got[0, 1, 0]).all()  # the padded plane's zeros times the inf (or NaN)
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12)

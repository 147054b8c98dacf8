"""deform_conv2d and deform_conv2d_grad against recorded torchvision tensors, the naive reference,
finite differences and the plain convolutions they must reduce to."""

import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_deformable import bilinear
from naive_deformable import deform_conv2d as naive_deform_conv2d
from tolerances import load_npz, tol

import convlab
import convlab.deformable as deformable
from convlab import conv2d, deform_conv2d
from convlab.deformable import deform_conv2d_grad

DATA = pathlib.Path(__file__).parent / "data"

REF = load_npz(DATA / "deformable.npz")
NAMES = sorted({k.split("/")[0] for k in REF})


def _call_args(name):
    a = REF[f"{name}/args"]
    return dict(stride=tuple(a[0:2]), padding=tuple(a[2:4]), dilation=tuple(a[4:6]))


def _inputs(name):
    return (
        REF[f"{name}/x"],
        REF[f"{name}/offset"],
        REF[f"{name}/w"],
        REF.get(f"{name}/b"),
        REF.get(f"{name}/mask"),
    )


def _rand(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# --------------------------------------------------------------------------- torchvision


def test_case_table_covers_what_it_should():
    assert {
        "offset_groups2",
        "weight_groups2",
        "far_offsets",
        "integer_offsets",
        "no_mask",
        "basic_f64",
    } <= set(NAMES)
    dtypes = {REF[f"{n}/x"].dtype for n in NAMES}
    assert dtypes == {np.dtype(np.float32), np.dtype(np.float64)}


@pytest.mark.kernels
@pytest.mark.parametrize("name", NAMES)
def test_matches_torchvision(name):
    x, off, w, b, m = _inputs(name)
    out = deform_conv2d(x, off, w, b, mask=m, **_call_args(name))
    expected = REF[f"{name}/out"]
    assert out.dtype == x.dtype and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, **tol(x.dtype))


@pytest.mark.kernels
@pytest.mark.parametrize("name", NAMES)
def test_gradients_match_torchvision_autograd(name):
    x, off, w, b, m = _inputs(name)
    g = deform_conv2d_grad(REF[f"{name}/grad_out"], x, off, w, b, mask=m, **_call_args(name))
    t = tol(x.dtype)
    # gradients sum many more products than the output: a looser absolute tolerance in float32
    t = dict(t, atol=t["atol"] * 10)
    np.testing.assert_allclose(g.input, REF[f"{name}/gx"], **t)
    np.testing.assert_allclose(g.offset, REF[f"{name}/goffset"], **t)
    np.testing.assert_allclose(g.weight, REF[f"{name}/gw"], **t)
    if b is None:
        assert g.bias is None
    else:
        np.testing.assert_allclose(g.bias, REF[f"{name}/gb"], **t)
    if m is None:
        assert g.mask is None
    else:
        np.testing.assert_allclose(g.mask, REF[f"{name}/gmask"], **t)
    for got, arg in [(g.input, x), (g.offset, off), (g.weight, w)]:
        assert got.shape == arg.shape and got.dtype == x.dtype


@pytest.mark.kernels
@pytest.mark.parametrize("tap_major", [True, False])
@pytest.mark.parametrize(
    "name", ["basic", "both_groups", "weight_groups2", "groups_f64", "no_mask"]
)
def test_both_column_layouts_match_torchvision(name, tap_major, monkeypatch):
    """The forward pass samples in (tap, channel) or (channel, tap) order depending on sizes."""
    monkeypatch.setattr(deformable, "_TAP_MAJOR_WEIGHT_SHARE", 0 if tap_major else 10**12)
    x, off, w, b, m = _inputs(name)
    out = deform_conv2d(x, off, w, b, mask=m, **_call_args(name))
    np.testing.assert_allclose(out, REF[f"{name}/out"], **tol(x.dtype))


# --------------------------------------------------------------------------- naive reference


@pytest.mark.parametrize("name", NAMES)
def test_matches_naive(name):
    x, off, w, b, m = _inputs(name)
    args = _call_args(name)
    expected = naive_deform_conv2d(x, off, w, b, mask=m, **args)
    out = deform_conv2d(x.astype(np.float64), off.astype(np.float64), w, b, mask=m, **args)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.kernels
@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    hw=st.tuples(st.integers(2, 6), st.integers(2, 6)),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.integers(1, 2),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    groups=st.sampled_from([1, 2]),
    offset_groups=st.sampled_from([1, 2]),
    use_mask=st.booleans(),
    scale=st.sampled_from([0.5, 2.0, 5.0]),
)
def test_property_matches_naive(
    seed, hw, k, stride, padding, dilation, groups, offset_groups, use_mask, scale
):
    rng = np.random.default_rng(seed)
    extent = [dilation * (kk - 1) + 1 for kk in k]
    if any(e > s + 2 * padding for e, s in zip(extent, hw, strict=True)):
        return
    oh, ow = convlab.conv_output_size(hw, k, stride, padding, dilation)
    x = _rand(rng, (2, 2, *hw))
    w = _rand(rng, (2, 2 // groups, *k))
    off = scale * _rand(rng, (2, 2 * offset_groups * k[0] * k[1], oh, ow))
    m = rng.random((2, offset_groups * k[0] * k[1], oh, ow)) if use_mask else None
    b = _rand(rng, (2,))
    args = dict(stride=(stride,) * 2, padding=(padding,) * 2, dilation=(dilation,) * 2)
    np.testing.assert_allclose(
        deform_conv2d(x, off, w, b, mask=m, **args),
        naive_deform_conv2d(x, off, w, b, mask=m, **args),
        rtol=1e-12,
        atol=1e-12,
    )


def test_naive_bilinear_border_rule():
    """The naive reference's own border rule, checked by hand (torchvision's values)."""
    plane = np.arange(1.0, 7.0).reshape(2, 3)  # [[1, 2, 3], [4, 5, 6]]
    assert bilinear(plane, 0.5, 0.5) == 3.0  # (1 + 2 + 4 + 5) / 4
    assert bilinear(plane, -0.5, 0.0) == 0.5  # half of row 0, half of the zero row above
    assert bilinear(plane, -1.0, 0.0) == 0.0  # y <= -1: outside
    assert bilinear(plane, 1.5, 2.5) == 1.5  # only (1, 2) is inside: 6 / 4
    assert bilinear(plane, 0.0, 3.0) == 0.0  # x >= W: outside


# --------------------------------------------------------------------------- cross-consistency


@pytest.mark.kernels
@pytest.mark.parametrize(
    "stride, padding, dilation, groups",
    [
        (1, 0, 1, 1),
        (1, 1, 1, 1),
        (2, 1, 1, 1),
        (1, 2, 2, 1),
        ((2, 1), (1, 0), (1, 2), 2),
    ],
)
def test_zero_offsets_equal_conv2d(stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x = _rand(rng, (2, 4, 7, 6))
    w = _rand(rng, (6, 4 // groups, 3, 3))
    b = _rand(rng, (6,))
    expected = conv2d(x, w, b, stride, padding, dilation, groups)
    off = np.zeros((2, 18, *expected.shape[2:]))
    out = deform_conv2d(x, off, w, b, stride, padding, dilation)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def _shifted_padded(x, dy, dx, padding):
    """The zero-padded input moved by (dy, dx): out[..., y, x] = xpad[..., y + dy, x + dx], with
    zeros wherever that falls outside the padded input."""
    s = max(abs(dy), abs(dx))
    big = np.pad(x, ((0, 0), (0, 0), (padding + s,) * 2, (padding + s,) * 2))
    h, w = x.shape[-2] + 2 * padding, x.shape[-1] + 2 * padding
    return big[..., s + dy : s + dy + h, s + dx : s + dx + w]


@pytest.mark.kernels
@pytest.mark.parametrize("dy, dx", [(1, 0), (0, -2), (2, 1), (-1, -1), (7, 0)])
def test_integer_offsets_equal_shifted_conv(dy, dx):
    rng = np.random.default_rng(1)
    x = _rand(rng, (1, 3, 6, 7))
    w = _rand(rng, (2, 3, 3, 3))
    off = np.zeros((1, 18, 6, 7))
    off[:, 0::2] = dy
    off[:, 1::2] = dx
    out = deform_conv2d(x, off, w, padding=1)
    expected = conv2d(_shifted_padded(x, dy, dx, 1), w)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.kernels
def test_offsets_emulate_dilation_exactly():
    """Tap (i, j) of a padding-1 3x3 kernel moved by (i - 1, j - 1) is the dilation-2 tap."""
    rng = np.random.default_rng(2)
    x = _rand(rng, (1, 2, 8, 9))
    w = _rand(rng, (3, 2, 3, 3))
    off = np.zeros((1, 18, 8, 9))
    for i in range(3):
        for j in range(3):
            off[:, 2 * (i * 3 + j)] = i - 1
            off[:, 2 * (i * 3 + j) + 1] = j - 1
    np.testing.assert_allclose(
        deform_conv2d(x, off, w, padding=1),
        conv2d(x, w, padding=2, dilation=2),
        rtol=1e-12,
        atol=1e-12,
    )


def test_weight_groups_are_concatenated_convolutions():
    rng = np.random.default_rng(3)
    x = _rand(rng, (2, 4, 5, 5))
    w = _rand(rng, (6, 2, 3, 3))
    off = 1.3 * _rand(rng, (2, 18, 5, 5))
    m = rng.random((2, 9, 5, 5))
    out = deform_conv2d(x, off, w, padding=1, mask=m)
    halves = [
        deform_conv2d(x[:, 2 * g : 2 * g + 2], off, w[3 * g : 3 * g + 3], padding=1, mask=m)
        for g in range(2)
    ]
    np.testing.assert_allclose(out, np.concatenate(halves, axis=1), rtol=1e-12, atol=1e-12)


@pytest.mark.kernels
@pytest.mark.parametrize("tap_major", [True, False])
def test_offset_and_weight_groups_that_cut_each_other(tap_major, monkeypatch):
    """6 channels in 2 offset groups (3 + 3) and 3 weight groups (2 + 2 + 2): the channel runs
    that share both groups are 2, 1, 1, 2 long."""
    monkeypatch.setattr(deformable, "_TAP_MAJOR_WEIGHT_SHARE", 0 if tap_major else 10**12)
    rng = np.random.default_rng(13)
    x = _rand(rng, (2, 6, 5, 4))
    w = _rand(rng, (3, 2, 3, 3))
    off = 1.4 * _rand(rng, (2, 36, 5, 4))
    m = rng.random((2, 18, 5, 4))
    b = _rand(rng, (3,))
    args = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    np.testing.assert_allclose(
        deform_conv2d(x, off, w, b, mask=m, **args),
        naive_deform_conv2d(x, off, w, b, mask=m, **args),
        rtol=1e-12,
        atol=1e-12,
    )


def test_offset_groups_split_the_channels():
    rng = np.random.default_rng(4)
    x = _rand(rng, (1, 4, 5, 6))
    w = _rand(rng, (3, 4, 3, 3))
    off = 1.3 * _rand(rng, (1, 36, 5, 6))
    m = rng.random((1, 18, 5, 6))
    out = deform_conv2d(x, off, w, padding=1, mask=m)
    parts = [
        deform_conv2d(
            x[:, 2 * g : 2 * g + 2],
            off[:, 18 * g : 18 * g + 18],
            w[:, 2 * g : 2 * g + 2],
            padding=1,
            mask=m[:, 9 * g : 9 * g + 9],
        )
        for g in range(2)
    ]
    np.testing.assert_allclose(out, parts[0] + parts[1], rtol=1e-12, atol=1e-12)


def test_mask_of_ones_is_v1_and_mask_scales_linearly():
    rng = np.random.default_rng(5)
    x = _rand(rng, (1, 2, 5, 5))
    w = _rand(rng, (2, 2, 3, 3))
    b = _rand(rng, (2,))
    off = _rand(rng, (1, 18, 3, 3))
    v1 = deform_conv2d(x, off, w, b)
    np.testing.assert_allclose(
        deform_conv2d(x, off, w, b, mask=np.ones((1, 9, 3, 3))), v1, rtol=1e-14
    )
    half = deform_conv2d(x, off, w, b, mask=np.full((1, 9, 3, 3), 0.5))
    np.testing.assert_allclose(
        half - b[:, None, None], 0.5 * (v1 - b[:, None, None]), rtol=1e-12, atol=1e-12
    )
    assert np.all(deform_conv2d(x, off, w, b, mask=np.zeros((1, 9, 3, 3))) == b[:, None, None])


def test_samples_outside_the_border_read_zero():
    rng = np.random.default_rng(6)
    x = _rand(rng, (1, 2, 4, 4))
    w = _rand(rng, (3, 2, 3, 3))
    b = _rand(rng, (3,))
    for far in (4.0, -5.0, 1e30, np.inf, -np.inf):
        out = deform_conv2d(x, np.full((1, 18, 2, 2), far), w, b)
        assert np.all(out == b[:, None, None]), far


def test_point_at_minus_one_reads_exactly_zero_even_next_to_inf():
    """torchvision's outer rule: y <= -1 reads 0 without touching the pixel row 0 (0 * inf)."""
    x = np.ones((1, 1, 3, 3))
    x[0, 0, 0, :] = np.inf
    off = np.zeros((1, 2, 3, 3))
    off[:, 0] = -1.0 - np.arange(3)[:, None]  # every point lands at y = -1
    out = deform_conv2d(x, off, np.ones((1, 1, 1, 1)))
    assert np.all(out == 0)


def test_nan_offset_makes_its_position_nan():
    rng = np.random.default_rng(7)
    x = _rand(rng, (1, 2, 5, 5))
    w = _rand(rng, (2, 2, 3, 3))
    off = _rand(rng, (1, 18, 3, 3))
    off[0, 4, 1, 2] = np.nan
    out = deform_conv2d(x, off, w)
    assert np.all(np.isnan(out[0, :, 1, 2]))
    assert np.isnan(out).sum() == 2


def test_dtypes_and_empty_batch():
    rng = np.random.default_rng(8)
    x = _rand(rng, (1, 2, 4, 4), np.float32)
    w = _rand(rng, (2, 2, 3, 3), np.float64)
    off = np.zeros((1, 18, 2, 2), dtype=np.float64)
    assert deform_conv2d(x, off, w).dtype == np.float32
    assert deform_conv2d(np.ones((1, 2, 4, 4), dtype=int), off, w).dtype == np.float64
    empty = deform_conv2d(np.zeros((0, 2, 4, 4)), np.zeros((0, 18, 2, 2)), w)
    assert empty.shape == (0, 2, 2, 2)


@pytest.mark.kernels
def test_column_tiles_give_the_same_result(monkeypatch):
    """Force many small column tiles: the tile boundaries must not show."""
    rng = np.random.default_rng(9)
    x = _rand(rng, (2, 3, 9, 11))
    w = _rand(rng, (4, 3, 3, 3))
    b = _rand(rng, (4,))
    off = 1.7 * _rand(rng, (2, 18, 9, 11))
    m = rng.random((2, 9, 9, 11))
    g_out = _rand(rng, (2, 4, 9, 11))
    whole = deform_conv2d(x, off, w, b, padding=1, mask=m)
    grads = deform_conv2d_grad(g_out, x, off, w, b, padding=1, mask=m)
    monkeypatch.setattr(deformable, "COLUMN_TILE_BYTES", 1)
    monkeypatch.setattr(deformable, "_MIN_TILE_COLUMNS", 7)  # 99 positions: 15 tiles, last short
    np.testing.assert_allclose(
        deform_conv2d(x, off, w, b, padding=1, mask=m), whole, rtol=1e-13, atol=1e-13
    )
    tiled = deform_conv2d_grad(g_out, x, off, w, b, padding=1, mask=m)
    for a, e in zip(tiled, grads, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- forward work split

# The forward pass cuts each image's output positions into blocks and the rows of its column matrix
# into chunks (and, when there are fewer blocks than threads, the chunks into parts whose sums are
# added at the end): these settings force every cut on small inputs.
_CUTS = {
    "one block": dict(BLOCK_BYTES=2**30, _MIN_BLOCK=32, _CHUNK_ROWS=10**6, _LAYOUT_THREADS=1),
    # 63 positions (7 x 9) in blocks of 10: block edges in the middle of output rows
    "blocks of 10": dict(BLOCK_BYTES=1, _MIN_BLOCK=10, _CHUNK_ROWS=10**6, _LAYOUT_THREADS=1),
    "chunks": dict(BLOCK_BYTES=1, _MIN_BLOCK=10, _CHUNK_ROWS=1, _LAYOUT_THREADS=1),
    # one block, rows split into up to 4 parts (split-K), whatever the machine's thread count
    "split-K": dict(BLOCK_BYTES=2**30, _MIN_BLOCK=32, _CHUNK_ROWS=1, _LAYOUT_THREADS=4),
    "blocks and split-K": dict(BLOCK_BYTES=1, _MIN_BLOCK=32, _CHUNK_ROWS=1, _LAYOUT_THREADS=4),
}


def _set_cut(monkeypatch, cut, tap_major):
    for name, value in _CUTS[cut].items():
        monkeypatch.setattr(deformable, name, value)
    monkeypatch.setattr(deformable, "_TAP_MAJOR_WEIGHT_SHARE", 0 if tap_major else 10**12)


def _layer(rng, dtype, n=2, c_in=6, c_out=4, groups=2, offset_groups=3, hw=(7, 9), use_mask=True):
    x = _rand(rng, (n, c_in, *hw), dtype)
    w = _rand(rng, (c_out, c_in // groups, 3, 3), dtype)
    b = _rand(rng, (c_out,), dtype)
    off = (1.7 * _rand(rng, (n, 18 * offset_groups, *hw))).astype(dtype)
    m = rng.random((n, 9 * offset_groups, *hw)).astype(dtype) if use_mask else None
    return x, off, w, b, m


@pytest.mark.kernels
@pytest.mark.parametrize("tap_major", [True, False])
@pytest.mark.parametrize("cut", sorted(_CUTS))
@pytest.mark.parametrize("groups, offset_groups", [(1, 1), (2, 3), (3, 2)])
def test_forward_cuts_match_naive(cut, tap_major, groups, offset_groups, monkeypatch):
    """Batch 2, weight and offset groups that cut each other's channels, every way of cutting the
    work: float64 results equal the naive reference."""
    _set_cut(monkeypatch, cut, tap_major)
    layout = deformable._forward_layout(6, 6 // groups, 6, groups, 9, 63, 8)
    assert layout[0] == tap_major
    if cut.endswith("split-K"):
        assert layout[4] > 1
    x, off, w, b, m = _layer(
        np.random.default_rng(20), np.float64, c_out=6, groups=groups, offset_groups=offset_groups
    )
    args = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    np.testing.assert_allclose(
        deform_conv2d(x, off, w, b, mask=m, **args),
        naive_deform_conv2d(x, off, w, b, mask=m, **args),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.kernels
@pytest.mark.parametrize("tap_major", [True, False])
@pytest.mark.parametrize("cut", ["blocks of 10", "split-K"])
def test_forward_cuts_float32_without_mask_or_bias(cut, tap_major, monkeypatch):
    _set_cut(monkeypatch, cut, tap_major)
    x, off, w, _, _ = _layer(np.random.default_rng(21), np.float32, use_mask=False)
    out = deform_conv2d(x, off, w, padding=1)
    assert out.dtype == np.float32
    expected = naive_deform_conv2d(x, off, w, padding=(1, 1))
    np.testing.assert_allclose(out, expected, **tol(np.float32))


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("tap_major", [True, False])
@pytest.mark.parametrize("cut", ["blocks of 10", "chunks", "blocks and split-K"])
def test_forward_is_identical_on_one_thread(cut, tap_major, dtype, monkeypatch):
    """The blocks and parts are fixed by the shapes, not by the thread count: bit-identical."""
    import numba

    _set_cut(monkeypatch, cut, tap_major)
    x, off, w, b, m = _layer(
        np.random.default_rng(22), dtype, c_in=16, c_out=8, groups=2, offset_groups=2, hw=(9, 11)
    )
    many = deform_conv2d(x, off, w, b, padding=1, mask=m)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = deform_conv2d(x, off, w, b, padding=1, mask=m)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(one, many)


def test_forward_layout_bounds_the_columns():
    """The benchmark layers: rows padded off multiples of 1 KiB, blocks that cover the positions,
    and a column buffer far below the whole column matrix (torchvision's)."""
    for c, hw, c_out in [(64, 56, 64), (128, 28, 128), (256, 14, 256), (16, 5, 8)]:
        positions = hw * hw
        for itemsize in (4, 8):
            tap_major, chunk, ld, block, k_parts = deformable._forward_layout(
                c, c, c_out, 1, 9, positions, itemsize
            )
            assert (ld * itemsize) % 1024 != 0
            assert ld >= (chunk * c if tap_major else chunk * 9)
            n_blocks = -(-positions // block)
            assert (n_blocks - 1) * block < positions <= n_blocks * block
            if positions >= 56 * 56:
                assert k_parts == 1
            threads = 2
            assert threads * block * ld < c * 9 * positions or positions < 64


def test_blas_thread_count_is_restored():
    """deform_conv2d holds SciPy's BLAS to one thread while it runs and restores the setting."""
    from convlab._blas import blas_library, blas_threads_setter

    if blas_library() is None:
        pytest.skip("SciPy's BLAS has no thread setter")
    setter = blas_threads_setter()
    previous = setter(3)
    try:
        x, off, w, b, m = _layer(np.random.default_rng(23), np.float32)
        deform_conv2d(x, off, w, b, padding=1, mask=m)
        deform_conv2d_grad(np.ones((2, 4, 7, 9), np.float32), x, off, w, b, padding=1, mask=m)
    finally:
        assert setter(previous) == 3


# --------------------------------------------------------------------------- gradients


def _finite_difference(f, arr, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of arr (in place)."""
    grad = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "offset_groups, groups, use_mask", [(1, 1, True), (2, 2, True), (1, 1, False)]
)
def test_gradients_match_finite_differences(offset_groups, groups, use_mask):
    rng = np.random.default_rng(10)
    x = _rand(rng, (2, 2, 4, 4))
    w = _rand(rng, (2, 2 // groups, 3, 3))
    b = _rand(rng, (2,))
    off = 1.3 * _rand(rng, (2, 18 * offset_groups, 2, 2))
    m = rng.random((2, 9 * offset_groups, 2, 2)) if use_mask else None
    g_out = _rand(rng, (2, 2, 2, 2))
    args = dict(stride=(2, 1), padding=1, dilation=(1, 2))

    def loss():
        return float(np.sum(deform_conv2d(x, off, w, b, mask=m, **args) * g_out))

    g = deform_conv2d_grad(g_out, x, off, w, b, mask=m, **args)
    # random offsets never land on integer coordinates, where the bilinear value has kinks
    for analytic, arr in [(g.input, x), (g.offset, off), (g.weight, w), (g.bias, b)] + (
        [(g.mask, m)] if use_mask else []
    ):
        np.testing.assert_allclose(analytic, _finite_difference(loss, arr), rtol=1e-6, atol=1e-7)


def test_input_gradient_is_the_adjoint():
    """deform_conv2d is linear in the input: <D x, y> = <x, D^T y>."""
    rng = np.random.default_rng(11)
    x = _rand(rng, (2, 4, 6, 5))
    w = _rand(rng, (4, 2, 3, 3))
    off = 2 * _rand(rng, (2, 36, 3, 3))
    m = rng.random((2, 18, 3, 3))
    y = _rand(rng, (2, 4, 3, 3))
    args = dict(stride=2, padding=1, mask=m)
    lhs = np.sum(deform_conv2d(x, off, w, **args) * y)
    rhs = np.sum(x * deform_conv2d_grad(y, x, off, w, **args).input)
    assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))


def test_offset_gradient_at_integer_points_is_one_sided():
    """At an integer point the derivative is the slope towards larger coordinates (torchvision)."""
    x = np.array([[[[0.0, 1.0, 5.0], [0.0, 0.0, 0.0]]]])
    off = np.zeros((1, 2, 2, 3))
    g = deform_conv2d_grad(np.ones((1, 1, 2, 3)), x, off, np.ones((1, 1, 1, 1)))
    # d/dx at x = 0, 1, 2 on row 0: 1 - 0, 5 - 1, 0 - 5 (the pixel past the border is 0)
    np.testing.assert_array_equal(g.offset[0, 1, 0], [1.0, 4.0, -5.0])
    # d/dy on row 0 reads row 1 minus row 0; on row 1 the row below is outside (0)
    np.testing.assert_array_equal(g.offset[0, 0], [[0.0, -1.0, -5.0], [0.0, 0.0, 0.0]])


def test_gradient_rejects_wrong_grad_output_shape():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(
        ValueError, match=r"grad_output must have the output's shape .*\(1, 1, 2, 2\)"
    ):
        deform_conv2d_grad(
            np.zeros((1, 1, 3, 3)), x, np.zeros((1, 18, 2, 2)), np.zeros((1, 1, 3, 3))
        )


def test_grad_is_exported():
    assert convlab.deform_conv2d is deform_conv2d
    assert "deform_conv2d" in convlab.__all__


# --------------------------------------------------------------------------- bad input

X = np.zeros((2, 4, 6, 6))
W = np.zeros((3, 4, 3, 3))
OFF = np.zeros((2, 18, 4, 4))


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        (
            (np.zeros((4, 6, 6)), OFF, W),
            {},
            ValueError,
            r"input must be 4-D .*got shape \(4, 6, 6\)",
        ),
        ((X, OFF, np.zeros((3, 4, 3))), {}, ValueError, r"weight must be 4-D"),
        ((X, np.zeros((18, 4, 4)), W), {}, ValueError, r"offset must be 4-D"),
        ((X, OFF, W), dict(mask=np.zeros((9, 4, 4))), ValueError, r"mask must be 4-D"),
        (
            (X, np.zeros((2, 10, 4, 4)), W),
            {},
            ValueError,
            r"offset.shape\[1\] \(10\) must be a positive multiple of 2\*kH\*kW = 2\*3\*3 = 18",
        ),
        (
            (X, np.zeros((2, 0, 4, 4)), W),
            {},
            ValueError,
            r"offset.shape\[1\] \(0\) must be a positive multiple",
        ),
        (
            (X, np.zeros((2, 18, 5, 4)), W),
            {},
            ValueError,
            r"offset's spatial size \(5, 4\) must equal the output size \(4, 4\)",
        ),
        (
            (X, np.zeros((1, 18, 4, 4)), W),
            {},
            ValueError,
            r"offset has batch size 1 but input has 2",
        ),
        (
            (X, OFF, W),
            dict(mask=np.zeros((2, 18, 4, 4))),
            ValueError,
            r"mask.shape\[1\] \(18\) must equal offset_groups\*kH\*kW = 1\*3\*3 = 9",
        ),
        (
            (X, OFF, W),
            dict(mask=np.zeros((2, 9, 4, 5))),
            ValueError,
            r"mask's spatial size \(4, 5\) must equal the output size \(4, 4\)",
        ),
        (
            (X, OFF, W),
            dict(mask=np.zeros((1, 9, 4, 4))),
            ValueError,
            r"mask has batch size 1 but input has 2",
        ),
        (
            (X, np.zeros((2, 54, 4, 4)), W),
            {},
            ValueError,
            r"in_channels \(4\) must be divisible by the offset groups \(3",
        ),
        (
            (X, OFF, np.zeros((3, 3, 3, 3))),
            {},
            ValueError,
            r"in_channels \(4\) must be divisible by weight.shape\[1\] \(3\)",
        ),
        (
            (X, OFF, np.zeros((3, 2, 3, 3))),
            {},
            ValueError,
            r"out_channels \(3, weight.shape\[0\]\) must be divisible by the weight groups \(2",
        ),
        (
            (X, OFF, np.zeros((3, 4, 0, 3))),
            {},
            ValueError,
            r"weight must not have a zero-size dimension",
        ),
        ((np.zeros((2, 0, 6, 6)), OFF, W), {}, ValueError, r"input must have at least one channel"),
        (
            (X, OFF, W),
            dict(bias=np.zeros(4)),
            ValueError,
            r"bias must have shape \(C_out,\) = \(3,\)",
        ),
        ((X, OFF, W), dict(stride=0), ValueError, r"stride must be positive"),
        ((X, OFF, W), dict(padding=-1), ValueError, r"padding must be non-negative"),
        (
            (X, OFF, W),
            dict(padding="same"),
            TypeError,
            r"padding must be an int or a tuple of 2 ints",
        ),
        (
            (X, OFF, W),
            dict(dilation=(1, 2, 3)),
            ValueError,
            r"dilation must be an int or a tuple of 2 ints",
        ),
        (
            (np.zeros((1, 4, 2, 2)), np.zeros((1, 18, 1, 1)), W),
            {},
            ValueError,
            r"kernel extent .* is larger than the padded input",
        ),
        ((X.astype(complex), OFF, W), {}, TypeError, r"input must be a real numeric array"),
    ],
)
def test_invalid_params(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        deform_conv2d(*args, **kwargs)
    # the gradient validates the same way
    with pytest.raises(exc, match=match):
        deform_conv2d_grad(np.zeros((2, 3, 4, 4)), *args, **kwargs)


def test_rejection_happens_before_any_kernel(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a kernel ran")

    for name in (
        "_deform_plan",
        "_deform_im2col",
        "_deform_conv_forward",
        "_deform_backward_products",
        "_deform_col2im",
        "_deform_coord_grad",
    ):
        monkeypatch.setattr(deformable._k, name, boom)
    with pytest.raises(ValueError):
        deform_conv2d(X, np.zeros((2, 18, 3, 4)), W)
    with pytest.raises(ValueError):
        deform_conv2d_grad(np.zeros((2, 3, 4, 4)), X, OFF, W, mask=np.zeros((2, 8, 4, 4)))


def test_concurrent_calls_from_python_threads():
    """Every parallel launch goes through parallel_launch(): threads get their own, right results."""
    import threading

    rng = np.random.default_rng(12)
    jobs = [
        (
            _rand(rng, (1, 4, 7 + i, 6)),
            1.5 * _rand(rng, (1, 18, 7 + i, 6)),
            rng.random((1, 9, 7 + i, 6)),
        )
        for i in range(4)
    ]
    w = _rand(rng, (3, 4, 3, 3))
    expected = [deform_conv2d(x, off, w, padding=1, mask=m) for x, off, m in jobs]
    results = [None] * len(jobs)

    def worker(i):
        x, off, m = jobs[i]
        for _ in range(3):
            results[i] = deform_conv2d(x, off, w, padding=1, mask=m)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, exp in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, exp)

"""convlab.separable: depthwise-separable layers, kernel separation by SVD, separable filtering.

References: torch's two ``F.conv2d`` calls recorded in ``tests/data/separable.npz``
(``tests/recorders/record_separable.py``), the loops of ``tests/naive_separable.py``, the seed
documents' counts (/work/shared/seeds/001_*.txt: 108 vs 27 + 12 = 39 parameters) and closed-form
facts (Sobel = [1,2,1]^T [-1,0,1]; Eckart–Young's residual norm).
"""

import json
import pathlib

import numpy as np
import pytest
import tolerances
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_separable import depthwise_separable, filter_channels, gaussian_kernel

import convlab

DATA = pathlib.Path(__file__).parent / "data"
ALGORITHMS = ("auto", "fused", "two_pass")


def tol(dtype):
    # two passes (depthwise, then pointwise) round twice in float32
    return tolerances.tol(dtype, float32=3e-5)


@pytest.fixture(scope="module")
def torch_ref():
    with np.load(DATA / "separable.npz") as f:
        return {k: f[k] for k in f.files}


def _names(ref, key):
    return sorted({k.split("/")[0] for k in ref if k.endswith(f"/{key}")})


def _args(ref, name):
    args = json.loads(str(ref[f"{name}/args"]))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}


# ------------------------------------------------------------------------------------------------
# depthwise_separable_conv2d

# (name, x shape, C_out, kernel, multiplier, kwargs, dtype)
DS_CASES = [
    # the seed's layer (001: 3 -> 4 channels, 3x3)
    ("seed_3to4", (1, 3, 5, 5), 4, (3, 3), 1, {}, np.float64),
    # stride / padding / dilation, one at a time and mixed
    ("stride2", (2, 2, 7, 8), 3, (3, 3), 1, dict(stride=2), np.float32),
    ("pad_rect", (1, 3, 6, 5), 2, (3, 2), 1, dict(padding=(1, 2)), np.float64),
    ("dilation", (1, 2, 9, 9), 2, (3, 3), 1, dict(dilation=2, padding=1), np.float32),
    (
        "mixed",
        (2, 2, 11, 10),
        3,
        (3, 3),
        1,
        dict(stride=(2, 1), padding=(0, 2), dilation=(1, 3)),
        np.float64,
    ),
    ("same_even", (1, 2, 6, 6), 3, (4, 4), 1, dict(padding="same"), np.float64),
    # depth multiplier 2 and 3
    ("mult2", (1, 3, 6, 6), 4, (3, 3), 2, dict(padding=1), np.float32),
    ("mult3_stride", (2, 2, 8, 7), 5, (3, 3), 3, dict(stride=2, padding=1), np.float64),
    # a 1x1 depthwise kernel (a per-channel scale) and a single output channel
    ("k1", (1, 4, 3, 3), 1, (1, 1), 1, {}, np.float32),
    # wide enough for several row blocks of the fused kernel
    ("wide", (1, 8, 40, 17), 16, (3, 3), 1, dict(padding=1), np.float32),
]


def _ds_inputs(case, seed=0, bias=True):
    _, xshape, c_out, kernel, mult, kwargs, dtype = case
    rng = np.random.default_rng(seed)
    c_in = xshape[1]
    x = rng.standard_normal(xshape).astype(dtype)
    wd = rng.standard_normal((c_in * mult, 1) + kernel).astype(dtype)
    wp = rng.standard_normal((c_out, c_in * mult, 1, 1)).astype(dtype)
    bd = rng.standard_normal(c_in * mult).astype(dtype) if bias else None
    bp = rng.standard_normal(c_out).astype(dtype) if bias else None
    return x, wd, wp, bd, bp, kwargs


@pytest.mark.kernels
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", DS_CASES, ids=[c[0] for c in DS_CASES])
def test_depthwise_separable_matches_two_convs(case, algorithm):
    """The definition: a depthwise conv2d (groups=C_in) then a 1x1 conv2d."""
    x, wd, wp, bd, bp, kwargs = _ds_inputs(case)
    mid = convlab.conv2d(x, wd, bd, groups=x.shape[1], **kwargs)
    expected = convlab.conv2d(mid, wp, bp)
    out = convlab.depthwise_separable_conv2d(x, wd, wp, bd, bp, algorithm=algorithm, **kwargs)
    assert out.dtype == x.dtype
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, **tol(x.dtype))


@pytest.mark.parametrize("case", DS_CASES[:8], ids=[c[0] for c in DS_CASES[:8]])
def test_depthwise_separable_matches_naive(case):
    x, wd, wp, bd, bp, kwargs = _ds_inputs(case, seed=1)
    expected = depthwise_separable(x, wd, wp, bd, bp, **kwargs)
    for algorithm in ("fused", "two_pass"):
        out = convlab.depthwise_separable_conv2d(x, wd, wp, bd, bp, algorithm=algorithm, **kwargs)
        np.testing.assert_allclose(out, expected, **tol(x.dtype), err_msg=algorithm)


@pytest.mark.kernels
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_depthwise_separable_matches_torch(torch_ref, algorithm):
    names = _names(torch_ref, "wd")
    assert len(names) >= 5
    for name in names:
        x, wd, wp = (torch_ref[f"{name}/{k}"] for k in ("x", "wd", "wp"))
        bd, bp = torch_ref.get(f"{name}/bd"), torch_ref.get(f"{name}/bp")
        out = convlab.depthwise_separable_conv2d(
            x, wd, wp, bd, bp, algorithm=algorithm, **_args(torch_ref, name)
        )
        expected = torch_ref[f"{name}/out"]
        assert out.shape == expected.shape, name
        np.testing.assert_allclose(out, expected, **tol(x.dtype), err_msg=name)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unbatched_and_2d_pointwise(algorithm):
    x, wd, wp, bd, bp, kwargs = _ds_inputs(DS_CASES[6])
    batched = convlab.depthwise_separable_conv2d(x, wd, wp, bd, bp, algorithm=algorithm, **kwargs)
    unbatched = convlab.depthwise_separable_conv2d(
        x[0], wd, wp[:, :, 0, 0], bd, bp, algorithm=algorithm, **kwargs
    )
    assert unbatched.shape == batched.shape[1:]
    np.testing.assert_allclose(unbatched, batched[0], **tol(x.dtype))


def test_without_bias_equals_zero_bias():
    x, wd, wp, bd, bp, kwargs = _ds_inputs(DS_CASES[1], bias=False)
    zeros = convlab.depthwise_separable_conv2d(
        x, wd, wp, np.zeros(wd.shape[0]), np.zeros(wp.shape[0])
    )
    np.testing.assert_array_equal(convlab.depthwise_separable_conv2d(x, wd, wp), zeros)


def test_depthwise_bias_is_applied_before_mixing():
    """With all-zero input the output is pointwise_weight @ depthwise_bias + pointwise_bias."""
    wd = np.ones((2, 1, 3, 3))
    wp = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
    out = convlab.depthwise_separable_conv2d(
        np.zeros((1, 2, 4, 4)), wd, wp, [1.0, 10.0], [0.0, 0.0, 1.0]
    )
    np.testing.assert_array_equal(out[0, :, 0, 0], [21.0, -7.0, 6.5])
    assert out.shape == (1, 3, 2, 2)


def test_dtype_follows_input_and_integers_become_float64():
    x = np.arange(32).reshape(1, 2, 4, 4)
    out = convlab.depthwise_separable_conv2d(x, np.ones((2, 1, 3, 3)), np.ones((1, 2)))
    assert out.dtype == np.float64
    # the sums of two 3x3 windows: 45 + (45 + 9*16) at the top-left
    assert out[0, 0, 0, 0] == 234.0
    out32 = convlab.depthwise_separable_conv2d(
        x.astype(np.float32), np.ones((2, 1, 3, 3)), np.ones((1, 2))
    )
    assert out32.dtype == np.float32


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_batch(algorithm):
    out = convlab.depthwise_separable_conv2d(
        np.ones((0, 2, 5, 5)), np.ones((2, 1, 3, 3)), np.ones((3, 2)), algorithm=algorithm
    )
    assert out.shape == (0, 3, 3, 3)
    assert convlab.spatially_separable_conv2d(
        np.ones((0, 2, 5, 5)), np.ones(3), np.ones(3)
    ).shape == (0, 2, 3, 3)


def test_fused_block_sizes():
    """Blocks of rows: tall images are split, a short wide one is one block, never zero rows."""
    from convlab.separable import FUSED_BLOCK_PIXELS, _fused_rows

    assert _fused_rows((1, 1, 56, 56)) == -(-FUSED_BLOCK_PIXELS // 56)
    assert _fused_rows((1, 1, 3, 7)) == 3
    assert _fused_rows((1, 1, 9, 10 * FUSED_BLOCK_PIXELS)) == 1


# ------------------------------------------------------------------------------------------------
# separate_kernel

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)
RANK1_KERNELS = {
    "sobel_x": SOBEL_X,
    "sobel_y": SOBEL_X.T,
    "gaussian5": gaussian_kernel(5, 1.0),
    "gaussian7_wide": gaussian_kernel(7, 2.5),
    "box3": np.full((3, 3), 1 / 9),
    "box_rect": np.ones((2, 5)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", RANK1_KERNELS)
def test_rank1_kernels_are_separated_exactly(name, dtype):
    kernel = RANK1_KERNELS[name].astype(dtype)
    result = convlab.separate_kernel(kernel)
    col, row = result
    assert result.rank == 1
    assert col.shape == (kernel.shape[0], 1) and row.shape == (1, kernel.shape[1])
    assert col.dtype == dtype and row.dtype == dtype
    np.testing.assert_allclose(col @ row, kernel, **tol(dtype))
    assert result.error < 10 * np.finfo(dtype).eps * np.linalg.norm(kernel)


def test_sobel_factors():
    """Sobel = [1, 2, 1]^T [-1, 0, 1]: the factors are those vectors up to one scale."""
    col, row = convlab.separate_kernel(SOBEL_X)
    scale = col[0, 0]
    np.testing.assert_allclose(col[:, 0] / scale, [1, 2, 1], atol=1e-12)
    np.testing.assert_allclose(row[0] * scale, [-1, 0, 1], atol=1e-12)
    # the scale is shared equally: both factors have norm sqrt(s) = sqrt(||K||_F) = 12 ** 0.25
    np.testing.assert_allclose([np.linalg.norm(col), np.linalg.norm(row)], [12**0.25] * 2)


def test_gaussian_factors_are_1d_gaussians():
    g = np.exp(-0.5 * (np.arange(5) - 2.0) ** 2)
    col, row = convlab.separate_kernel(np.outer(g, g))
    np.testing.assert_allclose(col[:, 0], g, rtol=1e-12)
    np.testing.assert_allclose(row[0], g, rtol=1e-12)


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (6, 4)])
def test_best_rank_r_error_is_eckart_young(shape):
    kernel = np.random.default_rng(3).standard_normal(shape)
    s = np.linalg.svd(kernel, compute_uv=False)
    for rank in range(1, min(shape) + 1):
        result = convlab.separate_kernel(kernel, rank=rank)
        assert result.rank == rank
        expected = np.sqrt(np.sum(s[rank:] ** 2))
        assert result.error == pytest.approx(expected, abs=1e-12)
        assert np.linalg.norm(kernel - result.kernel) == pytest.approx(expected, abs=1e-12)
        np.testing.assert_allclose(result.singular_values, s)
    # full rank is exact
    assert convlab.separate_kernel(kernel, rank=min(shape)).error < 1e-12


def test_default_rank_is_numerical_rank():
    rng = np.random.default_rng(4)
    rank2 = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 5))
    assert convlab.separate_kernel(rank2).rank == 2
    assert convlab.separate_kernel(rank2).error < 1e-12
    assert convlab.separate_kernel(rng.standard_normal((4, 4))).rank == 4
    # a tolerance above the second singular value keeps one term
    s = np.linalg.svd(rank2, compute_uv=False)
    assert convlab.separate_kernel(rank2, tol=(s[0] + s[1]) / 2).rank == 1
    assert convlab.separate_kernel(rank2, tol=0).rank >= 2


def test_zero_kernel_gives_zero_rank1_factors():
    result = convlab.separate_kernel(np.zeros((3, 3)))
    assert result.rank == 1 and result.error == 0.0
    np.testing.assert_array_equal(result.kernel, np.zeros((3, 3)))


def test_sign_convention():
    """The largest-magnitude entry of each column factor is positive, whatever the kernel's sign."""
    rng = np.random.default_rng(5)
    kernel = rng.standard_normal((5, 5))
    for k in (kernel, -kernel):
        col, row = convlab.separate_kernel(k, rank=3)
        peaks = col[np.argmax(np.abs(col), axis=0), np.arange(3)]
        assert np.all(peaks > 0)
    col_pos, row_pos = convlab.separate_kernel(kernel, rank=3)
    col_neg, row_neg = convlab.separate_kernel(-kernel, rank=3)
    np.testing.assert_allclose(col_pos, col_neg)
    np.testing.assert_allclose(row_pos, -row_neg)


def test_result_unpacks_and_indexes():
    result = convlab.separate_kernel(SOBEL_X)
    assert len(result) == 2
    assert result[0] is result.col and result[1] is result.row
    assert "rank=1" in repr(result)
    assert isinstance(result, convlab.SeparatedKernel)


@settings(max_examples=15, deadline=None)
@given(kh=st.integers(1, 6), kw=st.integers(1, 6), seed=st.integers(0, 2**16), data=st.data())
def test_property_no_rank_r_product_beats_svd(kh, kw, seed, data):
    """Eckart–Young: a random rank-r product is never closer to the kernel than the SVD's."""
    rank = data.draw(st.integers(1, min(kh, kw)))
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((kh, kw))
    result = convlab.separate_kernel(kernel, rank=rank)
    assert result.col.shape == (kh, rank) and result.row.shape == (rank, kw)
    other = rng.standard_normal((kh, rank)) @ rng.standard_normal((rank, kw))
    # the best multiple of a random product, to make the competitor as good as it can be
    scale = np.sum(other * kernel) / max(np.sum(other * other), 1e-300)
    assert np.linalg.norm(kernel - scale * other) >= result.error - 1e-12


@settings(max_examples=15, deadline=None)
@given(kh=st.integers(1, 7), kw=st.integers(1, 7), seed=st.integers(0, 2**16))
def test_property_outer_products_are_rank_one(kh, kw, seed):
    rng = np.random.default_rng(seed)
    u, v = rng.uniform(0.5, 2, kh), rng.uniform(-2, 2, kw)
    result = convlab.separate_kernel(np.outer(u, v))
    assert result.rank == 1
    np.testing.assert_allclose(result.kernel, np.outer(u, v), atol=1e-12)


# ------------------------------------------------------------------------------------------------
# spatially_separable_conv2d

# (name, x shape, kernel shape, rank, kwargs, dtype)
SPATIAL_CASES = [
    ("rank1_3x3", (1, 2, 6, 7), (3, 3), 1, {}, np.float64),
    ("rank1_pad", (2, 3, 8, 8), (5, 5), 1, dict(padding=2), np.float32),
    ("rank2_rect", (1, 1, 9, 10), (3, 5), 2, dict(padding=(1, 0)), np.float64),
    ("rank3_stride", (1, 2, 11, 9), (4, 3), 3, dict(stride=(2, 3), padding=1), np.float64),
    ("same_even", (1, 2, 7, 6), (4, 2), 1, dict(padding="same"), np.float32),
    ("valid_1xk", (2, 1, 5, 9), (1, 4), 1, dict(padding="valid", stride=2), np.float64),
]


def _spatial_inputs(case, seed=0):
    _, xshape, (kh, kw), rank, kwargs, dtype = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xshape).astype(dtype)
    col = rng.standard_normal((kh, rank)).astype(dtype)
    row = rng.standard_normal((rank, kw)).astype(dtype)
    return x, col, row, kwargs


@pytest.mark.kernels
@pytest.mark.parametrize("case", SPATIAL_CASES, ids=[c[0] for c in SPATIAL_CASES])
def test_spatially_separable_equals_depthwise_conv2d(case):
    x, col, row, kwargs = _spatial_inputs(case)
    kernel = col @ row
    channels = x.shape[1]
    weight = np.broadcast_to(kernel, (channels, 1) + kernel.shape)
    expected = convlab.conv2d(x, weight, groups=channels, **kwargs)
    out = convlab.spatially_separable_conv2d(x, col, row, **kwargs)
    assert out.dtype == x.dtype and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, **tol(x.dtype))
    np.testing.assert_allclose(out, filter_channels(x, kernel, **kwargs), **tol(x.dtype))


# rows longer than one run of the kernel's vectors (16 values) and not a multiple of it, with
# padding columns to the right (the rounded runs write past them and must zero them again),
# an input wider than the columns read, runs that end at the input's last value, few planes
# (each cut into blocks of rows) and column strides (the row pass reads by phase)
EDGE_CASES = [
    ((1, 1, 6, 37), (3, 5), 1, dict(padding=(1, 3)), np.float64),
    ((1, 2, 9, 33), (4, 7), 2, dict(stride=(2, 3), padding=(2, 4)), np.float64),
    ((2, 1, 7, 40), (3, 3), 1, dict(stride=(1, 4)), np.float32),
    ((1, 1, 5, 17), (5, 1), 1, dict(padding=(2, 0)), np.float32),
    ((1, 3, 4, 16), (2, 9), 2, dict(padding="same"), np.float64),
    # rows narrower than a run, in blocks of two (24 tasks over 40 rows): a row's extra values
    # must not reach the next block, which another thread writes
    ((1, 1, 40, 5), (3, 3), 1, dict(padding=1), np.float64),
    ((2, 3, 30, 3), (3, 2), 2, dict(padding=(1, 0), stride=(1, 1)), np.float32),
    # a column stride above 2: the row pass's runs are not rounded up (no reads 15 strides on)
    ((1, 2, 6, 90), (3, 4), 1, dict(padding=(1, 2), stride=(1, 5)), np.float64),
]


@pytest.mark.kernels
@pytest.mark.parametrize("case", EDGE_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[3]}")
def test_spatially_separable_run_edges(case):
    xshape, (kh, kw), rank, kwargs, dtype = case
    rng = np.random.default_rng(11)
    x = rng.standard_normal(xshape).astype(dtype)
    col = rng.standard_normal((kh, rank)).astype(dtype)
    row = rng.standard_normal((rank, kw)).astype(dtype)
    out = convlab.spatially_separable_conv2d(x, col, row, **kwargs)
    expected = filter_channels(x, col.astype(np.float64) @ row, **kwargs)
    assert out.shape == expected.shape and out.dtype == x.dtype
    np.testing.assert_allclose(out, expected, **tol(x.dtype))


@pytest.mark.kernels
def test_spatially_separable_matches_torch(torch_ref):
    names = _names(torch_ref, "kernel")
    assert len(names) >= 3
    for name in names:
        x, kernel = torch_ref[f"{name}/x"], torch_ref[f"{name}/kernel"]
        result = convlab.separate_kernel(kernel.astype(np.float64))  # full rank: exact
        out = convlab.spatially_separable_conv2d(
            x, result.col, result.row, **_args(torch_ref, name)
        )
        expected = torch_ref[f"{name}/out"]
        assert out.shape == expected.shape and out.dtype == x.dtype, name
        np.testing.assert_allclose(out, expected, **tol(x.dtype), err_msg=name)


@pytest.mark.parametrize("name", ["sobel_x", "gaussian5", "box3"])
def test_rank1_filter_two_ways(name):
    """A separable kernel filters the same by its factors and by itself."""
    kernel = RANK1_KERNELS[name]
    x = np.random.default_rng(6).standard_normal((1, 3, 12, 12))
    out = convlab.spatially_separable_conv2d(x, *convlab.separate_kernel(kernel), padding="same")
    expected = convlab.conv2d(
        x, np.broadcast_to(kernel, (3, 1) + kernel.shape), groups=3, padding="same"
    )
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_one_dimensional_factors_and_unbatched():
    x = np.random.default_rng(7).standard_normal((2, 6, 6))
    col, row = np.array([1.0, 2.0, 1.0]), np.array([-1.0, 0.0, 1.0])
    out = convlab.spatially_separable_conv2d(x, col, row, padding=1)
    assert out.shape == (2, 6, 6)
    np.testing.assert_allclose(out, filter_channels(x[None], SOBEL_X, padding=1)[0], atol=1e-12)


def test_box_blur_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out = convlab.spatially_separable_conv2d(x, np.ones(3), np.ones(3))
    np.testing.assert_array_equal(out, [[[[45.0, 54.0], [81.0, 90.0]]]])


@settings(max_examples=12, deadline=None)
@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    rank=st.integers(1, 3),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    p=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_property_spatially_separable_equals_conv2d(h, w, kh, kw, rank, sh, sw, p, seed):
    if kh > h + 2 * p or kw > w + 2 * p:
        with pytest.raises(ValueError, match="larger than the padded input"):
            convlab.spatially_separable_conv2d(
                np.ones((1, 1, h, w)), np.ones((kh, rank)), np.ones((rank, kw)), (sh, sw), p
            )
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 2, h, w))
    col, row = rng.standard_normal((kh, rank)), rng.standard_normal((rank, kw))
    out = convlab.spatially_separable_conv2d(x, col, row, stride=(sh, sw), padding=p)
    expected = convlab.conv2d(
        x, np.broadcast_to(col @ row, (2, 1, kh, kw)), stride=(sh, sw), padding=p, groups=2
    )
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


@settings(max_examples=12, deadline=None)
@given(
    c_in=st.integers(1, 3),
    mult=st.integers(1, 2),
    c_out=st.integers(1, 3),
    h=st.integers(3, 8),
    k=st.integers(1, 3),
    s=st.integers(1, 2),
    p=st.integers(0, 1),
    d=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_property_fused_equals_two_pass(c_in, mult, c_out, h, k, s, p, d, seed):
    if d * (k - 1) + 1 > h + 2 * p:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, c_in, h, h + 1))
    wd = rng.standard_normal((c_in * mult, 1, k, k))
    wp = rng.standard_normal((c_out, c_in * mult))
    kwargs = dict(stride=s, padding=p, dilation=d)
    fused = convlab.depthwise_separable_conv2d(x, wd, wp, algorithm="fused", **kwargs)
    two = convlab.depthwise_separable_conv2d(x, wd, wp, algorithm="two_pass", **kwargs)
    np.testing.assert_allclose(fused, two, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# parameter and MAC counts


def test_seed_parameter_counts():
    """Seed 001: 3x3 kernel, 3 -> 4 channels: 108 standard vs 27 + 12 = 39 separable."""
    assert convlab.count_params(3, 4, (3, 3), bias=False) == 108
    assert convlab.count_params_depthwise_separable(3, 4, 3, bias=False) == 39
    # built layers: the weight arrays have those sizes
    wd, wp = np.ones((3, 1, 3, 3)), np.ones((4, 3, 1, 1))
    assert wd.size + wp.size == 39
    assert convlab.count_params_depthwise_separable(3, 4, 3) == 39 + 3 + 4


@pytest.mark.parametrize(
    "c_in,c_out,k,mult", [(3, 4, 3, 1), (32, 64, 3, 1), (16, 8, 5, 2), (4, 4, (3, 1), 3)]
)
def test_separable_counts_add_the_two_convs(c_in, c_out, k, mult):
    ks = (k, k) if isinstance(k, int) else k
    params = (c_in * mult * ks[0] * ks[1] + c_in * mult) + (c_out * c_in * mult + c_out)
    assert convlab.count_params_depthwise_separable(c_in, c_out, k, depth_multiplier=mult) == params
    h, w = 20, 17
    oh = (h + 2 - ks[0]) // 2 + 1
    ow = (w + 2 - ks[1]) // 2 + 1
    macs = oh * ow * (c_in * mult * ks[0] * ks[1] + c_out * c_in * mult)
    assert (
        convlab.count_macs_depthwise_separable(
            c_in, c_out, k, (h, w), stride=2, padding=1, depth_multiplier=mult
        )
        == 3 * macs / 3
    )
    assert (
        convlab.count_macs_depthwise_separable(
            c_in, c_out, k, (h, w), stride=2, padding=1, depth_multiplier=mult, batch=3
        )
        == 3 * macs
    )


@pytest.mark.parametrize("n,dk", [(4, 3), (64, 3), (128, 5), (1000, 7)])
def test_cost_ratio_formula(n, dk):
    """Howard et al. eq. 5: separable / standard = 1/N + 1/D_K^2 (MACs, no bias, 'same' size)."""
    m, size = 16, (14, 14)
    ratio = convlab.count_macs_depthwise_separable(
        m, n, dk, size, padding=dk // 2
    ) / convlab.count_macs(m, n, dk, size, padding=dk // 2)
    assert ratio == pytest.approx(1 / n + 1 / dk**2, rel=1e-12)
    ratio_p = convlab.count_params_depthwise_separable(m, n, dk, bias=False) / convlab.count_params(
        m, n, (dk, dk), bias=False
    )
    assert ratio_p == pytest.approx(1 / n + 1 / dk**2, rel=1e-12)


def test_spatially_separable_counts():
    assert convlab.count_params_spatially_separable(3) == 6
    assert convlab.count_params_spatially_separable((5, 7), rank=2) == 24
    # the exact cost of the two passes: 8 rows * (10 columns * 3 + 8 columns * 3)
    assert convlab.count_macs_spatially_separable(1, 3, (10, 10)) == 8 * (10 * 3 + 8 * 3)
    # stride 2 in W: the column pass covers (W_out - 1) * 2 + kW columns
    oh, ow = 4, 4
    assert convlab.count_macs_spatially_separable(
        2, (3, 3), (6, 9), rank=2, stride=(1, 2)
    ) == 2 * 2 * oh * (((ow - 1) * 2 + 3) * 3 + ow * 3)
    # ~2k per pixel against k^2 for a large image
    k, size = 9, 512
    ratio = convlab.count_macs_spatially_separable(1, k, size) / convlab.count_macs(
        1, 1, k, (size, size)
    )
    assert ratio == pytest.approx(2 / k, rel=0.02)


# ------------------------------------------------------------------------------------------------
# bad inputs: one row per rule (function, args, kwargs, exception, regex)

X = np.ones((1, 3, 6, 6))
WD = np.ones((3, 1, 3, 3))
WP = np.ones((4, 3, 1, 1))
ds, sk, ss = (
    convlab.depthwise_separable_conv2d,
    convlab.separate_kernel,
    convlab.spatially_separable_conv2d,
)

BAD = [
    ("ds_input_rank", ds, (np.ones((6, 6)), WD, WP), {}, ValueError, r"input must be 3-D or 4-D"),
    (
        "ds_input_no_channels",
        ds,
        (np.ones((1, 0, 6, 6)), WD, WP),
        {},
        ValueError,
        r"at least one channel",
    ),
    (
        "ds_depthwise_rank",
        ds,
        (X, np.ones((3, 3, 3)), WP),
        {},
        ValueError,
        r"depthwise_weight must be 4-D",
    ),
    (
        "ds_depthwise_empty",
        ds,
        (X, np.ones((3, 1, 0, 3)), WP),
        {},
        ValueError,
        r"depthwise_weight must not have a zero-size dimension",
    ),
    (
        "ds_depthwise_not_depthwise",
        ds,
        (X, np.ones((3, 3, 3, 3)), WP),
        {},
        ValueError,
        r"depthwise_weight.shape\[1\] must be 1 .*got shape \(3, 3, 3, 3\)",
    ),
    (
        "ds_depthwise_channels",
        ds,
        (X, np.ones((4, 1, 3, 3)), WP),
        {},
        ValueError,
        r"depthwise_weight.shape\[0\] \(4\) must be a multiple of the input's channels \(3\)",
    ),
    (
        "ds_pointwise_rank",
        ds,
        (X, WD, np.ones((4, 3, 1))),
        {},
        ValueError,
        r"pointwise_weight must be 2-D or 4-D",
    ),
    (
        "ds_pointwise_not_1x1",
        ds,
        (X, WD, np.ones((4, 3, 3, 3))),
        {},
        ValueError,
        r"pointwise_weight must be a 1x1 kernel .*got shape \(4, 3, 3, 3\)",
    ),
    (
        "ds_pointwise_channels",
        ds,
        (X, WD, np.ones((4, 6))),
        {},
        ValueError,
        r"pointwise_weight.shape\[1\] \(6\) must equal the depthwise output channels C_in\*K = 3\*1 = 3",
    ),
    (
        "ds_pointwise_channels_mult",
        ds,
        (X, np.ones((6, 1, 3, 3)), WP),
        {},
        ValueError,
        r"pointwise_weight.shape\[1\] \(3\) must equal .* = 3\*2 = 6",
    ),
    (
        "ds_pointwise_empty",
        ds,
        (X, WD, np.ones((0, 3))),
        {},
        ValueError,
        r"pointwise_weight must not have a zero-size dimension",
    ),
    (
        "ds_depthwise_bias",
        ds,
        (X, WD, WP, np.ones(4)),
        {},
        ValueError,
        r"depthwise_bias must have shape \(C_in\*K,\) = \(3,\), got \(4,\)",
    ),
    (
        "ds_pointwise_bias",
        ds,
        (X, WD, WP, None, np.ones((4, 1))),
        {},
        ValueError,
        r"pointwise_bias must have shape \(C_out,\) = \(4,\), got \(4, 1\)",
    ),
    ("ds_stride", ds, (X, WD, WP), dict(stride=0), ValueError, r"stride must be positive, got 0"),
    (
        "ds_dilation",
        ds,
        (X, WD, WP),
        dict(dilation=(1, -1)),
        ValueError,
        r"dilation must be positive",
    ),
    (
        "ds_padding",
        ds,
        (X, WD, WP),
        dict(padding=-1),
        ValueError,
        r"padding must be non-negative, got -1",
    ),
    (
        "ds_padding_str",
        ds,
        (X, WD, WP),
        dict(padding="full"),
        ValueError,
        r"padding must be .*'same' or 'valid'",
    ),
    (
        "ds_same_stride",
        ds,
        (X, WD, WP),
        dict(padding="same", stride=2),
        ValueError,
        r"padding='same' is only supported with stride 1",
    ),
    (
        "ds_kernel_too_big",
        ds,
        (X, np.ones((3, 1, 7, 7)), WP),
        {},
        ValueError,
        r"kernel extent .* = 7 is larger than the padded input size 6",
    ),
    (
        "ds_algorithm",
        ds,
        (X, WD, WP),
        dict(algorithm="winograd"),
        ValueError,
        r"algorithm must be one of 'auto', 'fused', 'two_pass', got 'winograd'",
    ),
    ("ds_complex", ds, (X + 0j, WD, WP), {}, TypeError, r"input must be a real numeric array"),
    (
        "sk_not_2d",
        sk,
        (np.ones(3),),
        {},
        ValueError,
        r"kernel must be 2-D \(kH, kW\), got shape \(3,\)",
    ),
    (
        "sk_3d",
        sk,
        (np.ones((3, 3, 3)),),
        {},
        ValueError,
        r"kernel must be 2-D \(kH, kW\), got shape \(3, 3, 3\)",
    ),
    (
        "sk_empty",
        sk,
        (np.ones((0, 3)),),
        {},
        ValueError,
        r"kernel must not have a zero-size dimension",
    ),
    (
        "sk_rank_zero",
        sk,
        (np.ones((3, 4)),),
        dict(rank=0),
        ValueError,
        r"rank must be between 1 and min\(kH, kW\) = min\(3, 4\) = 3, got 0",
    ),
    (
        "sk_rank_too_big",
        sk,
        (np.ones((3, 4)),),
        dict(rank=4),
        ValueError,
        r"rank must be between 1 and .* = 3, got 4",
    ),
    (
        "sk_rank_float",
        sk,
        (np.ones((3, 3)),),
        dict(rank=1.0),
        TypeError,
        r"rank must be an int, got 1.0",
    ),
    (
        "sk_tol_negative",
        sk,
        (np.ones((3, 3)),),
        dict(tol=-1e-9),
        ValueError,
        r"tol must be non-negative, got -1e-09",
    ),
    (
        "sk_tol_nan",
        sk,
        (np.ones((3, 3)),),
        dict(tol=float("nan")),
        ValueError,
        r"tol must be non-negative, got nan",
    ),
    (
        "sk_tol_str",
        sk,
        (np.ones((3, 3)),),
        dict(tol="1e-3"),
        TypeError,
        r"tol must be a real number",
    ),
    ("sk_nonfinite", sk, (np.array([[1.0, np.nan], [0.0, 1.0]]),), {}, ValueError, r"finite"),
    (
        "ss_input_rank",
        ss,
        (np.ones((6, 6)), np.ones(3), np.ones(3)),
        {},
        ValueError,
        r"input must be 3-D or 4-D",
    ),
    (
        "ss_col_rank",
        ss,
        (X, np.ones((3, 1, 1)), np.ones(3)),
        {},
        ValueError,
        r"col must be 1-D or 2-D \(kH, r\) or \(kH,\), got shape \(3, 1, 1\)",
    ),
    (
        "ss_row_rank",
        ss,
        (X, np.ones(3), np.ones((1, 3, 1))),
        {},
        ValueError,
        r"row must be 1-D or 2-D",
    ),
    (
        "ss_empty",
        ss,
        (X, np.ones(0), np.ones(3)),
        {},
        ValueError,
        r"col must not have a zero-size dimension",
    ),
    (
        "ss_rank_mismatch",
        ss,
        (X, np.ones((3, 2)), np.ones((1, 3))),
        {},
        ValueError,
        r"col has 2 terms .* but row has 1 .*the rank r must match",
    ),
    (
        "ss_stride",
        ss,
        (X, np.ones(3), np.ones(3)),
        dict(stride=(1, 0)),
        ValueError,
        r"stride must be positive",
    ),
    (
        "ss_padding",
        ss,
        (X, np.ones(3), np.ones(3)),
        dict(padding=(-1, 0)),
        ValueError,
        r"padding must be non-negative",
    ),
    (
        "ss_too_big",
        ss,
        (X, np.ones(7), np.ones(3)),
        {},
        ValueError,
        r"kernel extent .* = 7 is larger than the padded input size 6",
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_invalid_params(case):
    _, func, args, kwargs, exc, match = case
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)


@pytest.mark.parametrize(
    "func,args,match",
    [
        (convlab.count_params_depthwise_separable, (3, 4, 3), None),
        (convlab.count_macs_depthwise_separable, (3, 4, 3, (8, 8)), None),
    ],
)
def test_count_depth_multiplier_rejected(func, args, match):
    with pytest.raises(ValueError, match=r"depth_multiplier must be a positive int, got 0"):
        func(*args, depth_multiplier=0)


def test_count_rank_rejected():
    with pytest.raises(ValueError, match=r"rank must be a positive int, got 0"):
        convlab.count_params_spatially_separable(3, rank=0)
    with pytest.raises(ValueError, match=r"rank must be a positive int, got -2"):
        convlab.count_macs_spatially_separable(1, 3, 8, rank=-2)

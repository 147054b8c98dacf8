"""im2col/col2im against recorded torch unfold/fold, the naive reference, and each other."""

import pathlib

import numpy as np
import pytest
from conv_cases import UNFOLD_CASES
from naive import fold, unfold

import convlab

DATA = pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def ref():
    with np.load(DATA / "unfold.npz") as f:
        return {k: f[k] for k in f.files}


def _kw(case):
    return {k: case[k] for k in ("kernel_size", "dilation", "padding", "stride")}


@pytest.mark.kernels
@pytest.mark.parametrize("case", UNFOLD_CASES, ids=lambda c: c["name"])
def test_im2col_matches_torch_unfold(case, ref):
    x = ref[f"{case['name']}/x"]
    cols = convlab.im2col(x, **_kw(case))
    assert cols.dtype == np.float32
    np.testing.assert_array_equal(cols, ref[f"{case['name']}/cols"])  # a copy: bit-exact


@pytest.mark.kernels
@pytest.mark.parametrize("case", UNFOLD_CASES, ids=lambda c: c["name"])
def test_col2im_matches_torch_fold(case, ref):
    x = ref[f"{case['name']}/x"]
    back = convlab.col2im(ref[f"{case['name']}/cols"], x.shape[-2:], **_kw(case))
    np.testing.assert_allclose(back, ref[f"{case['name']}/fold"], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", UNFOLD_CASES[:3], ids=lambda c: c["name"])
def test_against_naive(case, ref):
    x = ref[f"{case['name']}/x"].astype(np.float64)
    cols = convlab.im2col(x, **_kw(case))
    np.testing.assert_array_equal(cols, unfold(x, **_kw(case)))
    np.testing.assert_allclose(
        convlab.col2im(cols, x.shape[-2:], **_kw(case)),
        fold(cols, x.shape[-2:], **_kw(case)),
        rtol=1e-13,
        atol=1e-13,
    )


def test_im2col_times_weight_is_conv2d():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8))
    w = rng.standard_normal((5, 3, 3, 2))
    kw = dict(dilation=(1, 2), padding=(1, 2), stride=(2, 1))
    cols = convlab.im2col(x, (3, 2), **kw)
    out = convlab.conv2d(x, w, **kw, algorithm="direct")
    np.testing.assert_allclose(
        (w.reshape(5, -1) @ cols).reshape(out.shape), out, rtol=1e-12, atol=1e-12
    )


def test_col2im_of_ones_counts_coverage():
    cols = np.ones((1, 4, 4))
    np.testing.assert_array_equal(
        convlab.col2im(cols, 3, 2)[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    )


def test_unbatched_and_dtypes():
    x = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4)
    cols = convlab.im2col(x, 2, stride=2)
    assert cols.shape == (8, 4) and cols.dtype == np.float32
    np.testing.assert_array_equal(
        convlab.col2im(cols, 4, 2, stride=2), x
    )  # non-overlapping: exact inverse

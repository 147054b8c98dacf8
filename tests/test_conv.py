"""conv1d/conv2d/conv3d against recorded PyTorch outputs, the naive reference and the seeds."""

import pathlib

import numpy as np
import pytest
from conv_cases import CASES
from naive import convnd
from tolerances import tol

import convlab

DATA = pathlib.Path(__file__).parent / "data"
CONV = {1: convlab.conv1d, 2: convlab.conv2d, 3: convlab.conv3d}


@pytest.fixture(scope="module")
def torch_ref():
    with np.load(DATA / "conv.npz") as f:
        return {k: f[k] for k in f.files}


def _args(case):
    return {k: case[k] for k in ("stride", "padding", "dilation", "groups", "padding_mode")}


def _algorithms(case):
    return ("auto", "direct", "im2col") if case["nd"] in (1, 2) else (None,)


@pytest.mark.kernels
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_torch(case, torch_ref):
    name = case["name"]
    x, w, expected = torch_ref[f"{name}/x"], torch_ref[f"{name}/w"], torch_ref[f"{name}/out"]
    b = torch_ref.get(f"{name}/b")
    for algorithm in _algorithms(case):
        extra = {} if algorithm is None else {"algorithm": algorithm}
        out = CONV[case["nd"]](x, w, b, **_args(case), **extra)
        assert out.dtype == x.dtype
        assert out.shape == expected.shape
        np.testing.assert_allclose(out, expected, **tol(x.dtype), err_msg=f"algorithm={algorithm}")


@pytest.mark.parametrize(
    "case", [c for c in CASES if np.prod(c["x"]) <= 400], ids=lambda c: c["name"]
)
def test_matches_naive(case, torch_ref):
    """The recorded tensors and the naive reference agree with convlab (and so with each other)."""
    name = case["name"]
    x, w = torch_ref[f"{name}/x"], torch_ref[f"{name}/w"]
    b = torch_ref.get(f"{name}/b")
    batched = x if x.ndim == case["nd"] + 2 else x[None]
    expected = convnd(batched, w, b, **_args(case))
    if x.ndim != case["nd"] + 2:
        expected = expected[0]
    out = CONV[case["nd"]](x, w, b, **_args(case))
    np.testing.assert_allclose(out, expected, **tol(x.dtype))


@pytest.mark.kernels
def test_nonfinite_propagate_like_torch(torch_ref):
    x, w, expected = (torch_ref[f"nonfinite/{k}"] for k in ("x", "w", "out"))
    for algorithm in ("direct", "im2col"):
        out = convlab.conv2d(x, w, padding=1, algorithm=algorithm)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
        np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(out[finite], expected[finite], rtol=2e-5, atol=2e-5)
    assert np.isnan(out).any() and np.isinf(out).any()  # the case really exercises both


# --- seed 000: input [1..6], weights all 2 (and the groups examples); seed 002's conv1d ------------
SEED_X = np.array([[[1, 2, 3, 4, 5, 6]]], dtype=np.float32)
SEED_1D = [
    # (kernel_size, kwargs, printed output)
    (1, {}, [2, 4, 6, 8, 10, 12]),
    (2, {}, [6, 10, 14, 18, 22]),
    (3, {}, [12, 18, 24, 30]),
    (3, {"padding": 1}, [6, 12, 18, 24, 30, 22]),
    (5, {"padding": 2}, [12, 20, 30, 40, 36, 30]),
    (3, {"stride": 3}, [12, 30]),
    (3, {"dilation": 2}, [18, 24]),
]


@pytest.mark.parametrize("k, kwargs, expected", SEED_1D)
def test_seed000_single_channel(k, kwargs, expected):
    out = convlab.conv1d(SEED_X, np.full((1, 1, k), 2.0, dtype=np.float32), **kwargs)
    assert out.shape == (1, 1, len(expected))
    np.testing.assert_array_equal(out[0, 0], np.array(expected, dtype=np.float32))


SEED_X2 = np.array([[[1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60]]], dtype=np.float32)


def test_seed000_groups2():
    w = np.array([2.0, 4.0], dtype=np.float32).reshape(2, 1, 1)
    out = convlab.conv1d(SEED_X2, w, groups=2)
    np.testing.assert_array_equal(out, [[[2, 4, 6, 8, 10, 12], [40, 80, 120, 160, 200, 240]]])


def test_seed000_depthwise_multiplier2():
    w = np.array([2.0, 4.0, 6.0, 8.0], dtype=np.float32).reshape(4, 1, 1)
    out = convlab.conv1d(SEED_X2, w, groups=2)
    np.testing.assert_array_equal(
        out,
        [
            [
                [2, 4, 6, 8, 10, 12],
                [4, 8, 12, 16, 20, 24],
                [60, 120, 180, 240, 300, 360],
                [80, 160, 240, 320, 400, 480],
            ]
        ],
    )


def test_seed002_conv1d_by_hand():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 16)
    w = np.array([0.1, 0.2, 0.3], dtype=np.float32).reshape(1, 1, 3)
    out = convlab.conv1d(x, w)
    printed = [0.8, 1.4, 2.0, 2.6, 3.2, 3.8, 4.4, 5.0, 5.6, 6.2, 6.8, 7.4, 8.0, 8.6]
    assert out.shape == (1, 1, 14)
    # torch prints 4 decimals; the float32 sums round to exactly those.
    np.testing.assert_array_equal(np.round(out[0, 0], 4), np.array(printed, dtype=np.float32))
    assert out[0, 0, 0] == np.float32(0) * np.float32(0.1) + np.float32(0.2) + np.float32(
        2
    ) * np.float32(0.3)


# --- input forms ----------------------------------------------------------------------------------
def test_nested_lists_and_int_input_compute_in_float64():
    out = convlab.conv1d([[[1, 2, 3, 4, 5, 6]]], [[[2, 2, 2]]])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[[12, 18, 24, 30]]])


def test_weight_follows_input_dtype():
    x = np.ones((1, 1, 5), dtype=np.float32)
    out = convlab.conv1d(x, np.ones((1, 1, 3), dtype=np.float64))
    assert out.dtype == np.float32


def test_float16_input_is_computed_in_float32():
    out = convlab.conv2d(np.ones((1, 1, 3, 3), dtype=np.float16), np.ones((1, 1, 2, 2)))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 4.0))


@pytest.mark.kernels
def test_non_contiguous_and_negative_stride_views():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((2, 6, 12, 14))
    w = rng.standard_normal((4, 3, 3, 3))
    views = [base[:, ::2, 1::2, ::-1], base.transpose(0, 1, 3, 2)[:, :3], base[::-1, 3:, ::-2, 2:]]
    for view in views:
        assert not view.flags.c_contiguous
        expected = convlab.conv2d(np.ascontiguousarray(view), w, padding=1)
        np.testing.assert_array_equal(convlab.conv2d(view, w, padding=1), expected)
        np.testing.assert_allclose(expected, convnd(view, w, padding=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_empty_batch(nd):
    x = np.zeros((0, 2) + (5,) * nd, dtype=np.float32)
    w = np.ones((3, 2) + (3,) * nd, dtype=np.float32)
    out = CONV[nd](x, w, padding=1)
    assert out.shape == (0, 3) + (5,) * nd
    assert out.dtype == np.float32


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_unbatched_equals_batch_of_one(nd):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2,) + (6,) * nd)
    w = rng.standard_normal((3, 2) + (3,) * nd)
    np.testing.assert_array_equal(CONV[nd](x, w, stride=2), CONV[nd](x[None], w, stride=2)[0])


def test_does_not_modify_inputs():
    x = np.arange(20.0).reshape(1, 1, 4, 5)
    w = np.ones((1, 1, 3, 3))
    b = np.array([1.0])
    copies = x.copy(), w.copy(), b.copy()
    convlab.conv2d(x, w, b, padding=1, padding_mode="reflect")
    for original, copy in zip((x, w, b), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


def test_same_padding_even_kernel_puts_extra_on_the_right():
    # k=2 at stride 1: total padding 1, all of it after; output[i] = x[i] + x[i+1], last = x[-1]
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    out = convlab.conv1d(x, np.ones((1, 1, 2)), padding="same")
    np.testing.assert_array_equal(out, [[[3.0, 5.0, 7.0, 4.0]]])

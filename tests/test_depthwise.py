"""The dedicated depthwise kernels (``groups == in_channels``) of convlab/_kernels_depthwise.py.

They are checked three ways: against recorded PyTorch outputs (tests/data/depthwise.npz, written
by tests/recorders/record_depthwise.py), against the naive definition (tests/naive_depthwise.py),
and against the generic grouped kernel they replace, which they must match bit for bit (same
summation order, fastmath off). The dispatch in conv2d/conv3d is checked with a spy.
"""

import json
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_depthwise import depthwise as naive_depthwise
from tolerances import tol

import convlab
from convlab import _kernels, _kernels_depthwise
from convlab._kernels_depthwise import conv2d_generic_grouped, conv2d_per_group
from convlab.conv import _prepare

DATA = pathlib.Path(__file__).parent / "data"
CONV = {1: convlab.conv1d, 2: convlab.conv2d, 3: convlab.conv3d}


def _recorded_names():
    with np.load(DATA / "depthwise.npz") as f:
        return sorted({k.split("/")[0] for k in f.files if k.endswith("/args")})


@pytest.fixture(scope="module")
def torch_ref():
    with np.load(DATA / "depthwise.npz") as f:
        return {k: f[k] for k in f.files}


def _recorded(torch_ref, name):
    args = json.loads(str(torch_ref[f"{name}/args"]))
    nd = args.pop("nd")
    for key in ("stride", "padding", "dilation"):
        if isinstance(args[key], list):
            args[key] = tuple(args[key])
    return nd, torch_ref[f"{name}/x"], torch_ref[f"{name}/w"], torch_ref.get(f"{name}/b"), args


def generic_conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """conv3d forced onto the generic grouped kernel (the 3-D twin of conv2d_generic_grouped)."""
    p = _prepare(3, x, w, b, stride, padding, dilation, groups, padding_mode)
    out = np.empty(p.out_shape, dtype=p.x.dtype)
    _kernels._conv3d_direct(p.x, p.w, p.b, out, *p.stride, *p.dilation, p.groups)
    return out[0] if p.unbatched else out


# --- recorded PyTorch references --------------------------------------------------------------


@pytest.mark.kernels
@pytest.mark.parametrize("name", _recorded_names())
def test_matches_torch(name, torch_ref):
    nd, x, w, b, args = _recorded(torch_ref, name)
    expected = torch_ref[f"{name}/out"]
    out = CONV[nd](x, w, b, **args)
    assert out.dtype == x.dtype
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, **tol(x.dtype))


@pytest.mark.kernels
@pytest.mark.parametrize("name", _recorded_names())
def test_recorded_cases_bit_identical_to_generic_kernel(name, torch_ref):
    nd, x, w, b, args = _recorded(torch_ref, name)
    if nd == 1:
        # conv1d runs the 2-D kernels; its im2col path is independent of both direct kernels
        expected = convlab.conv1d(x, w, b, **args, algorithm="im2col")
        np.testing.assert_allclose(convlab.conv1d(x, w, b, **args), expected, **tol(x.dtype))
        return
    generic = conv2d_generic_grouped if nd == 2 else generic_conv3d
    np.testing.assert_array_equal(CONV[nd](x, w, b, **args), generic(x, w, b, **args))


@pytest.mark.kernels
def test_nonfinite_propagate_like_torch(torch_ref):
    x, w, expected = (torch_ref[f"nonfinite/{k}"] for k in ("x", "w", "out"))
    out = convlab.conv2d(x, w, padding=1, groups=2)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(out[finite], expected[finite], **tol(np.float32))
    assert np.isnan(out).any() and np.isinf(out).any()


# --- dedicated kernel == generic grouped kernel == naive definition ----------------------------

# (kernel, stride, padding, dilation, padding_mode): grouped by the code path they reach
GEOMETRIES = [
    # 3x3 fast path: stride 1, dilation 1, two rows at a time (odd output height leaves one row)
    ((3, 3), 1, 1, 1, "zeros"),
    ((3, 3), 1, 0, 1, "zeros"),
    # 3x3 with strides / dilations: the one-row loops, unit and non-unit column stride
    ((3, 3), (2, 1), 1, 1, "zeros"),
    ((3, 3), (1, 2), 1, 1, "zeros"),
    ((3, 3), 2, 2, (2, 3), "zeros"),
    ((3, 3), 1, 2, 2, "reflect"),
    # general path: widths 1, 2, 3, 4, 5, 7 (three taps per pass, then two, then one)
    ((1, 1), 1, 0, 1, "zeros"),
    ((2, 2), 1, 0, 1, "zeros"),
    ((1, 3), 1, (0, 1), 1, "replicate"),
    ((4, 4), 2, 1, 1, "zeros"),
    ((5, 5), 1, 2, 1, "circular"),
    ((3, 7), (1, 3), (1, 3), (2, 1), "zeros"),
    ((5, 2), 2, 1, (1, 2), "reflect"),
]


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("multiplier", [1, 2, 3])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
def test_conv2d_matches_generic_kernel_and_naive(geometry, multiplier, dtype):
    kernel, stride, padding, dilation, padding_mode = geometry
    rng = np.random.default_rng([*kernel, multiplier])
    c_in = 3
    x = rng.standard_normal((2, c_in, 9, 10)).astype(dtype)
    w = rng.standard_normal((c_in * multiplier, 1) + kernel).astype(dtype)
    b = rng.standard_normal(c_in * multiplier).astype(dtype)
    args = dict(
        stride=stride, padding=padding, dilation=dilation, groups=c_in, padding_mode=padding_mode
    )
    out = convlab.conv2d(x, w, b, **args)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, conv2d_generic_grouped(x, w, b, **args))
    expected = naive_depthwise(x, w, b, stride, padding, dilation, padding_mode)
    np.testing.assert_allclose(out, expected, **tol(dtype))


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize(
    "kernel, stride, padding, dilation",
    [
        ((3, 3, 3), 1, 1, 1),
        ((1, 3, 5), (1, 2, 1), (0, 1, 2), 1),
        ((2, 2, 4), 2, 1, (2, 1, 2)),
    ],
    ids=str,
)
def test_conv3d_matches_generic_kernel_and_naive(
    kernel, stride, padding, dilation, multiplier, dtype
):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 6, 7, 8)).astype(dtype)
    w = rng.standard_normal((2 * multiplier, 1) + kernel).astype(dtype)
    b = rng.standard_normal(2 * multiplier).astype(dtype)
    out = convlab.conv3d(x, w, b, stride, padding, dilation, groups=2)
    np.testing.assert_array_equal(out, generic_conv3d(x, w, b, stride, padding, dilation, groups=2))
    np.testing.assert_allclose(
        out, naive_depthwise(x, w, b, stride, padding, dilation), **tol(dtype)
    )


@pytest.mark.kernels
def test_conv1d_depthwise_matches_naive():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 25))
    w = rng.standard_normal((8, 1, 5))
    out = convlab.conv1d(x, w, None, stride=2, padding=3, dilation=2, groups=4)
    np.testing.assert_allclose(out, naive_depthwise(x, w, None, 2, 3, 2), **tol(np.float64))


@pytest.mark.kernels
def test_single_input_channel_with_many_outputs():
    """groups == C_in == 1 is depthwise too: one image, eight filters, still eight tasks."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 1, 12, 11)).astype(np.float32)
    w = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    out = convlab.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(out, conv2d_generic_grouped(x, w, padding=1))
    np.testing.assert_allclose(out, naive_depthwise(x, w, None, 1, 1, 1), **tol(np.float32))


@pytest.mark.kernels
def test_unbatched_and_non_contiguous_input():
    rng = np.random.default_rng(5)
    big = rng.standard_normal((3, 14, 20))
    x = big[:, ::2, ::2]  # (3, 7, 10), not contiguous
    w = rng.standard_normal((6, 1, 3, 3))
    out = convlab.conv2d(x, w, padding=1, groups=3)
    assert out.shape == (6, 7, 10)
    np.testing.assert_allclose(
        out, naive_depthwise(x[None], w, None, 1, 1, 1)[0], **tol(np.float64)
    )


@pytest.mark.kernels
def test_one_hot_filters_read_the_right_cell():
    """A one-hot filter copies a shifted input channel exactly: each tap reads the right cell."""
    x = np.arange(2 * 6 * 7, dtype=np.float64).reshape(1, 2, 6, 7)
    for kernel in ((3, 3), (2, 5)):
        for tap in np.ndindex(*kernel):
            w = np.zeros((2, 1) + kernel)
            w[(slice(None), 0) + tap] = 1.0
            out = convlab.conv2d(x, w, groups=2, dilation=(1, 1))
            i, j = tap
            oh, ow = out.shape[2:]
            np.testing.assert_array_equal(out, x[:, :, i : i + oh, j : j + ow])


# --- the seed's worked example (000): depthwise multiplier 2, kernel size 1 -------------------


def test_seed_000_depthwise_multiplier_2():
    x = np.array([[[1, 2, 3, 4, 5, 6], [10, 20, 30, 40, 50, 60]]], dtype=np.float32)
    w = np.array([2, 4, 6, 8], dtype=np.float32).reshape(4, 1, 1)
    out = convlab.conv1d(x, w, groups=2)
    expected = np.array(
        [
            [
                [2, 4, 6, 8, 10, 12],
                [4, 8, 12, 16, 20, 24],
                [60, 120, 180, 240, 300, 360],
                [80, 160, 240, 320, 400, 480],
            ]
        ],
        dtype=np.float32,
    )
    np.testing.assert_array_equal(out, expected)


# --- dispatch -----------------------------------------------------------------------------------


@pytest.fixture
def depthwise_calls(monkeypatch):
    """Record every call conv2d/conv3d make into the dedicated kernels."""
    calls = []
    for name in ("_conv2d_depthwise", "_conv3d_depthwise"):
        original = getattr(_kernels_depthwise, name)

        def spy(*args, _original=original, _name=name):
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(_kernels_depthwise, name, spy)
    return calls


@pytest.mark.parametrize("algorithm", ["auto", "direct"])
@pytest.mark.parametrize("multiplier", [1, 2, 8])
def test_depthwise_dispatch_for_direct_and_auto(depthwise_calls, algorithm, multiplier):
    x = np.ones((1, 4, 6, 6))
    convlab.conv2d(x, np.ones((4 * multiplier, 1, 5, 5)), groups=4, algorithm=algorithm)
    convlab.conv1d(x[:, :, 0], np.ones((4 * multiplier, 1, 3)), groups=4, algorithm=algorithm)
    assert depthwise_calls == ["_conv2d_depthwise", "_conv2d_depthwise"]


def test_depthwise_dispatch_conv3d(depthwise_calls):
    convlab.conv3d(np.ones((1, 2, 4, 4, 4)), np.ones((2, 1, 3, 3, 3)), groups=2)
    convlab.conv3d(np.ones((1, 2, 4, 4, 4)), np.ones((2, 2, 3, 3, 3)), groups=1)
    assert depthwise_calls == ["_conv3d_depthwise"]


def test_no_dispatch_for_im2col_or_wider_groups(depthwise_calls):
    x = np.ones((1, 4, 6, 6))
    convlab.conv2d(x, np.ones((4, 1, 3, 3)), groups=4, algorithm="im2col")
    convlab.conv2d(x, np.ones((4, 2, 3, 3)), groups=2)
    convlab.conv2d(x, np.ones((4, 4, 3, 3)), groups=1, algorithm="direct")
    assert depthwise_calls == []


def test_empty_batch_skips_the_kernel(depthwise_calls):
    out = convlab.conv2d(np.ones((0, 3, 5, 5)), np.ones((3, 1, 3, 3)), groups=3)
    assert out.shape == (0, 3, 3, 3)
    assert depthwise_calls == []


# --- the benchmark helpers ----------------------------------------------------------------------


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_per_group_loop_equals_grouped_conv(groups):
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((2, 4, 7, 8))
    w = rng.standard_normal((8, 4 // groups, 3, 3))
    b = rng.standard_normal(8)
    expected = convlab.conv2d(x, w, b, stride=2, padding=1, groups=groups)
    np.testing.assert_allclose(
        conv2d_per_group(x, w, b, stride=2, padding=1, groups=groups), expected, **tol(np.float64)
    )
    np.testing.assert_allclose(
        conv2d_per_group(x[0], w, None, groups=groups),
        convlab.conv2d(x[0], w, groups=groups),
        **tol(np.float64),
    )


def test_per_group_rejects_groups_not_dividing_in_channels():
    with pytest.raises(ValueError, match=r"in_channels \(4\) must be divisible by groups \(3\)"):
        conv2d_per_group(np.ones((1, 4, 5, 5)), np.ones((3, 1, 3, 3)), groups=3)


def test_per_group_rejects_bad_rank():
    with pytest.raises(ValueError, match=r"input must be 3-D or 4-D .* got shape \(4, 5\)"):
        conv2d_per_group(np.ones((4, 5)), np.ones((4, 1, 3, 3)), groups=4)


def test_generic_grouped_rejects_weight_mismatch():
    with pytest.raises(ValueError, match=r"weight.shape\[1\] \* groups = 2 \* 4 = 8"):
        conv2d_generic_grouped(np.ones((1, 4, 5, 5)), np.ones((4, 2, 3, 3)), groups=4)


# --- property: any geometry, the two kernels agree exactly -------------------------------------


@pytest.mark.kernels
@settings(max_examples=25, deadline=None)
@given(
    c_in=st.integers(1, 3),
    multiplier=st.integers(1, 3),
    kh=st.integers(1, 4),
    kw=st.integers(1, 6),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    dh=st.integers(1, 3),
    dw=st.integers(1, 3),
    extra_h=st.integers(0, 6),
    extra_w=st.integers(0, 9),
    pad=st.integers(0, 2),
    double=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_equals_generic_kernel(
    c_in, multiplier, kh, kw, sh, sw, dh, dw, extra_h, extra_w, pad, double, seed
):
    dtype = np.float64 if double else np.float32
    rng = np.random.default_rng(seed)
    h = dh * (kh - 1) + 1 + extra_h
    w_size = dw * (kw - 1) + 1 + extra_w
    x = rng.standard_normal((2, c_in, h, w_size)).astype(dtype)
    w = rng.standard_normal((c_in * multiplier, 1, kh, kw)).astype(dtype)
    b = rng.standard_normal(c_in * multiplier).astype(dtype)
    args = dict(stride=(sh, sw), padding=pad, dilation=(dh, dw), groups=c_in)
    np.testing.assert_array_equal(
        convlab.conv2d(x, w, b, **args), conv2d_generic_grouped(x, w, b, **args)
    )


def test_helper_docstring_examples_run():
    """tests/test_doctests.py skips the ``_kernels*`` modules; the helpers' examples run here."""
    import doctest

    with np.printoptions(legacy=False):
        result = doctest.testmod(_kernels_depthwise, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0


# --- the 2-D kernel's own paths: padding inside the kernel, row-wise or flat, thread splits -----


def _kernel_vs_references(x, w, b, stride, pairs, dilation, rowwise_min=-1):
    """Run _conv2d_depthwise on the *unpadded* x with the top/left padding, check it is bit-identical
    to the generic kernel on the padded input and close to the naive definition."""
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pairs))
    expected = conv2d_generic_grouped(xp, w, b, stride=stride, dilation=dilation, groups=x.shape[1])
    out = np.full(expected.shape, np.nan, dtype=x.dtype)  # every element must be written
    _kernels_depthwise._conv2d_depthwise(
        x, w, b, out, *stride, *dilation, pairs[0][0], pairs[1][0], rowwise_min
    )
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(out, naive_depthwise(xp, w, b, stride, 0, dilation), **tol(x.dtype))
    return out


@pytest.mark.kernels
@pytest.mark.parametrize("rowwise_min", [-1, 0, 10**6], ids=["default", "rows", "flat"])
@pytest.mark.parametrize("kernel", [(3, 3), (2, 5), (1, 1), (4, 2)], ids=str)
@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (1, 2), (3, 3), (2, 3)], ids=str)
@pytest.mark.parametrize("dilation", [(1, 1), (2, 3)], ids=str)
def test_kernel_pads_inside(kernel, stride, dilation, rowwise_min):
    """Every padding amount, before and after, on odd and even sizes, multipliers 1 and 3."""
    rng = np.random.default_rng([*kernel, *stride, *dilation])
    for pairs in [
        ((0, 0), (0, 0)),
        ((1, 1), (1, 1)),
        ((2, 0), (0, 3)),
        ((0, 2), (3, 1)),
        ((3, 3), (2, 2)),
        ((1, 2), (2, 1)),
    ]:
        for (h, w_size), multiplier in [((9, 10), 1), ((7, 17), 3), ((16, 24), 1)]:
            h_out = (h + sum(pairs[0]) - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
            w_out = (w_size + sum(pairs[1]) - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
            if h_out < 1 or w_out < 1:
                continue
            x = rng.standard_normal((2, 3, h, w_size)).astype(np.float32)
            w = rng.standard_normal((3 * multiplier, 1) + kernel).astype(np.float32)
            b = rng.standard_normal(3 * multiplier).astype(np.float32)
            _kernel_vs_references(x, w, b, stride, pairs, dilation, rowwise_min)


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_pads_inside_wide_rows_and_float64(dtype):
    """Output widths that are multiples of 8 (written row by row by default), stride 2 with odd
    and even left padding (the even/odd column split), a padding wider than the kernel needs."""
    rng = np.random.default_rng(11)
    for shape, stride, pairs in [
        ((1, 4, 32, 32), (1, 1), ((1, 1), (1, 1))),
        ((1, 4, 33, 31), (2, 2), ((1, 1), (1, 1))),
        ((1, 4, 30, 30), (2, 2), ((0, 1), (0, 1))),
        ((1, 4, 30, 29), (2, 2), ((2, 2), (2, 3))),
        ((1, 2, 8, 8), (1, 1), ((5, 5), (4, 6))),
    ]:
        x = rng.standard_normal(shape).astype(dtype)
        for multiplier in (1, 2):
            w = rng.standard_normal((shape[1] * multiplier, 1, 3, 3)).astype(dtype)
            b = rng.standard_normal(shape[1] * multiplier).astype(dtype)
            for rowwise_min in (-1, 0, 10**6):
                _kernel_vs_references(x, w, b, stride, pairs, (1, 1), rowwise_min)


@pytest.mark.kernels
def test_kernel_takes_non_contiguous_input():
    rng = np.random.default_rng(12)
    big = rng.standard_normal((2, 6, 22, 26)).astype(np.float32)
    x = big[:, ::2, 1::2, ::2]  # (2, 3, 11, 13), strided in every axis
    w = rng.standard_normal((6, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    for stride in ((1, 1), (2, 2)):
        out = _kernel_vs_references(x, w, b, stride, ((1, 1), (1, 1)), (1, 1))
        np.testing.assert_array_equal(
            out,
            _kernel_vs_references(np.ascontiguousarray(x), w, b, stride, ((1, 1), (1, 1)), (1, 1)),
        )


@pytest.mark.kernels
@pytest.mark.parametrize("n_threads", [1, 2])
def test_kernel_thread_splits(n_threads):
    """The threads split (image, output channel) pairs: fewer pairs than threads, a split in the
    middle of one input plane's K outputs, and one image with one channel all give the same."""
    import numba

    rng = np.random.default_rng(13)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for n, c, multiplier in [(1, 1, 1), (1, 1, 5), (3, 1, 3), (2, 3, 2), (1, 5, 1)]:
            x = rng.standard_normal((n, c, 10, 9)).astype(np.float32)
            w = rng.standard_normal((c * multiplier, 1, 3, 3)).astype(np.float32)
            b = rng.standard_normal(c * multiplier).astype(np.float32)
            _kernel_vs_references(x, w, b, (1, 1), ((1, 1), (1, 1)), (1, 1))
    finally:
        numba.set_num_threads(previous)


@pytest.mark.kernels
def test_kernel_padding_keeps_nonfinite_where_torch_has_them():
    """NaN and inf at the image border stay in the windows that hold them; the zero padding
    around them is a real zero (0 * w), never garbage from an earlier plane."""
    x = np.ones((1, 2, 6, 8), dtype=np.float32)
    x[0, 0, 0, 0] = np.nan
    x[0, 1, 5, 7] = np.inf
    w = np.ones((2, 1, 3, 3), dtype=np.float32)
    b = np.zeros(2, dtype=np.float32)
    out = _kernel_vs_references(x, w, b, (1, 1), ((1, 1), (1, 1)), (1, 1))
    assert np.isnan(out[0, 0, :2, :2]).all() and np.isfinite(out[0, 0, 2:]).all()
    assert np.isinf(out[0, 1, 4:, 6:]).all() and np.isfinite(out[0, 1, :4]).all()
    assert out[0, 0, 5, 7] == 4.0  # a corner window: 4 ones and 5 zeros of padding


# --- the 3-D kernel: a ring of input planes, depth padding left out or read as zeros ------------


def _kernel3d_vs_references(x, w, b, stride, pairs, dilation):
    """Run _conv3d_depthwise on the unpadded x, check it equals the generic kernel on the padded
    input bit for bit (NaN where it has NaN) and is close to the naive definition."""
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pairs))
    expected = generic_conv3d(xp, w, b, stride, 0, dilation, groups=x.shape[1])
    out = np.full(expected.shape, np.nan, dtype=x.dtype)  # every element must be written
    _kernels_depthwise._conv3d_depthwise(
        x, w, b, out, *stride, *dilation, pairs[0][0], pairs[1][0], pairs[2][0]
    )
    np.testing.assert_array_equal(out, expected)
    if np.isfinite(w).all():
        naive = naive_depthwise(xp, w, b, stride, 0, dilation)
        np.testing.assert_allclose(out, naive, **tol(x.dtype))
    return out


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "depth, kernel, stride, pairs, dilation, multiplier",
    [
        # depth padding deeper than the kernel reaches: whole output depths are the bias
        (5, (3, 3, 3), (1, 1, 1), ((3, 3), (1, 1), (1, 1)), (1, 1, 1), 1),
        # depth dilation 3: seven slots, more than some inputs' depth
        (9, (3, 1, 2), (1, 1, 1), ((3, 2), (0, 0), (1, 0)), (3, 1, 1), 2),
        (4, (3, 3, 3), (1, 1, 1), ((3, 3), (1, 1), (1, 1)), (3, 1, 1), 1),
        # depth stride 3 (planes skipped between output depths), strides 1 and 2 across
        (8, (2, 3, 3), (3, 1, 2), ((1, 0), (1, 1), (0, 1)), (1, 2, 1), 2),
        # one input plane; a kernel of depth 1 with depth padding
        (1, (3, 3, 3), (1, 1, 1), ((1, 1), (1, 1), (1, 1)), (1, 1, 1), 1),
        (3, (1, 3, 3), (1, 1, 1), ((2, 1), (1, 1), (1, 1)), (1, 1, 1), 3),
        # 5x5 planes (the general tap loop), stride 2 in depth too
        (7, (3, 5, 5), (2, 2, 1), ((1, 1), (2, 2), (2, 2)), (1, 1, 1), 1),
    ],
    ids=str,
)
def test_kernel3d_ring_and_depth_padding(depth, kernel, stride, pairs, dilation, multiplier, dtype):
    rng = np.random.default_rng([depth, *kernel, *stride, multiplier])
    x = rng.standard_normal((2, 3, depth, 7, 9)).astype(dtype)
    w = rng.standard_normal((3 * multiplier, 1) + kernel).astype(dtype)
    b = rng.standard_normal(3 * multiplier).astype(dtype)
    _kernel3d_vs_references(x, w, b, stride, pairs, dilation)


@pytest.mark.kernels
def test_kernel3d_nonfinite_weight_reads_the_depth_padding():
    """With an inf weight the padding's 0 * inf is NaN, as in the definition: the depth taps
    that read padding are not left out then (they are for finite weights)."""
    rng = np.random.default_rng(14)
    x = rng.standard_normal((1, 2, 4, 5, 6)).astype(np.float32)
    w = rng.standard_normal((2, 1, 3, 3, 3)).astype(np.float32)
    b = np.zeros(2, dtype=np.float32)
    w[0, 0, 0, 1, 1] = np.inf  # channel 0's first depth tap reads padding at output depth 0
    out = _kernel3d_vs_references(x, w, b, (1, 1, 1), ((1, 1), (1, 1), (1, 1)), (1, 1, 1))
    assert np.isnan(out[0, 0, 0]).all() and np.isfinite(out[0, 1]).all()


@pytest.mark.kernels
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_kernel3d_same_bits_on_any_thread_count(n_threads):
    import numba

    rng = np.random.default_rng(15)
    x = rng.standard_normal((2, 3, 6, 8, 8)).astype(np.float32)
    w = rng.standard_normal((6, 1, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    previous = numba.get_num_threads()
    numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
    try:
        _kernel3d_vs_references(x, w, b, (1, 1, 1), ((1, 1), (1, 1), (1, 1)), (1, 1, 1))
    finally:
        numba.set_num_threads(previous)


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_one_output_row_written_in_place(dtype):
    """One output row (conv1d, or a kernel as tall as the padded input): the flat loop writes
    the row in place, with no junk columns past its end reaching the next plane's row."""
    rng = np.random.default_rng(16)
    for shape, kernel, stride, pairs in [
        ((2, 3, 1, 37), (1, 5), (1, 1), ((0, 0), (2, 2))),
        ((2, 3, 1, 40), (1, 4), (1, 2), ((0, 0), (3, 1))),
        ((2, 3, 1, 33), (3, 3), (1, 1), ((1, 1), (1, 1))),
        ((1, 2, 3, 16), (3, 7), (1, 1), ((0, 0), (3, 3))),
    ]:
        x = rng.standard_normal(shape).astype(dtype)
        for multiplier in (1, 2):
            w = rng.standard_normal((shape[1] * multiplier, 1) + kernel).astype(dtype)
            b = rng.standard_normal(shape[1] * multiplier).astype(dtype)
            _kernel_vs_references(x, w, b, stride, pairs, (1, 1))

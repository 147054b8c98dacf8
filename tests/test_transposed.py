"""conv_transpose1d/2d/3d: recorded PyTorch outputs, naive references, seed 001, adjointness, rejections.

The torch references come from ``tests/recorders/record_transposed.py`` (``transposed.npz``); each
case stores its own keyword arguments, so the case table lives in one place (the recorder).
"""

import json
import math
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_transposed import conv_forward, conv_transpose_scatter, conv_transpose_zero_insertion
from tolerances import load_npz, tol

import convlab
from convlab import shapes
from convlab.transposed import choose_algorithm

DATA = pathlib.Path(__file__).parent / "data"
TRANSPOSE = {1: convlab.conv_transpose1d, 2: convlab.conv_transpose2d, 3: convlab.conv_transpose3d}
CONV = {1: convlab.conv1d, 2: convlab.conv2d, 3: convlab.conv3d}

REF = load_npz(DATA / "transposed.npz")
CASE_NAMES = sorted({k.split("/")[0] for k in REF if "/" in k})


def _case(name):
    args = json.loads(str(REF[f"{name}/args"]))
    nd = args.pop("nd")
    return nd, REF[f"{name}/x"], REF[f"{name}/w"], REF.get(f"{name}/b"), args, REF[f"{name}/out"]


def _output_padding(nd, x, w, args):
    """The output padding of a case (derived from output_size where the case gives one)."""
    if "output_size" not in args:
        return args["output_padding"]
    size = args["output_size"][-nd:]
    return shapes.conv_transpose_output_padding(
        tuple(x.shape[-nd:]),
        tuple(size),
        w.shape[2:],
        args["stride"],
        args["padding"],
        args["dilation"],
    )


# --- recorded torch references ---------------------------------------------------------------------


@pytest.mark.kernels
@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("algorithm", ["auto", "direct", "gemm"])
def test_matches_torch(name, algorithm):
    nd, x, w, b, args, expected = _case(name)
    out = TRANSPOSE[nd](x, w, b, **args, algorithm=algorithm)
    assert out.dtype == x.dtype
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, **tol(x.dtype))


def test_reference_file_covers_the_table():
    """The recorded cases span the parameters the issue lists (so a shrunken file would fail here)."""
    cases = [_case(name) for name in CASE_NAMES]
    assert {nd for nd, *_ in cases} == {1, 2, 3}
    assert {x.dtype for _, x, *_ in cases} == {np.dtype(np.float32), np.dtype(np.float64)}
    assert any(a["groups"] > 1 for *_, a, _ in cases)
    assert any("output_size" in a for *_, a, _ in cases)
    assert any(np.any(np.asarray(a.get("output_padding", 0)) > 0) for *_, a, _ in cases)
    assert any(np.any(np.asarray(a["dilation"]) > 1) for *_, a, _ in cases)
    assert any(x.ndim == nd + 1 for nd, x, *_ in cases)  # unbatched


@pytest.mark.parametrize("name", [n for n in CASE_NAMES if REF[f"{n}/x"].size <= 200])
def test_naive_references_match_torch(name):
    """Both naive constructions reproduce torch, so they can be trusted for the property tests."""
    nd, x, w, b, args, expected = _case(name)
    batched = x if x.ndim == nd + 2 else x[None]
    kwargs = dict(
        stride=args["stride"],
        padding=args["padding"],
        groups=args["groups"],
        dilation=args["dilation"],
        output_padding=_output_padding(nd, x, w, args),
    )
    scatter = conv_transpose_scatter(batched, w, b, **kwargs)
    expected_b = expected if x.ndim == nd + 2 else expected[None]
    np.testing.assert_allclose(scatter, expected_b, **tol(x.dtype))
    if np.all(
        np.asarray(args["padding"]) <= np.asarray(args["dilation"]) * (np.array(w.shape[2:]) - 1)
    ):
        zeros = conv_transpose_zero_insertion(batched, w, b, **kwargs)
        np.testing.assert_allclose(zeros, expected_b, **tol(x.dtype))


# --- seed 001 -----------------------------------------------------------------------------------------

SEED_KERNEL = np.array([[-1, 2, -3], [4, -5, 6], [-7, 8, -9]], dtype=np.float32)
SEED_RESULT = np.array(
    [[56, -51, 46, 183], [-148, -35, 35, -123], [88, 35, -35, 63], [532, -41, 36, 729]],
    dtype=np.float32,
)


@pytest.mark.kernels
@pytest.mark.parametrize("algorithm", ["direct", "gemm"])
def test_seed001_tensorflow_example(algorithm):
    """Seed 001: x = 1..16 as 4x4, the 3x3 kernel, conv VALID stride 1, then conv2d_transpose.

    TensorFlow stores the filter as [k, k, C_in, C_out] for conv2d and [k, k, C_out, C_in] for
    conv2d_transpose; with one channel both are the same 3x3 array, so in PyTorch's layout it is
    ``kernel[None, None]`` for both calls: no flip, no transposition. ``output_shape=[1, 4, 4, 1]``
    is reached with output_padding 0 (stride 1).
    """
    x = np.arange(1, 17, dtype=np.float32).reshape(1, 1, 4, 4)
    w = SEED_KERNEL[None, None]
    out = convlab.conv2d(x, w, padding="valid")
    np.testing.assert_array_equal(out[0, 0], [[-56, -61], [-76, -81]])
    back = convlab.conv_transpose2d(out, w, output_size=(4, 4), algorithm=algorithm)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back[0, 0], SEED_RESULT)
    # the seed's point: the transposed convolution restores the shape, not the input
    assert back.shape == x.shape and not np.array_equal(back, x)


def test_seed001_tf_output_sizes():
    """TensorFlow's conventions: VALID o = (i-1)s + k, SAME o = i*s (the seed's two examples)."""
    assert shapes.tf_conv_transpose_output_size(2, 3, 1, "VALID") == 4
    assert shapes.tf_conv_transpose_output_size(2, 3, 3, "SAME") == 6
    assert shapes.tf_conv_transpose_output_size((2, 5), 3, 2, "same") == (4, 10)
    assert shapes.tf_conv_transpose_output_size(3, 2, 3, "VALID") == 9  # Keras: i*s + max(k - s, 0)
    for i, k, s in [(2, 3, 1), (2, 3, 2), (4, 5, 3), (3, 2, 3)]:
        for padding in ("SAME", "VALID"):
            o = shapes.tf_conv_transpose_output_size(i, k, s, padding)
            # the size is one a convolution with that padding maps back to i (TF's output sizes)
            forward = -(-o // s) if padding == "SAME" else (o - k) // s + 1
            assert forward == i, (i, k, s, padding, o)


@pytest.mark.parametrize("size", [5, 6])
def test_seed001_two_input_sizes_one_output_size(size):
    """Seed 001: with k=3, s=2, p=0 both 5x5 and 6x6 inputs give a 2x2 output; output_size picks.

    (The seed's text says stride 1 for the 6x6 case, but its 2x2 result needs stride 2.) The seed's
    formula a = (o + 2p - k) % s gives the output padding, 0 for 5 and 1 for 6.
    """
    assert convlab.conv_output_size(size, 3, stride=2) == 2
    a = (size + 2 * 0 - 3) % 2
    assert shapes.conv_transpose_output_padding(2, size, 3, stride=2) == a
    assert shapes.conv_transpose_output_size(2, 3, stride=2, output_padding=a) == size
    rng = np.random.default_rng(size)
    y = rng.standard_normal((1, 1, 2, 2))
    w = rng.standard_normal((1, 1, 3, 3))
    by_size = convlab.conv_transpose2d(y, w, stride=2, output_size=(size, size))
    by_padding = convlab.conv_transpose2d(y, w, stride=2, output_padding=a)
    assert by_size.shape == (1, 1, size, size)
    np.testing.assert_array_equal(by_size, by_padding)
    # the extra row/column of the 6x6 output receives no tap (it only restores the shape)
    if size == 6:
        assert not by_size[..., 5, :].any() and not by_size[..., :, 5].any()
    # and a convolution of the result comes back to 2x2
    assert convlab.conv2d(by_size, w, stride=2).shape == (1, 1, 2, 2)


# --- shape arithmetic ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "i,k,s,p,a,d,o",
    [
        (2, 3, 2, 0, 0, 1, 5),
        (2, 3, 2, 0, 1, 1, 6),
        (28, 4, 2, 1, 0, 1, 56),
        (14, 3, 2, 1, 1, 1, 28),
        (4, 3, 1, 0, 2, 3, 12),  # output_padding below the dilation
        (3, 1, 1, 0, 0, 1, 3),
    ],
)
def test_conv_transpose_output_size(i, k, s, p, a, d, o):
    assert shapes.conv_transpose_output_size(i, k, s, p, a, d) == o
    assert shapes.conv_transpose_output_padding(i, o, k, s, p, d) == a
    # torch's formula written out, and the conv that this transposes maps o back to i
    assert o == (i - 1) * s - 2 * p + d * (k - 1) + a + 1
    if a < s:
        assert convlab.conv_output_size(o, k, s, p, d) == i


def test_conv_transpose_output_size_tuples():
    assert shapes.conv_transpose_output_size((2, 3), (3, 2), (2, 1), (0, 1), (1, 0)) == (6, 2)
    assert shapes.conv_transpose_output_padding((2, 3), (6, 2), (3, 2), (2, 1), (0, 1)) == (1, 0)
    assert convlab.conv_transpose_output_size is shapes.conv_transpose_output_size


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: shapes.conv_transpose_output_size(3, 3, stride=2, output_padding=2),
            r"output_padding \(2\) must be smaller than either stride \(2\) or dilation \(1\)",
        ),
        (
            lambda: shapes.conv_transpose_output_size(2, 3, stride=1, padding=3),
            r"output size .* = -2 is not positive",
        ),
        (
            lambda: shapes.conv_transpose_output_padding(2, 7, 3, stride=2),
            r"output_size 7 is unreachable.*sizes 5 to 6, got 7",
        ),
        (
            lambda: shapes.conv_transpose_output_padding(2, 4, 3, stride=2),
            r"output_size 4 is unreachable.*sizes 5 to 6, got 4",
        ),
        (
            lambda: shapes.conv_transpose_output_padding(2, (5, 5), 3),
            r"output_size .* must be an int when input_size is an int",
        ),
        (
            lambda: shapes.tf_conv_transpose_output_size(2, 3, 1, "FULL"),
            r"padding must be 'SAME' or 'VALID'",
        ),
    ],
)
def test_shape_rejections(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- algorithms, layouts, dtypes --------------------------------------------------------------------


@st.composite
def transposed_problems(draw, nd=2):
    groups = draw(st.integers(1, 2))
    c_in = groups * draw(st.integers(1, 2))
    out_per_group = draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    size = tuple(draw(st.integers(1, 4)) for _ in range(nd))
    # padding at most what keeps the output positive
    padding = tuple(
        draw(st.integers(0, ((i - 1) * s + d * (k - 1) + a) // 2))
        for i, k, s, d, a in zip(size, kernel, stride, dilation, output_padding, strict=True)
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(
        x=rng.standard_normal((draw(st.integers(1, 2)), c_in) + size),
        w=rng.standard_normal((c_in, out_per_group) + kernel),
        b=rng.standard_normal(out_per_group * groups),
        kwargs=dict(
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            groups=groups,
            dilation=dilation,
        ),
    )


@pytest.mark.kernels
@settings(max_examples=15, deadline=None)
@given(transposed_problems())
def test_direct_gemm_and_naive_agree(p):
    direct = convlab.conv_transpose2d(p["x"], p["w"], p["b"], **p["kwargs"], algorithm="direct")
    gemm = convlab.conv_transpose2d(p["x"], p["w"], p["b"], **p["kwargs"], algorithm="gemm")
    naive = conv_transpose_scatter(p["x"], p["w"], p["b"], **p["kwargs"])
    k = p["kwargs"]
    expected_shape = shapes.conv_transpose_output_size(
        p["x"].shape[2:],
        p["w"].shape[2:],
        k["stride"],
        k["padding"],
        k["output_padding"],
        k["dilation"],
    )
    assert direct.shape == (p["x"].shape[0], p["w"].shape[1] * k["groups"]) + expected_shape
    np.testing.assert_allclose(direct, naive, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gemm, naive, rtol=1e-12, atol=1e-12)


@pytest.mark.kernels
@settings(max_examples=8, deadline=None)
@given(transposed_problems(nd=3))
def test_3d_direct_gemm_and_naive_agree(p):
    naive = conv_transpose_scatter(p["x"], p["w"], p["b"], **p["kwargs"])
    for algorithm in ("direct", "gemm"):
        out = convlab.conv_transpose3d(p["x"], p["w"], p["b"], **p["kwargs"], algorithm=algorithm)
        np.testing.assert_allclose(out, naive, rtol=1e-12, atol=1e-12)


def test_1d_is_2d_with_height_one():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 4, 6)), rng.standard_normal((4, 3, 3))
    kw = dict(stride=2, padding=1, output_padding=1, groups=2, dilation=2)
    out1 = convlab.conv_transpose1d(x, w, **kw)
    out2 = convlab.conv_transpose2d(
        x[:, :, None],
        w[:, :, None],
        stride=(1, 2),
        padding=(0, 1),
        output_padding=(0, 1),
        groups=2,
        dilation=(1, 2),
    )
    np.testing.assert_allclose(out1, out2[:, :, 0], rtol=1e-12, atol=1e-12)


def test_grouped_is_concatenated_groups():
    rng = np.random.default_rng(2)
    x, w, b = (
        rng.standard_normal((2, 6, 4, 4)),
        rng.standard_normal((6, 2, 3, 3)),
        rng.standard_normal(6),
    )
    out = convlab.conv_transpose2d(x, w, b, stride=2, groups=3)
    parts = [
        convlab.conv_transpose2d(
            x[:, 2 * g : 2 * g + 2], w[2 * g : 2 * g + 2], b[2 * g : 2 * g + 2], stride=2
        )
        for g in range(3)
    ]
    np.testing.assert_allclose(out, np.concatenate(parts, axis=1), rtol=1e-12, atol=1e-12)


def test_choose_algorithm():
    assert choose_algorithm((4, 128, 28, 28), (128, 64, 4, 4), 1, 4) == "gemm"
    assert choose_algorithm((4, 32, 28, 28), (32, 1, 3, 3), 32, 4) == "direct"  # depthwise
    assert choose_algorithm((1, 2, 5, 5), (2, 3, 3, 3), 1, 8) == "direct"  # tiny
    # a large batch no longer grows the GEMM form's columns (one block per thread) ...
    assert choose_algorithm((64, 256, 256, 256), (256, 128, 3, 3), 1, 4) == "gemm"
    # ... but one output channel's columns beyond GEMM_AUTO_LIMIT (here 4 GiB) still go direct
    assert choose_algorithm((1, 16, 8192, 8192), (16, 8, 4, 4), 1, 4) == "direct"


def test_unbatched_and_empty_batch():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((3, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    out = convlab.conv_transpose2d(x, w, stride=2)
    np.testing.assert_array_equal(out, convlab.conv_transpose2d(x[None], w, stride=2)[0])
    empty = convlab.conv_transpose2d(
        np.zeros((0, 3, 4, 4), np.float32), w, stride=2, output_padding=1
    )
    assert empty.shape == (0, 2, 10, 10) and empty.dtype == np.float32
    assert convlab.conv_transpose1d(np.zeros((0, 3, 4)), w[..., 0]).shape == (0, 2, 6)
    assert convlab.conv_transpose3d(np.zeros((0, 3, 2, 2, 2)), w[..., None]).shape == (
        0,
        2,
        4,
        4,
        2,
    )


@pytest.mark.parametrize(
    "dtype,expected",
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.float16, np.float32),
        (np.int64, np.float64),
        (bool, np.float64),
    ],
)
def test_output_dtype_follows_input(dtype, expected):
    x = np.ones((1, 2, 3, 3), dtype=dtype)
    w = np.ones((2, 1, 2, 2), dtype=np.float64)  # the weight is cast to the input's dtype
    out = convlab.conv_transpose2d(x, w, np.ones(1))
    assert out.dtype == expected
    assert out[0, 0, 1, 1] == 2 * 4 + 1


def test_array_likes_and_noncontiguous_views():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((2, 6, 5, 8))
    x = base[:, ::2, :, ::2]  # strided view
    w = np.asfortranarray(rng.standard_normal((3, 2, 3, 3)))
    b = rng.standard_normal(4)[::2]
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    for algorithm in ("direct", "gemm"):
        expected = convlab.conv_transpose2d(
            x.copy(), w.copy(), b.copy(), stride=2, padding=1, algorithm=algorithm
        )
        np.testing.assert_array_equal(
            convlab.conv_transpose2d(x, w, b, stride=2, padding=1, algorithm=algorithm), expected
        )
    # nested lists
    out = convlab.conv_transpose1d([[[1, 2, 3]]], [[[1, 1]]], [0.5])
    np.testing.assert_array_equal(out, [[[1.5, 3.5, 5.5, 3.5]]])
    # a channels-last array transposed to channels-first (a common non-contiguous view)
    nhwc = rng.standard_normal((2, 4, 4, 3))
    np.testing.assert_allclose(
        convlab.conv_transpose2d(nhwc.transpose(0, 3, 1, 2), w, stride=2),
        convlab.conv_transpose2d(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)), w, stride=2),
    )


def test_nonfinite_values_propagate():
    x = np.ones((1, 1, 3, 3))
    x[0, 0, 1, 1] = np.nan
    out = convlab.conv_transpose2d(x, np.ones((1, 1, 2, 2)), stride=2)
    assert np.isnan(out[0, 0, 2:4, 2:4]).all()
    assert np.isnan(out).sum() == 4


# --- the adjoint identity: <conv2d(x), y> == <x, conv_transpose2d(y)> --------------------------------


@st.composite
def adjoint_problems(draw):
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 7))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 7))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return dict(
        x=rng.standard_normal((2, c_in, h, w)),
        w=rng.standard_normal((c_out, c_in // groups, kh, kw)),
        kwargs=dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups),
    )


@pytest.mark.kernels
@settings(max_examples=20, deadline=None)
@given(adjoint_problems(), st.integers(0, 2**32 - 1))
def test_adjoint_identity(p, seed):
    """conv_transpose2d is the adjoint of conv2d, given the output_size that restores x's size."""
    x, w, k = p["x"], p["w"], p["kwargs"]
    y_shape = convlab.conv2d(x, w, **k).shape
    y = np.random.default_rng(seed).standard_normal(y_shape)
    lhs = np.vdot(convlab.conv2d(x, w, **k), y)
    back = convlab.conv_transpose2d(y, w, **k, output_size=x.shape[2:])
    assert back.shape == x.shape
    rhs = np.vdot(x, back)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("nd", [1, 3])
def test_adjoint_identity_1d_3d(nd):
    rng = np.random.default_rng(nd)
    x = rng.standard_normal((2, 4) + (5,) * nd)
    w = rng.standard_normal((6, 2) + (3,) * nd)
    k = dict(stride=2, padding=1, dilation=1, groups=2)
    y = rng.standard_normal(CONV[nd](x, w, **k).shape)
    rhs = np.vdot(x, TRANSPOSE[nd](y, w, **k, output_size=x.shape[2:]))
    assert np.vdot(CONV[nd](x, w, **k), y) == pytest.approx(rhs, rel=1e-12)
    # and the naive forward conv agrees with convlab's here (the identity is not vacuous)
    np.testing.assert_allclose(conv_forward(x, w, **k), CONV[nd](x, w, **k), rtol=1e-12, atol=1e-12)


# --- output_size --------------------------------------------------------------------------------------


def test_output_size_forms_agree():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 3, 3, 3))
    expected = convlab.conv_transpose2d(x, w, stride=2, output_padding=(1, 0))
    for size in [(8, 7), [8, 7], np.array([8, 7]), (2, 3, 8, 7)]:
        np.testing.assert_array_equal(
            convlab.conv_transpose2d(x, w, stride=2, output_size=size), expected
        )
    np.testing.assert_array_equal(
        convlab.conv_transpose2d(x[0], w, stride=2, output_size=(3, 8, 7)), expected[0]
    )
    # an int applies to every dimension
    square = convlab.conv_transpose2d(x, w, stride=2, output_size=8)
    np.testing.assert_array_equal(
        square, convlab.conv_transpose2d(x, w, stride=2, output_padding=1)
    )


def test_output_size_beyond_stride_when_dilation_allows():
    """output_size accepts every output padding the functional form accepts (a < max(s, d))."""
    x, w = np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))
    out = convlab.conv_transpose2d(x, w, dilation=3, output_size=(8, 7))
    np.testing.assert_array_equal(
        out, convlab.conv_transpose2d(x, w, dilation=3, output_padding=(2, 1))
    )


# --- rejections: one row per rule ---------------------------------------------------------------------

X1, W1 = np.ones((1, 4, 5)), np.ones((4, 2, 3))
X2, W2 = np.ones((1, 4, 5, 5)), np.ones((4, 2, 3, 3))
X3, W3 = np.ones((1, 4, 3, 3, 3)), np.ones((4, 2, 2, 2, 2))
t1, t2, t3 = convlab.conv_transpose1d, convlab.conv_transpose2d, convlab.conv_transpose3d

BAD = [
    (
        "output_padding_ge_stride",
        t2,
        (X2, W2),
        dict(stride=2, output_padding=2),
        ValueError,
        r"output_padding \(2\) must be smaller than either stride \(2\) or dilation \(1\)",
    ),
    (
        "output_padding_stride1",
        t1,
        (X1, W1),
        dict(output_padding=1),
        ValueError,
        r"output_padding \(1\) must be smaller than either stride \(1\) or dilation \(1\)",
    ),
    (
        "output_padding_negative",
        t2,
        (X2, W2),
        dict(output_padding=-1),
        ValueError,
        r"output_padding must be non-negative, got -1",
    ),
    (
        "channels_mismatch",
        t2,
        (X2, np.ones((3, 2, 3, 3))),
        {},
        ValueError,
        r"input has 4 channels but weight.shape\[0\] is 3: .* \(C_in, C_out/groups, \*kernel\)",
    ),
    (
        "groups_not_dividing",
        t2,
        (np.ones((1, 3, 5, 5)), np.ones((3, 2, 3, 3))),
        dict(groups=2),
        ValueError,
        r"in_channels \(3\) must be divisible by groups \(2\)",
    ),
    (
        "groups_zero",
        t3,
        (X3, W3),
        dict(groups=0),
        ValueError,
        r"groups must be a positive int, got 0",
    ),
    ("groups_float", t2, (X2, W2), dict(groups=2.0), TypeError, r"groups must be an int, got 2.0"),
    ("stride_zero", t2, (X2, W2), dict(stride=0), ValueError, r"stride must be positive, got 0"),
    (
        "dilation_negative",
        t1,
        (X1, W1),
        dict(dilation=-1),
        ValueError,
        r"dilation must be positive, got -1",
    ),
    (
        "padding_negative",
        t2,
        (X2, W2),
        dict(padding=(0, -1)),
        ValueError,
        r"padding must be non-negative, got \(0, -1\)",
    ),
    (
        "padding_string",
        t2,
        (X2, W2),
        dict(padding="same"),
        ValueError,
        r"padding must be an int or a tuple of 2 ints for a transposed convolution .* got 'same'",
    ),
    (
        "stride_wrong_length",
        t3,
        (X3, W3),
        dict(stride=(1, 2)),
        ValueError,
        r"stride must be an int or a tuple of 3 ints .* got \(1, 2\) with 2 entries",
    ),
    (
        "non_positive_output",
        t2,
        (np.ones((1, 4, 2, 2)), W2),
        dict(padding=3),
        ValueError,
        r"transposed convolution output size .* = \(2-1\)\*1 - 2\*3 \+ 1\*\(3-1\) \+ 0 \+ 1 = -2 "
        r"is not positive",
    ),
    (
        "input_rank",
        t2,
        (np.ones((4, 5)), W2),
        {},
        ValueError,
        r"input must be 4-D or 3-D \(N, C_in, H, W\) or \(C_in, H, W\), got shape \(4, 5\)|"
        r"input must be 3-D or 4-D \(N, C_in, H, W\) or \(C_in, H, W\), got shape \(4, 5\)",
    ),
    (
        "weight_rank",
        t2,
        (X2, np.ones((4, 2, 3))),
        {},
        ValueError,
        r"weight must be 4-D \(C_in, C_out/groups, kH, kW\), got shape \(4, 2, 3\)",
    ),
    (
        "weight_rank_3d",
        t3,
        (X3, W2),
        {},
        ValueError,
        r"weight must be 5-D \(C_in, C_out/groups, kD, kH, kW\), got shape \(4, 2, 3, 3\)",
    ),
    (
        "weight_zero_size",
        t2,
        (X2, np.ones((4, 0, 3, 3))),
        {},
        ValueError,
        r"weight must not have a zero-size dimension, got shape \(4, 0, 3, 3\)",
    ),
    (
        "input_zero_spatial",
        t2,
        (np.ones((1, 4, 0, 5)), W2),
        {},
        ValueError,
        r"input must have non-empty spatial dimensions, got shape \(0, 5\)",
    ),
    (
        "bias_length",
        t2,
        (X2, W2, np.ones(3)),
        dict(groups=2),
        ValueError,
        r"bias must have shape \(C_out,\) = \(4,\) \(weight.shape\[1\] \* groups = 2 \* 2\), got \(3,\)",
    ),
    (
        "bias_rank",
        t1,
        (X1, W1, np.ones((2, 1))),
        {},
        ValueError,
        r"bias must have shape \(C_out,\) = \(2,\)",
    ),
    (
        "input_complex",
        t2,
        (X2 + 1j, W2),
        {},
        TypeError,
        r"input must be a real numeric array .* complex128",
    ),
    ("input_strings", t1, ([["a", "b"]], W1), {}, TypeError, r"input must be a real numeric array"),
    (
        "output_size_unreachable_big",
        t2,
        (X2, W2),
        dict(stride=2, output_size=(13, 11)),
        ValueError,
        r"output_size \(13, 11\) is unreachable: .* sizes 11 to 12, got 13",
    ),
    (
        "output_size_unreachable_small",
        t1,
        (X1, W1),
        dict(stride=2, output_size=10),
        ValueError,
        r"output_size \(10,\) is unreachable: .* sizes 11 to 12, got 10",
    ),
    (
        "output_size_non_positive",
        t2,
        (np.ones((1, 4, 1, 1)), W2),
        dict(padding=1, output_size=(0, 0)),
        ValueError,
        r"output_size \(0, 0\) is unreachable.*sizes 1 to 1, got 0",
    ),
    (
        "output_size_and_padding",
        t2,
        (X2, W2),
        dict(stride=2, output_padding=1, output_size=(12, 12)),
        ValueError,
        r"give either output_padding \(1\) or output_size \(\(12, 12\)\), not both",
    ),
    (
        "output_size_length",
        t2,
        (X2, W2),
        dict(output_size=(7, 7, 7)),
        ValueError,
        r"output_size must have 2 entries \(the spatial size\) or 4 \(the full output shape\), "
        r"got \(7, 7, 7\) with 3",
    ),
    (
        "output_size_full_mismatch",
        t2,
        (X2, W2),
        dict(output_size=(1, 3, 7, 7)),
        ValueError,
        r"output_size \(1, 3, 7, 7\) is a full shape whose leading entries \(1, 3\) do not match "
        r"the output's \(1, 2\)",
    ),
    (
        "output_size_type",
        t2,
        (X2, W2),
        dict(output_size="7x7"),
        TypeError,
        r"output_size must be an int or a sequence of ints, got '7x7'",
    ),
    (
        "output_size_float",
        t2,
        (X2, W2),
        dict(output_size=(7.0, 7.0)),
        TypeError,
        r"output_size must contain ints",
    ),
    (
        "algorithm",
        t2,
        (X2, W2),
        dict(algorithm="fft"),
        ValueError,
        r"algorithm must be one of 'auto', 'direct', 'gemm', got 'fft'",
    ),
]


@pytest.mark.parametrize(
    "func,args,kwargs,exc,match", [row[1:] for row in BAD], ids=[row[0] for row in BAD]
)
def test_rejects(func, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)


@pytest.mark.kernels
@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_split_between_threads(threads, dtype):
    """The GEMM form's product, split by columns (many pixels) or by rows (a small map with many
    output taps), with groups, batches and thread counts that do not divide the work evenly,
    agrees with the scatter definition."""
    import numba

    rng = np.random.default_rng(50 + threads)
    cases = [
        ((3, 4, 7, 9), (4, 3, 3, 3), 1, 2, 1),  # 189 columns > 27 rows: split by columns
        ((1, 6, 2, 3), (6, 5, 4, 4), 2, 2, 1),  # 6 columns < 80 rows: split by rows
        ((2, 6, 1, 1), (6, 7, 3, 2), 3, 1, 0),  # 2 columns, 42 rows, three groups
        ((1, 2, 5, 5), (2, 1, 1, 1), 1, 1, 0),  # 1 row
    ]
    before = numba.get_num_threads()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        for x_shape, w_shape, groups, stride, padding in cases:
            x = rng.standard_normal(x_shape).astype(dtype)
            w = rng.standard_normal(w_shape).astype(dtype)
            got = convlab.conv_transpose2d(
                x, w, stride=stride, padding=padding, groups=groups, algorithm="gemm"
            )
            want = conv_transpose_scatter(
                x.astype(np.float64),
                w.astype(np.float64),
                stride=stride,
                padding=padding,
                groups=groups,
            )
            np.testing.assert_allclose(got, want, **tol(dtype))
    finally:
        numba.set_num_threads(before)


# stride, padding, dilation, output padding, kernel: every way a stride phase of the GEMM form's
# fold can come out (convlab._kernels_transposed._fold_volume_phases): phases with no tap
# (stride above the kernel), several taps per phase, dilations sharing a factor with the stride,
# a padding that crops whole phase rows, an output padding that adds rows no tap reaches
PHASE_CASES = [
    (2, 1, 1, 0, 4),
    (2, 1, 1, 1, 3),
    (3, 0, 1, 2, 2),
    (4, 2, 1, 1, 3),
    (2, 3, 2, 1, 3),
    (3, 2, 3, 0, 4),
    (2, 4, 1, 0, 5),
    (5, 1, 2, 3, 1),
]


@pytest.mark.parametrize("min_taps", [None, 0])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("stride, padding, dilation, output_padding, k", PHASE_CASES)
def test_gemm_fold_by_stride_phases_matches_the_scatter(
    nd, stride, padding, dilation, output_padding, k, min_taps, monkeypatch
):
    """With convlab's rule for when the phase buffer is used (``min_taps=None``), and with the
    buffer forced on every layout (``PHASE_MIN_TAPS = 0``), phases with no tap included."""
    if min_taps is not None:
        monkeypatch.setattr("convlab._kernels_transposed.PHASE_MIN_TAPS", min_taps)
    rng = np.random.default_rng(stride * 100 + padding * 10 + k)
    size = (7, 6, 5)[:nd]
    x = rng.standard_normal((2, 4) + size)
    w = rng.standard_normal((4, 3) + (k,) * nd)
    b = rng.standard_normal(6)
    kw = dict(
        stride=stride, padding=padding, dilation=dilation, output_padding=output_padding, groups=2
    )
    naive = conv_transpose_scatter(x, w, b, **kw)
    out = getattr(convlab, f"conv_transpose{nd}d")(x, w, b, algorithm="gemm", **kw)
    np.testing.assert_allclose(out, naive, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("nd", [2, 3])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_gemm_fold_keeps_nonfinite_weights_to_the_outputs_they_reach(nd, bad):
    """An inf or NaN in the weight reaches, through the GEMM form's columns and the fold by
    stride phases, the outputs its tap reaches and no others: the same infs and NaNs as the
    direct scatter. (A fold that padded the columns' rows with zeros, to add them in longer
    runs, would turn inf * 0 into NaNs on the next row's first outputs; measured, it was not
    faster at 2 threads on the breadth layers, and it is not done.)"""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 4) + (5,) * nd)
    w = rng.standard_normal((4, 3) + (3,) * nd)
    # the last tap: its rows land one column on, next to the next row's first output (with no
    # padding to crop it)
    w[(1, 2) + (2,) * nd] = bad
    kw = dict(stride=2, padding=0)
    fn = getattr(convlab, f"conv_transpose{nd}d")
    gemm = fn(x, w, algorithm="gemm", **kw)
    direct = fn(x, w, algorithm="direct", **kw)
    np.testing.assert_array_equal(np.isnan(gemm), np.isnan(direct))
    np.testing.assert_array_equal(np.isinf(gemm), np.isinf(direct))
    finite = np.isfinite(direct)
    assert finite.any() and not finite.all()
    np.testing.assert_allclose(gemm[finite], direct[finite], rtol=1e-12, atol=1e-12)


def test_phase_taps_counts_the_fewest_taps_of_any_phase():
    from convlab._kernels_transposed import phase_taps

    assert phase_taps((1, 4, 4), (1, 2, 2), (1, 1, 1)) == 4  # two taps a phase across and down
    assert phase_taps((1, 3, 3), (1, 2, 2), (1, 1, 1)) == 1  # taps 0 and 2 in phase 0, 1 in 1
    assert phase_taps((5,), (2,), (1,)) == 2
    assert phase_taps((3,), (2,), (2,)) == 0  # dilation 2: every tap lands on even positions
    assert phase_taps((1, 1), (2, 2), (1, 1)) == 0  # a 1x1 kernel at stride 2
    assert phase_taps((3,), (2**31,), (1,)) == 0  # and no list of 2**31 phases is made


def test_phase_buffer_is_bounded_by_the_output():
    """A stride or padding far beyond the output would make the buffer of stride phases as big
    as the uncropped result: then there is none, and the fold adds with the stride instead."""
    from convlab._kernels_transposed import PHASE_LIMIT, PHASE_SLACK, phase_buffer_size

    one = (1, 1, 1)
    # 48 outputs after a padding of 1 read uncropped positions 1..48: 25 rows of each phase
    assert phase_buffer_size((1, 48, 48), (1, 2, 2), (0, 1, 1), (1, 4, 4), one) == (2 * 25) ** 2
    assert phase_buffer_size((1, 1, 5), (1, 1, 2**31), (0, 0, 2**31 - 1), (1, 1, 3), one) == 0
    assert phase_buffer_size((3, 8, 8), (2**31, 1, 1), (2**31 - 1, 0, 0), (2, 3, 3), one) == 0
    # every phase gets taps, but the padding crops all but 5 of a million uncropped columns
    assert phase_buffer_size((1, 1, 5), (1, 1, 2), (0, 0, 10**6), (1, 1, 4), one) == 0
    for out, stride, pad, kernel in [
        ((1, 30, 30), (1, 7, 7), (0, 6, 6), (1, 14, 14)),
        ((5, 9, 9), (3, 3, 3), (2, 2, 2), (6, 6, 6)),
    ]:
        size = phase_buffer_size(out, stride, pad, kernel, one)
        assert 0 < size <= PHASE_LIMIT * math.prod(out) + PHASE_SLACK
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((1, 2, 2, 3)), rng.standard_normal((2, 3, 3, 3))
    kw = dict(stride=(2**16, 2), padding=(2**15, 1))  # 3 of 65539 uncropped rows kept
    np.testing.assert_allclose(
        convlab.conv_transpose2d(x, w, algorithm="gemm", **kw),
        conv_transpose_scatter(x, w, **kw),
        rtol=1e-12,
        atol=1e-12,
    )


# --- strided, by output phases (convlab._phases) -----------------------------------------------------


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("stride, padding, dilation, output_padding, k", PHASE_CASES)
def test_auto_by_output_phases_matches_the_scatter(
    nd, stride, padding, dilation, output_padding, k, dtype
):
    """``"auto"`` computes a strided layer as one stride-1 convolution per output phase (forced
    here on these small layers): every layout of PHASE_CASES (phases with no tap, several taps, dilations that
    share a factor with the stride, crops of whole phase rows, output padding no tap reaches),
    with two groups, against the scatter definition."""
    from convlab import _phases, transposed

    if nd == 3 and k > 3:
        k = 3  # keep the 3-D cases small
    rng = np.random.default_rng(stride * 10 + k)
    size = (7, 6, 5)[:nd] if nd < 3 else (5, 6, 5)
    x = rng.standard_normal((2, 16) + size).astype(dtype)
    w = rng.standard_normal((16, 16) + (k,) * nd).astype(dtype)
    b = rng.standard_normal(32).astype(dtype)
    kw = dict(
        stride=stride, padding=padding, dilation=dilation, output_padding=output_padding, groups=2
    )
    if output_padding >= max(stride, dilation):
        return  # not a valid layer (output padding must be below the stride or the dilation)
    calls = []
    real = _phases.conv_transpose
    minimum = transposed.PHASES_MIN_OUTPUT, transposed.PHASES_MIN_WORK
    try:
        _phases.conv_transpose = lambda *a: calls.append(1) or real(*a)
        transposed.PHASES_MIN_OUTPUT = transposed.PHASES_MIN_WORK = 1
        got = TRANSPOSE[nd](x, w, b, **kw)
    finally:
        _phases.conv_transpose = real
        transposed.PHASES_MIN_OUTPUT, transposed.PHASES_MIN_WORK = minimum
    assert calls and got.dtype == dtype
    want = conv_transpose_scatter(
        x.astype(np.float64),
        w.astype(np.float64),
        b.astype(np.float64),
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
        groups=2,
    )
    np.testing.assert_allclose(got, want, **tol(dtype))


def test_phases_rule():
    """By phases: strided layers with at least PHASES_MIN_OUTPUT output values, whatever their
    channels (depthwise and few-channel layers too); stride 1 (gathered) and tiny layers not."""
    from convlab.transposed import PHASES_MIN_OUTPUT, phases_apply

    assert phases_apply((1, 48, 48, 48), (2, 2))
    assert phases_apply((1, 144, 56, 56), (2, 2))  # a depthwise layer's input gradient
    assert phases_apply((1, 8, 1, 2048), (1, 2))
    assert not phases_apply((1, 48, 48, 48), (1, 1))
    assert not phases_apply((1, 3, 9, 9), (2, 2))
    assert phases_apply((1, 1, 1, PHASES_MIN_OUTPUT), (1, 2))
    assert not phases_apply((1, 1, 1, PHASES_MIN_OUTPUT - 1), (1, 2))
    # small maps (a training batch of 8x8 digits' features): the GEMM form, unless depthwise
    assert not phases_apply((32, 32, 8, 8), (2, 2))
    assert phases_apply((32, 32, 8, 8), (2, 2), depthwise=True)
    assert phases_apply((16, 1, 32, 32), (2, 2))
    # the work per image: positions times taps per phase (4x4 taps at stride 2: 4; 3x3: 2.25)
    assert phases_apply((16, 64, 14, 14), (2, 2), taps_per_phase=4)
    assert not phases_apply((16, 64, 14, 14), (2, 2), taps_per_phase=2.25)
    assert phases_apply((16, 64, 16, 16), (2, 2), taps_per_phase=2)
    assert not phases_apply((16, 64, 16, 16), (2, 2), taps_per_phase=1.99)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_phases_leave_nonfinite_weights_to_the_gemm_form(bad):
    """An inf or NaN weight: the gathers would multiply it by the zeros around the input too;
    ``"auto"`` then runs the GEMM form, whose infs and NaNs are the scatter's."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 8, 40, 40))
    w = rng.standard_normal((8, 3, 3, 3))
    w[1, 2, 2, 2] = bad
    got = convlab.conv_transpose2d(x, w, stride=2)
    direct = convlab.conv_transpose2d(x, w, stride=2, algorithm="direct")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(direct))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(direct))
    finite = np.isfinite(direct)
    assert finite.any() and not finite.all()


def test_phase_layout_tables():
    """The tables of a 4x4 kernel at stride 2, padding 1: four phases of 2x2 taps each, shifts
    -1..1 (three buffer rows and columns), every tap in exactly one phase."""
    from convlab import _phases

    plan, q, span, lo, tables, _, _ = _phases.phase_layout(
        (1, 8, 1, 6, 6), (8, 4, 1, 4, 4), (1, 2, 2), (0, 1, 1), (1, 1, 1), 1, (1, 12, 12), 4
    )
    taps, tap_off, boff, k_off, ap_off = tables
    assert q == (1, 6, 6) and span == (1, 3, 3) and lo == (0, -1, -1)
    assert list(np.diff(tap_off)) == [4, 4, 4, 4] and sorted(taps) == list(range(16))
    assert list(np.diff(k_off)) == [32] * 4 and ap_off[-1] == 4 * 8 * 4 * _phases.panel_rows(
        plan[0]
    )
    assert not taps.flags.writeable


# channels (C_in), multiplier, size, kernel, stride, padding, dilation, output padding
DEPTHWISE_PHASES = [
    (5, 1, (30, 31), 3, 2, 1, 1, 1),
    (4, 2, (12, 11), 4, 2, 1, 1, 0),
    (3, 1, (9, 10), (3, 5), (2, 3), (1, 2), (1, 2), (1, 0)),
    (6, 1, (8, 8), 5, 3, 2, 1, 2),
    (2, 3, (7, 6), 1, 2, 0, 1, 1),  # a 1x1 kernel: phases with no tap give the bias
    (1, 16, (10, 9), 4, 2, 1, 1, 0),  # one input channel, 16 filters
    (4, 1, (1, 40), (1, 4), (1, 2), (0, 1), 1, 0),  # a 1-D layer as 2-D
]


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", DEPTHWISE_PHASES, ids=[str(i) for i in range(7)])
def test_depthwise_by_phases_matches_the_scatter(case, dtype, monkeypatch):
    """One input channel per group, strided (a strided depthwise layer's input gradient): each
    output plane by phases (convlab._phases._depthwise_phases, forced on these small layers)."""
    from convlab import _phases, transposed

    ch, mult, size, k, stride, padding, dilation, output_padding = case
    t = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    rng = np.random.default_rng(ch * 7 + mult)
    x = rng.standard_normal((2, ch) + size).astype(dtype)
    w = rng.standard_normal((ch, mult) + t(k)).astype(dtype)
    b = rng.standard_normal(ch * mult).astype(dtype)
    kw = dict(
        stride=stride,
        padding=padding,
        dilation=dilation,
        output_padding=output_padding,
        groups=ch,
    )
    monkeypatch.setattr(transposed, "PHASES_MIN_OUTPUT", 1)
    calls = []
    real = _phases.depthwise_conv_transpose
    monkeypatch.setattr(_phases, "depthwise_conv_transpose", lambda *a: calls.append(1) or real(*a))
    got = convlab.conv_transpose2d(x, w, b, **kw)
    assert calls and got.dtype == dtype
    want = conv_transpose_scatter(
        x.astype(np.float64),
        w.astype(np.float64),
        b.astype(np.float64),
        stride=t(stride),
        padding=t(padding),
        dilation=t(dilation),
        output_padding=t(output_padding),
        groups=ch,
    )
    np.testing.assert_allclose(got, want, **tol(dtype))


# channels (C_in), multiplier, size, kernel, padding, dilation, output padding (stride 1)
DEPTHWISE_3D = [
    (4, 1, (6, 7, 8), 3, 1, 1, 0),
    (3, 2, (5, 6, 7), (3, 2, 3), (0, 1, 2), (2, 1, 1), (1, 0, 0)),
    (2, 1, (3, 9, 5), (2, 3, 1), (1, 2, 0), 1, 0),
    (1, 4, (4, 4, 4), 3, 2, 1, 0),  # padding d (k - 1): the plain convolution
]


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", DEPTHWISE_3D, ids=[str(i) for i in range(4)])
def test_3d_depthwise_stride_1_by_the_depthwise_kernel(case, dtype, monkeypatch):
    """One input channel per group at stride 1 (a depthwise conv3d's input gradient): the
    depthwise kernel on the flipped weight; an inf weight stays with the scatter."""
    from convlab import _kernels_depthwise

    ch, mult, size, k, padding, dilation, output_padding = case
    t = lambda v: (v,) * 3 if isinstance(v, int) else tuple(v)  # noqa: E731
    rng = np.random.default_rng(ch * 11 + mult)
    x = rng.standard_normal((2, ch) + size).astype(dtype)
    w = rng.standard_normal((ch, mult) + t(k)).astype(dtype)
    b = rng.standard_normal(ch * mult).astype(dtype)
    kw = dict(padding=padding, dilation=dilation, output_padding=output_padding, groups=ch)
    calls = []
    real = _kernels_depthwise._conv3d_depthwise
    monkeypatch.setattr(
        _kernels_depthwise, "_conv3d_depthwise", lambda *a: calls.append(1) or real(*a)
    )
    got = convlab.conv_transpose3d(x, w, b, **kw)
    assert calls and got.dtype == dtype
    want = conv_transpose_scatter(
        x,
        w,
        b,
        padding=t(padding),
        dilation=t(dilation),
        output_padding=t(output_padding),
        groups=ch,
    )
    np.testing.assert_allclose(got, want, **tol(dtype))
    w[0, 0, 0, 0, 0] = np.inf
    calls.clear()
    got = convlab.conv_transpose3d(x, w, b, **kw)
    assert not calls
    want = conv_transpose_scatter(
        x,
        w,
        b,
        padding=t(padding),
        dilation=t(dilation),
        output_padding=t(output_padding),
        groups=ch,
    )
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


@pytest.mark.kernels
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("depthwise", [False, True], ids=["dense", "depthwise"])
@pytest.mark.parametrize("stride", [1, 2])
def test_nonfinite_weight_gives_the_scatters_nan_pattern(nd, depthwise, stride):
    """An inf weight: NaN and inf exactly where the definition puts them (PyTorch gives no NaN
    here). The gathered forms (stride 1 as a convolution, strided by output phases) would
    also multiply the zeros around the input by it, so "auto" keeps the scatter."""
    rng = np.random.default_rng(nd * 10 + stride + 3 * depthwise)
    c_in, mult, groups = (4, 1, 4) if depthwise else (16, 16, 1)
    x = rng.standard_normal((1, c_in) + (5,) * nd)
    w = rng.standard_normal((c_in, mult) + (3,) * nd)
    w.flat[0] = np.inf
    f = {1: convlab.conv_transpose1d, 2: convlab.conv_transpose2d, 3: convlab.conv_transpose3d}
    got = f[nd](x, w, stride=stride, padding=1, groups=groups)
    want = conv_transpose_scatter(x, w, stride=stride, padding=1, groups=groups)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12)

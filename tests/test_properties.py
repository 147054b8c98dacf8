"""Property tests (hypothesis): shapes and cross-consistency between the convolution functions."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from naive import convnd

import convlab

SETTINGS = dict(max_examples=25, deadline=None)


@st.composite
def conv2d_problems(draw):
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 8))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 8))
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.standard_normal((n, c_in, h, w)),
        w=rng.standard_normal((c_out, c_in // groups, kh, kw)),
        b=rng.standard_normal(c_out),
        kwargs=dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups),
    )


@settings(**SETTINGS)
@given(conv2d_problems())
def test_conv2d_shape_and_naive(p):
    out = convlab.conv2d(p["x"], p["w"], p["b"], **p["kwargs"])
    k = p["kwargs"]
    expected_shape = convlab.conv_output_size(
        p["x"].shape[2:], p["w"].shape[2:], k["stride"], k["padding"], k["dilation"]
    )
    assert out.shape == (p["x"].shape[0], p["w"].shape[0]) + expected_shape
    np.testing.assert_allclose(out, convnd(p["x"], p["w"], p["b"], **k), rtol=1e-10, atol=1e-10)


@settings(**SETTINGS)
@given(conv2d_problems())
def test_algorithms_agree(p):
    direct = convlab.conv2d(p["x"], p["w"], p["b"], **p["kwargs"], algorithm="direct")
    im2col = convlab.conv2d(p["x"], p["w"], p["b"], **p["kwargs"], algorithm="im2col")
    np.testing.assert_allclose(im2col, direct, rtol=1e-10, atol=1e-10)


@settings(**SETTINGS)
@given(conv2d_problems())
def test_grouped_equals_concatenated_per_group_convs(p):
    g = p["kwargs"]["groups"]
    kwargs = {k: v for k, v in p["kwargs"].items() if k != "groups"}
    xs = np.split(p["x"], g, axis=1)
    ws = np.split(p["w"], g, axis=0)
    bs = np.split(p["b"], g)
    parts = [convlab.conv2d(xi, wi, bi, **kwargs) for xi, wi, bi in zip(xs, ws, bs, strict=True)]
    np.testing.assert_allclose(
        convlab.conv2d(p["x"], p["w"], p["b"], **p["kwargs"]),
        np.concatenate(parts, axis=1),
        rtol=1e-12,
        atol=1e-12,
    )


@settings(**SETTINGS)
@given(conv2d_problems())
def test_conv1d_is_conv2d_with_height_one(p):
    x = p["x"][:, :, :1, :]
    w = p["w"][:, :, :1, :]
    k = p["kwargs"]
    out1 = convlab.conv1d(
        x[:, :, 0],
        w[:, :, 0],
        p["b"],
        stride=k["stride"][1],
        padding=k["padding"][1],
        dilation=k["dilation"][1],
        groups=k["groups"],
    )
    out2 = convlab.conv2d(
        x,
        w,
        p["b"],
        stride=(1, k["stride"][1]),
        padding=(0, k["padding"][1]),
        dilation=(1, k["dilation"][1]),
        groups=k["groups"],
    )
    np.testing.assert_array_equal(out1, out2[:, :, 0])


@settings(**SETTINGS)
@given(conv2d_problems())
def test_conv3d_with_depth_one_is_conv2d(p):
    k = p["kwargs"]
    out3 = convlab.conv3d(
        p["x"][:, :, None],
        p["w"][:, :, None],
        p["b"],
        stride=(1,) + k["stride"],
        padding=(0,) + k["padding"],
        dilation=(1,) + k["dilation"],
        groups=k["groups"],
    )
    np.testing.assert_allclose(
        out3[:, :, 0], convlab.conv2d(p["x"], p["w"], p["b"], **k), rtol=1e-12, atol=1e-12
    )


@settings(**SETTINGS)
@given(conv2d_problems())
def test_im2col_matmul_is_conv2d(p):
    if p["kwargs"]["groups"] != 1:
        return
    k = dict(p["kwargs"])
    del k["groups"]
    cols = convlab.im2col(p["x"], p["w"].shape[2:], **k)
    out = convlab.conv2d(p["x"], p["w"], **k)
    np.testing.assert_allclose(
        np.matmul(p["w"].reshape(p["w"].shape[0], -1), cols).reshape(out.shape),
        out,
        rtol=1e-10,
        atol=1e-10,
    )


@settings(**SETTINGS)
@given(conv2d_problems())
def test_col2im_is_adjoint_of_im2col(p):
    """<im2col(x), c> == <x, col2im(c)> for every x and c: col2im is im2col's transpose."""
    k = dict(p["kwargs"])
    del k["groups"]
    ks = p["w"].shape[2:]
    x = p["x"]
    cols = convlab.im2col(x, ks, **k)
    c = np.random.default_rng(0).standard_normal(cols.shape)
    lhs = np.vdot(cols, c)
    rhs = np.vdot(x, convlab.col2im(c, x.shape[2:], ks, **k))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@settings(**SETTINGS)
@given(
    st.integers(1, 12),
    st.integers(1, 5),
    st.integers(0, 3),
    st.integers(1, 4),
    st.integers(1, 3),
    st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
)
def test_padding_modes_against_naive(length, k, p, s, d, mode):
    if (
        d * (k - 1) + 1 > length + 2 * p
        or (mode == "reflect" and p >= length)
        or (mode == "circular" and p > length)
    ):
        return
    rng = np.random.default_rng(length * 100 + k)
    x = rng.standard_normal((1, 2, length))
    w = rng.standard_normal((3, 2, k))
    out = convlab.conv1d(x, w, stride=s, padding=p, dilation=d, padding_mode=mode)
    np.testing.assert_allclose(
        out,
        convnd(x, w, stride=s, padding=p, dilation=d, padding_mode=mode),
        rtol=1e-12,
        atol=1e-12,
    )

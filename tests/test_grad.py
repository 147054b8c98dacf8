"""convlab.grad: recorded torch.nn.grad outputs, finite differences, the naive weight gradient, rejections."""

import json
import pathlib

import numpy as np
import pytest
import tolerances
from naive_transposed import conv_weight_grad
from tolerances import load_npz

import convlab
import convlab.grad

DATA = pathlib.Path(__file__).parent / "data"
CONV = {1: convlab.conv1d, 2: convlab.conv2d, 3: convlab.conv3d}


def tol(dtype):
    # a weight gradient sums over every output position and batch element: looser in float32
    return tolerances.tol(dtype, float32=1e-4)


REF = load_npz(DATA / "transposed_grad.npz")
CASE_NAMES = sorted({k.split("/")[0] for k in REF if "/" in k})


def _case(name):
    args = json.loads(str(REF[f"{name}/args"]))
    nd = args.pop("nd")
    return (
        nd,
        args,
        {k: REF[f"{name}/{k}"] for k in ("x", "w", "grad_output", "grad_input", "grad_weight")},
    )


def test_import_forms():
    import convlab.grad as module

    assert convlab.grad is module
    assert "grad" in convlab.__all__
    for nd in (1, 2, 3):
        assert callable(getattr(module, f"conv{nd}d_input")) and callable(
            getattr(module, f"conv{nd}d_weight")
        )
        assert "transposed convolution" in getattr(module, f"conv{nd}d_input").__doc__


@pytest.mark.kernels
@pytest.mark.parametrize("name", CASE_NAMES)
def test_input_grad_matches_torch(name):
    nd, args, a = _case(name)
    out = getattr(convlab.grad, f"conv{nd}d_input")(a["x"].shape, a["w"], a["grad_output"], **args)
    assert out.dtype == a["x"].dtype and out.shape == a["x"].shape
    np.testing.assert_allclose(out, a["grad_input"], **tol(a["x"].dtype))


@pytest.mark.kernels
@pytest.mark.parametrize("name", CASE_NAMES)
def test_weight_grad_matches_torch(name):
    nd, args, a = _case(name)
    out = getattr(convlab.grad, f"conv{nd}d_weight")(a["x"], a["w"].shape, a["grad_output"], **args)
    assert out.dtype == a["x"].dtype and out.shape == a["w"].shape
    np.testing.assert_allclose(out, a["grad_weight"], **tol(a["x"].dtype))


@pytest.mark.parametrize("name", [n for n in CASE_NAMES if REF[f"{n}/x"].size <= 300])
def test_naive_weight_grad_matches_torch(name):
    nd, args, a = _case(name)
    expected = conv_weight_grad(a["x"], a["w"].shape, a["grad_output"], **args)
    np.testing.assert_allclose(expected, a["grad_weight"], **tol(a["x"].dtype))


def test_reference_file_covers_the_table():
    cases = [_case(name) for name in CASE_NAMES]
    assert {nd for nd, *_ in cases} == {1, 2, 3}
    assert any(args["groups"] > 1 for _, args, _ in cases)
    # some case has an input size the strided convolution does not use fully (output padding > 0)
    leftovers = [
        (
            a["x"].shape[2 + i]
            + 2 * np.broadcast_to(args["padding"], (nd,))[i]
            - np.broadcast_to(args["dilation"], (nd,))[i] * (a["w"].shape[2 + i] - 1)
            - 1
        )
        % np.broadcast_to(args["stride"], (nd,))[i]
        for nd, args, a in cases
        for i in range(nd)
    ]
    assert max(leftovers) > 0


# --- finite differences -------------------------------------------------------------------------------

FD_CASES = [
    (1, (2, 4, 9), (6, 2, 3), dict(stride=2, padding=1, dilation=2, groups=2)),
    (2, (2, 3, 6, 7), (4, 3, 3, 2), dict(stride=(2, 3), padding=(1, 0), dilation=1, groups=1)),
    (3, (1, 2, 4, 5, 4), (2, 1, 2, 3, 2), dict(stride=2, padding=1, dilation=(1, 1, 2), groups=2)),
]


@pytest.mark.parametrize("nd,x_shape,w_shape,kwargs", FD_CASES, ids=["1d", "2d", "3d"])
def test_finite_differences(nd, x_shape, w_shape, kwargs):
    """Central differences of L(x, w) = sum(g * conv(x, w)) match both gradients.

    L is linear in x and in w, so the central difference is exact up to rounding; a few random
    entries of each are probed.
    """
    rng = np.random.default_rng(nd)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    g = rng.standard_normal(CONV[nd](x, w, **kwargs).shape)

    def loss(x_, w_):
        return float(np.sum(g * CONV[nd](x_, w_, **kwargs)))

    grad_x = getattr(convlab.grad, f"conv{nd}d_input")(x.shape, w, g, **kwargs)
    grad_w = getattr(convlab.grad, f"conv{nd}d_weight")(x, w.shape, g, **kwargs)
    eps = 1e-3
    for _ in range(6):
        i = tuple(rng.integers(0, s) for s in x.shape)
        e = np.zeros_like(x)
        e[i] = eps
        assert (loss(x + e, w) - loss(x - e, w)) / (2 * eps) == pytest.approx(
            grad_x[i], rel=1e-7, abs=1e-9
        )
        j = tuple(rng.integers(0, s) for s in w.shape)
        e = np.zeros_like(w)
        e[j] = eps
        assert (loss(x, w + e) - loss(x, w - e)) / (2 * eps) == pytest.approx(
            grad_w[j], rel=1e-7, abs=1e-9
        )


def test_input_grad_is_transposed_convolution():
    rng = np.random.default_rng(7)
    w, g = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal((2, 4, 4, 4))
    # an 8x8 and a 9x9 input both give 4x4 at stride 2, padding 1; input_size decides
    for size, output_padding in ((8, 1), (7, 0)):
        got = convlab.grad.conv2d_input((2, 3, size, size), w, g, stride=2, padding=1)
        expected = convlab.conv_transpose2d(
            g, w, stride=2, padding=1, output_padding=output_padding
        )
        np.testing.assert_array_equal(got, expected)


def test_unbatched_and_empty_batch():
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((3, 5, 5)), rng.standard_normal((2, 3, 3, 3))
    g = rng.standard_normal((2, 3, 3))
    np.testing.assert_array_equal(
        convlab.grad.conv2d_input(x.shape, w, g),
        convlab.grad.conv2d_input((1,) + x.shape, w, g[None])[0],
    )
    np.testing.assert_array_equal(
        convlab.grad.conv2d_weight(x, w.shape, g),
        convlab.grad.conv2d_weight(x[None], w.shape, g[None]),
    )
    empty_x = np.zeros((0, 3, 5, 5), dtype=np.float32)
    empty_g = np.zeros((0, 2, 3, 3), dtype=np.float32)
    gi = convlab.grad.conv2d_input(empty_x.shape, w, empty_g)
    assert gi.shape == (0, 3, 5, 5) and gi.dtype == np.float32
    gw = convlab.grad.conv2d_weight(empty_x, w.shape, empty_g)
    assert gw.shape == w.shape and gw.dtype == np.float32 and not gw.any()


def test_dtypes_and_array_likes():
    out = convlab.grad.conv1d_weight([[[1, 2, 3, 4]]], [1, 1, 2], [[[1, 1, 1]]])
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[[6, 9]]])
    out32 = convlab.grad.conv1d_input((1, 1, 4), np.ones((1, 1, 2)), np.ones((1, 1, 3), np.float32))
    assert out32.dtype == np.float32
    np.testing.assert_array_equal(out32, [[[1, 2, 2, 1]]])
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 5, 6, 3)).transpose(0, 3, 1, 2)  # non-contiguous view
    g = rng.standard_normal((2, 2, 3, 5))
    np.testing.assert_allclose(
        convlab.grad.conv2d_weight(x, (2, 3, 3, 2), g),
        conv_weight_grad(x, (2, 3, 3, 2), g),
        rtol=1e-12,
        atol=1e-12,
    )


# --- rejections ---------------------------------------------------------------------------------------

W = np.ones((4, 2, 3, 3))
G = np.ones((1, 4, 3, 3))
X = np.ones((1, 2, 5, 5))
gi, gw = convlab.grad.conv2d_input, convlab.grad.conv2d_weight

BAD = [
    (
        "input_size_not_shape",
        gi,
        (5, W, G),
        {},
        TypeError,
        r"input_size must be a sequence of ints",
    ),
    (
        "input_size_length",
        gi,
        ((5, 5), W, G),
        {},
        ValueError,
        r"input_size must have 4 entries \(N, C_in, H, W\) matching grad_output's batch, got \(5, 5\)",
    ),
    (
        "input_size_channels",
        gi,
        ((1, 3, 5, 5), W, G),
        {},
        ValueError,
        r"input_size has 3 channels but weight.shape\[1\] \* groups = 2 \* 1 = 2",
    ),
    (
        "input_size_batch",
        gi,
        ((2, 2, 5, 5), W, G),
        {},
        ValueError,
        r"input_size has batch 2 but grad_output has batch 1",
    ),
    (
        "input_size_inconsistent",
        gi,
        ((1, 2, 7, 5), W, G),
        {},
        ValueError,
        r"grad_output has spatial size \(3, 3\) but a convolution of an input of spatial size "
        r"\(7, 5\) .* gives \(5, 3\)",
    ),
    (
        "input_grad_output_channels",
        gi,
        ((1, 2, 5, 5), W, np.ones((1, 3, 3, 3))),
        {},
        ValueError,
        r"grad_output has 3 channels but weight.shape\[0\] \(C_out\) is 4",
    ),
    (
        "input_groups",
        gi,
        ((1, 4, 5, 5), W, G),
        dict(groups=3),
        ValueError,
        r"out_channels \(4, weight.shape\[0\]\) must be divisible by groups \(3\)",
    ),
    (
        "input_weight_rank",
        gi,
        ((1, 2, 5, 5), np.ones((4, 2, 3)), G),
        {},
        ValueError,
        r"weight must be 4-D \(C_out, C_in/groups, kH, kW\)",
    ),
    (
        "input_grad_output_rank",
        gi,
        ((1, 2, 5, 5), W, np.ones((4, 3))),
        {},
        ValueError,
        r"grad_output must be 3-D or 4-D|grad_output must be 4-D or 3-D",
    ),
    (
        "input_padding_string",
        gi,
        ((1, 2, 5, 5), W, G),
        dict(padding="same"),
        TypeError,
        r"padding must be an int or a tuple of 2 ints, got 'same'",
    ),
    (
        "input_stride_zero",
        gi,
        ((1, 2, 5, 5), W, G),
        dict(stride=0),
        ValueError,
        r"stride must be positive, got 0",
    ),
    (
        "input_zero_spatial",
        gi,
        ((1, 2, 0, 5), W, G),
        {},
        ValueError,
        r"input_size must have non-empty spatial dimensions",
    ),
    (
        "weight_size_length",
        gw,
        (X, (4, 2, 3), G),
        {},
        ValueError,
        r"weight_size must have 4 entries \(C_out, C_in/groups, kH, kW\), got \(4, 2, 3\)",
    ),
    (
        "weight_size_zero",
        gw,
        (X, (4, 2, 0, 3), G),
        {},
        ValueError,
        r"weight_size must not have a zero entry, got \(4, 2, 0, 3\)",
    ),
    (
        "weight_size_channels",
        gw,
        (X, (4, 3, 3, 3), G),
        {},
        ValueError,
        r"input has 2 channels but weight_size\[1\] \* groups = 3 \* 1 = 3",
    ),
    (
        "weight_grad_output_channels",
        gw,
        (X, (2, 2, 3, 3), G),
        {},
        ValueError,
        r"grad_output has 4 channels but weight_size\[0\] \(C_out\) is 2",
    ),
    (
        "weight_batch",
        gw,
        (np.ones((2, 2, 5, 5)), (4, 2, 3, 3), G),
        {},
        ValueError,
        r"input has batch 2 but grad_output has batch 1",
    ),
    (
        "weight_batched_mismatch",
        gw,
        (X[0], (4, 2, 3, 3), G),
        {},
        ValueError,
        r"input and grad_output must both be batched or both unbatched",
    ),
    (
        "weight_inconsistent",
        gw,
        (X, (4, 2, 2, 2), G),
        {},
        ValueError,
        r"grad_output has spatial size \(3, 3\) but .* gives \(4, 4\)",
    ),
    (
        "weight_groups",
        gw,
        (X, (4, 1, 3, 3), G),
        dict(groups=3),
        ValueError,
        r"out_channels \(4, weight_size\[0\]\) must be divisible by groups \(3\)",
    ),
    (
        "weight_dilation_negative",
        gw,
        (X, (4, 2, 3, 3), G),
        dict(dilation=-1),
        ValueError,
        r"dilation must be positive, got -1",
    ),
    (
        "weight_input_complex",
        gw,
        (X + 0j, (4, 2, 3, 3), G),
        {},
        TypeError,
        r"input must be a real numeric array",
    ),
]


@pytest.mark.parametrize(
    "func,args,kwargs,exc,match", [row[1:] for row in BAD], ids=[row[0] for row in BAD]
)
def test_rejects(func, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        func(*args, **kwargs)


def test_deform_conv2d_gradient_is_reexported():
    """convlab.grad.deform_conv2d is the documented deformable gradient, and it is a gradient:
    with zero offsets and no mask, its input/weight parts equal the plain conv's."""
    import convlab.grad
    from convlab.deformable import deform_conv2d_grad

    assert convlab.grad.deform_conv2d is deform_conv2d_grad
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    offset = np.zeros((1, 2 * 9, 6, 6))
    g = rng.standard_normal((1, 3, 6, 6))
    grads = convlab.grad.deform_conv2d(g, x, offset, w, padding=1)
    np.testing.assert_allclose(
        grads.input, convlab.grad.conv2d_input(x.shape, w, g, padding=1), rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(
        grads.weight, convlab.grad.conv2d_weight(x, w.shape, g, padding=1), rtol=1e-10, atol=1e-10
    )

"""convlab's dtype rules (stated in ``convlab/_args.py`` and the package docstring), one test each.

References: the same call on the native float32/float64 array (a byte order or a conversion must
not change a single bit), or ``tests/naive.py`` in float64.
"""

import numpy as np
import pytest
from naive import convnd

import convlab
import convlab.grad

rng = np.random.default_rng(13)
X = rng.standard_normal((1, 2, 6, 6))
W = rng.standard_normal((3, 2, 3, 3))
B = rng.standard_normal(3)


# one call per public function that takes arrays: name -> f(x) with x the array under test, of
# the shape INPUTS gives (X by default)
INPUTS = {"conv1d": X[:, :, 0], "conv3d": X[:, :, None]}

CALLS = {
    "conv1d": lambda x: convlab.conv1d(x, W[:, :, 0], B),
    "conv2d": lambda x: convlab.conv2d(x, W, B, padding=1),
    "conv3d": lambda x: convlab.conv3d(x, W[:, :, None], B),
    "conv_transpose2d": lambda x: convlab.conv_transpose2d(x, W.transpose(1, 0, 2, 3), stride=2),
    "conv2d_weight": lambda x: convlab.grad.conv2d_weight(x, W.shape, np.ones((1, 3, 4, 4))),
    "deform_conv2d": lambda x: convlab.deform_conv2d(x, np.zeros((1, 18, 4, 4)), W, B),
    "depthwise_separable_conv2d": lambda x: convlab.depthwise_separable_conv2d(
        x, np.ones((2, 1, 3, 3)), np.ones((4, 2))
    ),
    "spatially_separable_conv2d": lambda x: convlab.spatially_separable_conv2d(
        x, np.ones(3), np.ones(3)
    ),
    "im2col": lambda x: convlab.im2col(x, 3),
}


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("order", [">", "<", "="])
@pytest.mark.parametrize("native", [np.float64, np.float32])
def test_any_byte_order_keeps_its_precision(name, order, native):
    """Big-endian float64 (FITS files, np.fromfile(..., '>f8')) used to be computed in float32."""
    x = INPUTS.get(name, X).astype(native)
    swapped = x.astype(np.dtype(native).newbyteorder(order))
    expected = CALLS[name](x)
    got = CALLS[name](swapped)
    assert got.dtype == np.dtype(native) and got.dtype.isnative
    np.testing.assert_array_equal(got, expected)


def test_extended_precision_is_rejected_not_rounded():
    x = X.astype(np.longdouble)
    if np.finfo(np.longdouble).bits <= 64:  # long double is float64 on this platform: lossless
        assert convlab.conv2d(x, W).dtype == np.float64
        return
    for arr, name in ((x, "input"), (W.astype(np.longdouble), "weight")):
        args = (arr, W) if name == "input" else (X, arr)
        with pytest.raises(TypeError, match=rf"{name} has dtype float\d+.*astype\(np.float64\)"):
            convlab.conv2d(*args)


def test_float16_is_computed_and_returned_in_float32():
    x16 = X.astype(np.float16)
    got = convlab.conv2d(x16, W.astype(np.float16))
    assert got.dtype == np.float32  # PyTorch would return float16: documented difference
    expected = convlab.conv2d(x16.astype(np.float32), W.astype(np.float16).astype(np.float32))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_integers_and_bool_are_computed_in_float64(dtype):
    x = (X > 0).astype(dtype) if dtype is np.bool_ else (X * 10).astype(dtype)
    w = (W > 0).astype(dtype) if dtype is np.bool_ else (W * 10).astype(dtype)
    got = convlab.conv2d(x, w)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, convnd(x.astype(np.float64), w.astype(np.float64)))


@pytest.mark.parametrize(
    ("x_dtype", "w_dtype"),
    [(np.float32, np.float64), (np.float64, np.float32), (np.int64, np.float32)],
)
def test_mixed_dtypes_follow_the_input(x_dtype, w_dtype):
    """PyTorch rejects mixed dtypes; convlab converts the weight and bias to the input's dtype."""
    x, w, b = X.astype(x_dtype), W.astype(w_dtype), B.astype(w_dtype)
    got = convlab.conv2d(x, w, b)
    computed = np.float64 if x_dtype is np.int64 else x_dtype
    assert got.dtype == computed
    expected = convlab.conv2d(x.astype(computed), w.astype(computed), b.astype(computed))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, object, "U3", "datetime64[s]"])
def test_other_kinds_are_type_errors(dtype):
    x = np.ones((1, 1, 3, 3)).astype(dtype)
    with pytest.raises(TypeError, match=r"input must be a real numeric array"):
        convlab.conv2d(x, np.ones((1, 1, 3, 3)))


class GradTensor:
    """Behaves like a torch.Tensor with requires_grad=True (torch is not a test dependency):
    NumPy's conversion fails with torch's RuntimeError, and .detach() gives a plain tensor."""

    def __init__(self, data, requires_grad=True):
        self.data = np.asarray(data)
        self.requires_grad = requires_grad

    def __array__(self, dtype=None, copy=None):
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy()"
            )
        return self.data if dtype is None else self.data.astype(dtype)

    def detach(self):
        return GradTensor(self.data, requires_grad=False)


@pytest.mark.parametrize("position", ["input", "weight", "bias"])
def test_a_tensor_that_requires_grad_is_asked_to_detach(position):
    args = {"input": X, "weight": W, "bias": B}
    args[position] = GradTensor(args[position])
    with pytest.raises(TypeError, match=rf"{position} is a tensor that requires grad.*detach\(\)"):
        convlab.conv2d(args["input"], args["weight"], args["bias"])
    args[position] = args[position].detach()  # what the message says to do
    np.testing.assert_array_equal(
        convlab.conv2d(args["input"], args["weight"], args["bias"]), convlab.conv2d(X, W, B)
    )


@pytest.mark.parametrize("name", sorted(CALLS))
def test_every_function_asks_to_detach(name):
    with pytest.raises(TypeError, match=r"requires grad.*detach"):
        CALLS[name](GradTensor(INPUTS.get(name, X)))


# PyTorch: "Only zero batch or zero channel inputs are supported" for an empty spatial dimension
@pytest.mark.parametrize(
    ("func", "x", "w"),
    [
        (convlab.conv1d, np.ones((1, 4, 0)), np.ones((4, 4, 1))),
        (convlab.conv2d, np.ones((1, 4, 0, 8)), np.ones((4, 4, 1, 1))),
        (convlab.conv2d, np.ones((4, 0, 8)), np.ones((4, 4, 1, 1))),  # unbatched: a batch of 1
        (convlab.conv2d, np.ones((1, 4, 0, 8)), np.ones((4, 1, 1, 1))),  # depthwise
        (convlab.conv3d, np.ones((1, 4, 0, 3, 3)), np.ones((4, 4, 1, 1, 1))),
    ],
)
def test_an_empty_spatial_dimension_is_pytorchs_error(func, x, w):
    groups = 4 if w.shape[1] == 1 else 1
    with pytest.raises(ValueError, match=r"Only zero batch or zero channel inputs are supported"):
        func(x, w, padding=1, groups=groups)
    # without padding the kernel does not fit (PyTorch's first check, too)
    with pytest.raises(ValueError, match=r"kernel extent .* is larger than the padded input"):
        func(x, w, groups=groups)


def test_an_empty_batch_with_an_empty_spatial_dimension_is_allowed():
    # PyTorch: F.conv2d(torch.ones(0, 4, 0, 8), torch.ones(4, 4, 1, 1), padding=1).shape
    assert convlab.conv2d(np.ones((0, 4, 0, 8)), np.ones((4, 4, 1, 1)), padding=1).shape == (
        0,
        4,
        2,
        10,
    )

"""conv_matrix: W' @ x == conv2d(x), W'^T @ y == conv_transpose2d(y), seed 001's matrix view."""

import numpy as np
import pytest
import scipy.sparse
from naive_transposed import conv_forward

import convlab

# (name, input_shape, weight_shape, kwargs)
CASES = [
    ("seed_4x4_k3", (4, 4), (3, 3), {}),
    ("single_channel_3d_shape", (1, 5, 6), (1, 1, 2, 3), {}),
    ("channels", (3, 6, 5), (4, 3, 3, 3), dict(padding=1)),
    ("stride2", (2, 7, 7), (3, 2, 3, 3), dict(stride=2)),
    (
        "stride_pad_dil",
        (2, 9, 8),
        (2, 2, 3, 2),
        dict(stride=(2, 1), padding=(2, 1), dilation=(2, 3)),
    ),
    ("groups", (4, 5, 5), (6, 2, 3, 3), dict(groups=2, padding=1)),
    ("depthwise", (3, 6, 6), (3, 1, 3, 3), dict(groups=3, stride=2, padding=1)),
    ("same_even_kernel", (2, 5, 6), (2, 2, 4, 2), dict(padding="same")),
    ("valid", (1, 4, 4), (1, 1, 4, 4), dict(padding="valid")),
    ("1x1", (5, 3, 4), (2, 5, 1, 1), {}),
]


def _problem(input_shape, weight_shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(input_shape), rng.standard_normal(weight_shape)


def _conv(x, w, kwargs):
    """conv2d on one image given as (C, H, W) or (H, W), with a 4-D or 2-D weight."""
    x3 = x if x.ndim == 3 else x[None]
    w4 = w if w.ndim == 4 else w[None, None]
    return convlab.conv2d(x3, w4, **kwargs), x3, w4


@pytest.mark.parametrize("name,input_shape,weight_shape,kwargs", CASES, ids=[c[0] for c in CASES])
def test_matrix_times_input_is_conv(name, input_shape, weight_shape, kwargs):
    x, w = _problem(input_shape, weight_shape)
    m = convlab.conv_matrix(w, input_shape, **kwargs)
    y, x3, w4 = _conv(x, w, kwargs)
    assert scipy.sparse.issparse(m) and m.format == "csr"
    assert m.shape == (y.size, x.size)
    np.testing.assert_allclose(m @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)
    # the stored entries are exactly one per (output, tap that lands inside the input)
    assert m.nnz <= y.size * w4.shape[1] * w4.shape[2] * w4.shape[3]
    # CSR built directly: the column indices really are sorted within each row, as claimed
    row_of = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    same_row = row_of[1:] == row_of[:-1]
    assert m.has_sorted_indices and np.all(np.diff(m.indices)[same_row] > 0)


@pytest.mark.parametrize(
    "name,input_shape,weight_shape,kwargs",
    [c for c in CASES if not isinstance(c[3].get("padding"), str)],
    ids=[c[0] for c in CASES if not isinstance(c[3].get("padding"), str)],
)
def test_transpose_is_conv_transpose(name, input_shape, weight_shape, kwargs):
    """W'^T @ y is the transposed convolution that restores the input size: the seed's X' = W'^T @ O'."""
    x, w = _problem(input_shape, weight_shape, seed=1)
    m = convlab.conv_matrix(w, input_shape, **kwargs)
    y, x3, w4 = _conv(x, w, kwargs)
    y = np.random.default_rng(2).standard_normal(y.shape)
    back = convlab.conv_transpose2d(y, w4, **kwargs, output_size=x3.shape[1:])
    np.testing.assert_allclose(m.T @ y.ravel(), back.ravel(), rtol=1e-12, atol=1e-12)


def test_seed001_matrix_view():
    """Seed 001: a 4x4 input and a 3x3 kernel give a 4 x 16 W'; W'^T (16 x 4) maps O' back to 4x4.

    With the seed's ramp and kernel, W'^T @ O' reproduces TensorFlow's conv2d_transpose result.
    """
    kernel = np.array([[-1, 2, -3], [4, -5, 6], [-7, 8, -9]], dtype=np.float32)
    x = np.arange(1, 17, dtype=np.float32).reshape(4, 4)
    m = convlab.conv_matrix(kernel, (4, 4))
    assert m.shape == (4, 16) and m.T.shape == (16, 4) and m.dtype == np.float32
    dense = m.toarray()
    # each row is the kernel laid into a 4x4 grid at the window's position, zeros elsewhere
    for row, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        grid = np.zeros((4, 4), dtype=np.float32)
        grid[i : i + 3, j : j + 3] = kernel
        np.testing.assert_array_equal(dense[row], grid.ravel())
    o = m @ x.ravel()
    np.testing.assert_array_equal(o, [-56, -61, -76, -81])
    np.testing.assert_array_equal(
        (m.T @ o).reshape(4, 4),
        [[56, -51, 46, 183], [-148, -35, 35, -123], [88, 35, -35, 63], [532, -41, 36, 729]],
    )


def test_explicit_zero_taps_are_kept():
    kernel = np.array([[0.0, 1.0], [2.0, 0.0]])
    m = convlab.conv_matrix(kernel, (3, 3))
    assert m.nnz == 4 * 4  # every tap of every window, zero or not
    assert np.count_nonzero(m.toarray()) == 4 * 2


def test_padding_drops_columns():
    """Zero padding has no column: border outputs read fewer input elements."""
    m = convlab.conv_matrix(np.ones((3, 3)), (4, 4), padding=1)
    per_row = np.diff(m.indptr).reshape(4, 4)
    np.testing.assert_array_equal(per_row, [[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]])


def test_large_input_is_vectorised_and_correct():
    """A 64x64 image with 8 -> 8 channels (about 2.4M entries) builds in one vectorised pass."""
    x, w = _problem((8, 64, 64), (8, 8, 3, 3), seed=3)
    m = convlab.conv_matrix(w.astype(np.float32), x.shape, padding=1)
    assert m.dtype == np.float32 and m.nnz == 8 * 8 * (62 * 62 * 9 + 4 * 62 * 6 + 4 * 4)
    y = convlab.conv2d(x.astype(np.float32), w.astype(np.float32), padding=1)
    np.testing.assert_allclose(m @ x.ravel().astype(np.float32), y.ravel(), rtol=1e-4, atol=1e-4)


def test_batch_by_matrix_product():
    x, w = _problem((3, 2, 5, 5), (4, 2, 3, 3), seed=4)
    m = convlab.conv_matrix(w, x.shape[1:], stride=2)
    y = convlab.conv2d(x, w, stride=2)
    np.testing.assert_allclose((m @ x.reshape(3, -1).T).T, y.reshape(3, -1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv_forward(x, w, stride=2), y, rtol=1e-12, atol=1e-12)


BAD = [
    (
        "weight_rank",
        (np.ones((2, 3, 3)), (3, 5, 5)),
        {},
        ValueError,
        r"weight must be 2-D or 4-D \(C_out, C_in/groups, kH, kW\) or a 2-D kernel \(kH, kW\), "
        r"got shape \(2, 3, 3\)",
    ),
    (
        "weight_zero",
        (np.ones((0, 3)), (5, 5)),
        {},
        ValueError,
        r"weight must not have a zero-size dimension",
    ),
    (
        "input_shape_batched",
        (np.ones((2, 3, 3, 3)), (1, 3, 5, 5)),
        {},
        ValueError,
        r"input_shape must be \(C_in, H, W\) or \(H, W\) for a single image "
        r"\(no batch dimension\), got \(1, 3, 5, 5\)",
    ),
    (
        "input_shape_int",
        (np.ones((3, 3)), 5),
        {},
        TypeError,
        r"input_shape must be a tuple \(C_in, H, W\) or \(H, W\), got 5",
    ),
    (
        "input_shape_zero",
        (np.ones((3, 3)), (0, 5)),
        {},
        ValueError,
        r"input_shape must be positive, got \(0, 5\)",
    ),
    (
        "channels",
        (np.ones((2, 3, 3, 3)), (2, 5, 5)),
        {},
        ValueError,
        r"input_shape has 2 channels but weight.shape\[1\] \* groups = 3 \* 1 = 3",
    ),
    (
        "kernel_2d_multichannel",
        (np.ones((3, 3)), (2, 5, 5)),
        {},
        ValueError,
        r"input_shape has 2 channels but weight.shape\[1\] \* groups = 1 \* 1 = 1",
    ),
    (
        "groups",
        (np.ones((3, 2, 3, 3)), (4, 5, 5)),
        dict(groups=2),
        ValueError,
        r"out_channels \(3, weight.shape\[0\]\) must be divisible by groups \(2\)",
    ),
    (
        "kernel_too_big",
        (np.ones((3, 3)), (2, 2)),
        {},
        ValueError,
        r"kernel extent d\*\(k-1\)\+1 = 1\*\(3-1\)\+1 = 3 is larger than the padded input size 2",
    ),
    (
        "stride_zero",
        (np.ones((3, 3)), (5, 5)),
        dict(stride=0),
        ValueError,
        r"stride must be positive, got 0",
    ),
    (
        "same_with_stride",
        (np.ones((3, 3)), (5, 5)),
        dict(stride=2, padding="same"),
        ValueError,
        r"padding='same' is only supported with stride 1",
    ),
]


@pytest.mark.parametrize(
    "args,kwargs,exc,match", [row[1:] for row in BAD], ids=[row[0] for row in BAD]
)
def test_rejects(args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        convlab.conv_matrix(*args, **kwargs)

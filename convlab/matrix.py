"""Convolution as a sparse matrix: the "matrix view" of seed 001 and of Dumoulin & Visin (2016).

A convolution is linear in its input, so for a fixed weight it is a matrix ``W'`` acting on the
flattened input: ``conv2d(x).ravel() == W' @ x.ravel()``. Row ``r`` of ``W'`` is one output
element and holds the kernel taps at the columns of the input elements that output reads; almost
every entry is zero. The transposed matrix ``W'^T`` maps an output-shaped array back to an
input-shaped one: that is the transposed convolution, hence its name. This module builds ``W'``
for teaching and testing; the convolutions themselves never materialise it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.sparse

from ._args import check_rank, float_array, ntuple, positive_int
from .shapes import IntOrTuple, conv_output_size, padding_pairs

__all__ = ["conv_matrix"]


def conv_matrix(
    weight: npt.ArrayLike,
    input_shape: Sequence[int],
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> scipy.sparse.csr_array:
    """The sparse matrix ``W'`` of a 2-D convolution of a single image.

    ``conv2d(x, weight, stride=s, padding=p, dilation=d, groups=g).ravel() == W' @ x.ravel()`` for
    every ``x`` of shape ``input_shape``, and ``W'.T @ y.ravel()`` is the transposed convolution
    ``conv_transpose2d(y, weight, stride=s, padding=p, dilation=d, groups=g)`` (with the
    ``output_padding`` that gives back ``input_shape``).

    Parameters
    ----------
    weight : array_like, shape (C_out, C_in / groups, kH, kW) or (kH, kW)
        A convolution weight, or a single 2-D kernel (one input and one output channel).
    input_shape : tuple of int
        ``(C_in, H, W)`` or ``(H, W)`` (one channel): the shape of **one** image, without a batch
        dimension. For a batch, apply the matrix to each image (``X.reshape(N, -1) @ W'.T``).
    stride, dilation : int or tuple of 2 ints, positive
    padding : int, tuple of 2 ints, ``"same"`` or ``"valid"``
        Zero padding: padded positions have no column, so they simply drop out of the sums.
    groups : int
        As in :func:`convlab.conv2d`.

    Returns
    -------
    scipy.sparse.csr_array, shape (C_out * H_out * W_out, C_in * H * W)
        Rows in the order of ``conv2d(x).ravel()`` (channel, row, column), columns in the order of
        ``x.ravel()``; the weight's dtype (float32 or float64). Entry
        ``[(oc*H_out + oh)*W_out + ow, (ci*H + ih)*W + iw]`` is ``weight[oc, ci', kh, kw]`` where
        ``ih = oh*s - p + kh*d``, ``iw = ow*s - p + kw*d`` (``ci'`` is ``ci`` within its group).
        Taps that are zero in ``weight`` are stored as explicit zeros, so the sparsity pattern
        shows which input elements each output reads.

    Raises
    ------
    ValueError, TypeError
        For a weight of the wrong rank, an ``input_shape`` of the wrong length or whose channels do
        not match ``weight.shape[1] * groups``, or any invalid stride/padding/dilation.

    Notes
    -----
    Built with vectorised NumPy: one array entry per (output channel, input channel, tap, output
    position), so the matrix has at most ``C_out * C_in/groups * kH * kW * H_out * W_out`` stored
    entries; memory grows with that count, which is why frameworks do not compute convolutions
    this way (seed 001).

    Examples
    --------
    The seed's example: a 3x3 kernel on a 4x4 input gives a 4 x 16 matrix with 9 taps per row.

    >>> import numpy as np
    >>> m = conv_matrix(np.arange(1.0, 10.0).reshape(3, 3), (4, 4))
    >>> m.shape, m.nnz
    ((4, 16), 36)
    >>> m.toarray()[0]
    array([1., 2., 3., 0., 4., 5., 6., 0., 7., 8., 9., 0., 0., 0., 0., 0.])
    """
    w = float_array(weight, "weight")
    check_rank(w, (2, 4), "weight", "(C_out, C_in/groups, kH, kW) or a 2-D kernel (kH, kW)")
    if w.ndim == 2:
        w = w[None, None]
    if 0 in w.shape:
        raise ValueError(f"weight must not have a zero-size dimension, got shape {w.shape}")
    groups = positive_int(groups, "groups")
    if isinstance(input_shape, (str, bytes)) or np.ndim(input_shape) != 1:
        raise TypeError(f"input_shape must be a tuple (C_in, H, W) or (H, W), got {input_shape!r}")
    if len(input_shape) not in (2, 3):
        raise ValueError(
            f"input_shape must be (C_in, H, W) or (H, W) for a single image (no batch dimension), "
            f"got {tuple(input_shape)}"
        )
    shape = ntuple(input_shape, len(input_shape), "input_shape")
    if len(shape) == 2:
        shape = (1,) + shape
    c_in, h, wd = shape
    c_out, c_per_group, kh_n, kw_n = w.shape
    if c_out % groups:
        raise ValueError(
            f"out_channels ({c_out}, weight.shape[0]) must be divisible by groups ({groups})"
        )
    if c_in != c_per_group * groups:
        raise ValueError(
            f"input_shape has {c_in} channels but weight.shape[1] * groups = {c_per_group} * {groups} "
            f"= {c_per_group * groups}"
        )
    stride = ntuple(stride, 2, "stride")
    dilation = ntuple(dilation, 2, "dilation")
    pairs = padding_pairs(padding, (kh_n, kw_n), stride, dilation)
    oh_n, ow_n = (
        conv_output_size(size + before + after, k, s, 0, d)
        for size, k, s, d, (before, after) in zip(
            (h, wd), (kh_n, kw_n), stride, dilation, pairs, strict=True
        )
    )

    # One entry per (oc, oh, ow, ci', kh, kw), by broadcasting index grids of shape
    # (C_out, H_out, W_out, C_in/g, kH, kW). In this order the rows come out sorted and, within a
    # row, the columns too (channel, then input row, then input column), so the CSR arrays are
    # built directly, without a COO sort.
    oc = np.arange(c_out).reshape(-1, 1, 1, 1, 1, 1)
    oh = np.arange(oh_n).reshape(1, -1, 1, 1, 1, 1)
    ow = np.arange(ow_n).reshape(1, 1, -1, 1, 1, 1)
    cil = np.arange(c_per_group).reshape(1, 1, 1, -1, 1, 1)
    kh = np.arange(kh_n).reshape(1, 1, 1, 1, -1, 1)
    kw = np.arange(kw_n).reshape(1, 1, 1, 1, 1, -1)
    ih = oh * stride[0] - pairs[0][0] + kh * dilation[0]
    iw = ow * stride[1] - pairs[1][0] + kw * dilation[1]
    ci = (oc // (c_out // groups)) * c_per_group + cil
    full = (c_out, oh_n, ow_n, c_per_group, kh_n, kw_n)
    inside = np.broadcast_to((ih >= 0) & (ih < h) & (iw >= 0) & (iw < wd), full)
    cols = np.broadcast_to((ci * h + ih) * wd + iw, full)[inside]
    data = np.broadcast_to(w[:, None, None], full)[inside]
    per_row = inside.reshape(c_out * oh_n * ow_n, -1).sum(axis=1)
    indptr = np.concatenate([[0], np.cumsum(per_row)])
    # each (row, col) pair occurs once: distinct taps of one window read distinct input elements.
    # Explicit zeros are kept on purpose (see Returns).
    index_dtype = np.int32 if max(cols.size, c_in * h * wd) < 2**31 else np.int64
    matrix = scipy.sparse.csr_array(
        (data, cols.astype(index_dtype), indptr.astype(index_dtype)),
        shape=(c_out * oh_n * ow_n, c_in * h * wd),
    )
    matrix.has_sorted_indices = True
    return matrix

"""Convolutions whose padding dwarfs both input and output, computed by index maps in NumPy.

PyTorch accepts a huge padding together with a huge stride or dilation (``padding=2**40,
stride=2**40`` on an 8x8 image is a valid 3x3 convolution, and so is ``dilation=2**40`` with the
same padding, whose outputs each see one tap of real data). convlab's fast kernels either work on
a padded copy of the input (direct, FFT, 3-D, the separable kernels, the weight gradient), on a
polyphase copy (depthwise), on an uncropped buffer (the direct transposed convolution), or do
index arithmetic that multiplies a padding-sized row offset by a row length (im2col): all of them
size their memory or their int64 products by the padded extent, which is sound for any layer a
network has, and absurd for these.

:func:`sparse_padding` tells the wrappers when a call is such a case; they then compute it here
instead, by one index map per spatial dimension: ``idx[o, k] = o*s + k*d - p_before``, with every
index outside the input sent to one extra zero element (or folded back into the input for the
reflect, replicate and circular modes, PyTorch's padding rules). The memory is the column matrix
of the output that is actually produced, ``C * prod(k) * prod(out)`` per image, never the padded
extent; every index is below :data:`convlab._args.INDEX_LIMIT` (checked by :mod:`convlab.shapes`
before), so the int64 arithmetic cannot overflow. Slower than the kernels, and only ever used
where they cannot run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ._args import Array

#: a padded copy may hold this many elements more than input + output, whatever its shape ...
_SLACK = 2**16
#: ... and otherwise at most this many times input + output before the index maps take over
_FACTOR = 4


def sparse_padding(
    spatial: Sequence[int], padded: Sequence[int], out_spatial: Sequence[int]
) -> bool:
    """Whether a padded extent ``prod(padded)`` is out of all proportion to input and output.

    ``spatial``, ``padded``, ``out_spatial`` are per-dimension sizes (Python ints). Every layer
    of a real network pads by a few elements, so its padded copy is about the input's size; the
    ones this is true for pad by far more than they read.
    """
    return math.prod(padded) > _FACTOR * (math.prod(spatial) + math.prod(out_spatial)) + _SLACK


def _index(
    size: int, out: int, kernel: int, stride: int, dilation: int, before: int, mode: str
) -> NDArray[np.int64]:
    """``idx[o, k]``: the input element output ``o``'s tap ``k`` reads, ``size`` for a zero."""
    i = (
        np.arange(out, dtype=np.int64)[:, None] * stride
        + np.arange(kernel, dtype=np.int64)[None, :] * dilation
        - before
    )
    if mode == "zeros":
        return np.where((i >= 0) & (i < size), i, size)
    # numpy types clip and mod (ufuncs) as returning Any
    idx: NDArray[np.int64]
    if mode == "replicate":
        idx = np.clip(i, 0, size - 1)
        return idx
    if mode == "circular":  # the caller checked padding <= size (PyTorch's rule)
        idx = np.mod(i, size)
        return idx
    # reflect, padding < size: -i before the start, 2(size-1) - i after the end
    i = np.where(i < 0, -i, i)
    return np.where(i >= size, 2 * (size - 1) - i, i)


def unfold(
    x: Array,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    pairs: Sequence[tuple[int, int]],
    out_spatial: Sequence[int],
    mode: str = "zeros",
) -> Array:
    """Columns ``(N, C, *kernel, *out)`` of ``x`` (N, C, *spatial): im2col by index maps."""
    nd = len(kernel)
    spatial = x.shape[2:]
    # one zero element past the end of every spatial dimension: the target of indices outside
    ext = np.zeros(x.shape[:2] + tuple(n + 1 for n in spatial), dtype=x.dtype)
    ext[(slice(None), slice(None)) + tuple(slice(0, n) for n in spatial)] = x
    index = []
    for j in range(nd):
        idx = _index(
            spatial[j], out_spatial[j], kernel[j], stride[j], dilation[j], pairs[j][0], mode
        )
        # (out_j, k_j) -> axes (nd + j) and j of a (k_0 .. k_{nd-1}, o_0 .. o_{nd-1}) grid
        shape = [1] * (2 * nd)
        shape[j], shape[nd + j] = kernel[j], out_spatial[j]
        index.append(idx.T.reshape(shape))
    return ext[(slice(None), slice(None)) + tuple(index)]


def conv(
    x: Array,
    w: Array,
    b: Array,
    stride: Sequence[int],
    dilation: Sequence[int],
    pairs: Sequence[tuple[int, int]],
    groups: int,
    out_shape: tuple[int, ...],
    mode: str = "zeros",
) -> Array:
    """``conv{1,2,3}d`` of the validated, unpadded ``x`` into a new array of ``out_shape``."""
    n_batch = x.shape[0]
    c_out = w.shape[0]
    out = np.empty(out_shape, dtype=x.dtype)
    o_g = c_out // groups
    positions = math.prod(out_shape[2:])
    w2 = w.reshape(groups, o_g, -1)
    for n in range(n_batch):
        cols = unfold(x[n : n + 1], w.shape[2:], stride, dilation, pairs, out_shape[2:], mode)
        cols = cols.reshape(groups, -1, positions)
        res = np.matmul(w2, cols).reshape((c_out,) + tuple(out_shape[2:]))
        out[n] = res + b.reshape((c_out,) + (1,) * (len(out_shape) - 2))
    return out


def weight_grad(
    x: Array,
    grad_out: Array,
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    padding: Sequence[int],
    groups: int,
) -> Array:
    """``grad_w`` (C_out, C_in/groups, *kernel): the sum over images of ``grad_out @ cols.T``."""
    n_batch, c_in = x.shape[:2]
    c_out = grad_out.shape[1]
    c_g, o_g = c_in // groups, c_out // groups
    out_spatial = grad_out.shape[2:]
    positions = math.prod(out_spatial)
    pairs = tuple((p, p) for p in padding)
    acc = np.zeros((groups, o_g, c_g * math.prod(kernel)), dtype=np.float64)
    for n in range(n_batch):
        cols = unfold(x[n : n + 1], kernel, stride, dilation, pairs, out_spatial)
        cols = cols.reshape(groups, -1, positions)
        go = grad_out[n].reshape(groups, o_g, positions)
        acc += np.matmul(go.astype(np.float64), cols.astype(np.float64).transpose(0, 2, 1))
    return acc.reshape((c_out, c_g) + tuple(kernel)).astype(x.dtype)


def fold(
    cols: Array,
    size: Sequence[int],
    kernel: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    padding: Sequence[int],
) -> Array:
    """``col2im``: add the columns ``(N, C*prod(k), L)`` back into ``(N, C, *size)``."""
    n_batch = cols.shape[0]
    nd = len(kernel)
    taps = math.prod(kernel)
    channels = cols.shape[1] // taps
    out_spatial = []
    for j in range(nd):
        extent = dilation[j] * (kernel[j] - 1) + 1
        out_spatial.append((size[j] + 2 * padding[j] - extent) // stride[j] + 1)
    flat = np.zeros((), dtype=np.int64)  # flat index into (*size + 1) of every (k, o)
    for j in range(nd):
        idx = _index(
            size[j], out_spatial[j], kernel[j], stride[j], dilation[j], padding[j], "zeros"
        )
        flat = flat[..., None, None] * (size[j] + 1) + idx.T  # axes ... (k_j, o_j)
    # reorder to (k_0 .. k_{nd-1}, o_0 .. o_{nd-1}), the order of cols' rows and columns
    order = [2 * j for j in range(nd)] + [2 * j + 1 for j in range(nd)]
    flat = flat.transpose(order).reshape(-1)
    plane = math.prod(s + 1 for s in size)
    out = np.zeros((n_batch, channels, plane), dtype=cols.dtype)
    src = cols.reshape(n_batch, channels, -1)
    for n in range(n_batch):
        for c in range(channels):
            np.add.at(out[n, c], flat, src[n, c])
    out = out.reshape((n_batch, channels) + tuple(s + 1 for s in size))
    return np.ascontiguousarray(out[(slice(None), slice(None)) + tuple(slice(0, s) for s in size)])

"""Numba kernels of :mod:`convlab.nn`'s layers that are not convolutions: max pooling and ReLU.

ReLU (:func:`relu`, :func:`relu_backward`): one parallel pass each, in blocks of the flat
array. PyTorch's rule: ``0 where x < 0, else x`` (NaN and -0.0 pass through), and the gradient
passes where the output is not ``<= 0`` (so through a NaN). NumPy's ``np.where(x > 0, x, 0)``
with a boolean mask, which it replaced, took 11 ms forward and backward on 8 x 64 x 56x56
(PyTorch 0.3 ms) and gave 0 for NaN.

Max pooling: the window maxima with their winners, and the gradient sent back to the winners.

Forward (:func:`max_pool2d`): each thread takes whole planes (image, channel). For every output
row it runs the window's taps in row-major order and, for each tap, one pass along the row of
outputs, keeping the best value and where it is in the output row itself and in the row of
winners: the pass is a compare and a select per output, which LLVM vectorises, where a loop
over each output's taps would not (a handful of taps, each behind a branch). A tap replaces the
best value when it is larger or NaN, or when it is the window's first tap inside the input:
PyTorch's CPU kernel's rule (padded taps are skipped, not ``-inf`` values; ties keep the first;
a NaN wins, and of several NaNs the last). Winners are flat indices ``row * W + column`` into
the plane of the unpadded input, as ``torch.nn.functional.max_pool2d(..., return_indices=True)``
gives them.

Backward (:func:`max_pool2d_backward`): per plane, each output's gradient added to its winner,
outputs in order, so overlapping windows that share a winner sum in the same order on any
number of threads.
"""

import numpy as np
from numba import njit, prange

from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS, parallel_launch


def max_pool2d(x, kernel, stride, padding, dilation, out_size):
    """``(out, winners)`` of a max pooling of ``x`` (N, C, H, W), C-contiguous, validated by
    :class:`convlab.nn.MaxPool2d` (every window holds at least one input value)."""
    n, c = x.shape[:2]
    out = np.empty((n, c) + tuple(out_size), dtype=x.dtype)
    winners = np.empty(out.shape, dtype=np.int64)
    if out.size:
        with parallel_launch():
            _max_pool2d(x, out, winners, *kernel, *stride, *padding, *dilation)
    return out, winners


def max_pool2d_backward(go, winners, input_shape):
    """The input gradient (``input_shape``, ``go``'s dtype): ``go`` added at the winners."""
    gx = np.zeros(tuple(input_shape), dtype=go.dtype)
    if go.size:
        with parallel_launch():
            _max_pool2d_backward(np.ascontiguousarray(go), winners, gx)
    return gx


@njit(**NJIT_PARALLEL_OPTIONS)
def _max_pool2d(x, out, winners, kh, kw, sh, sw, ph, pw, dh, dw):
    n_batch, channels, h, w = x.shape
    oh_n, ow_n = out.shape[2], out.shape[3]
    xf = x.reshape(n_batch * channels, h * w)
    of = out.reshape(n_batch * channels, oh_n * ow_n)
    wf = winners.reshape(n_batch * channels, oh_n * ow_n)
    # per tap column e: its input column of output column 0, and the output columns whose tap
    # reads inside the row, 0 <= j * sw + col0 < w (worked out once: on 8x8 planes these
    # divisions in the row loop were most of the time)
    col0 = np.empty(kw, dtype=np.int64)
    lo = np.empty(kw, dtype=np.int64)
    hi = np.empty(kw, dtype=np.int64)
    for e in range(kw):
        col0[e] = e * dw - pw
        lo[e] = min(ow_n, max(0, -(col0[e] // sw)))
        hi[e] = max(lo[e], min(ow_n, -((col0[e] - w) // sw)))
    for plane in prange(n_batch * channels):
        for i in range(oh_n):
            o0 = i * ow_n
            for j in range(ow_n):
                wf[plane, o0 + j] = -1  # no tap yet
            for a in range(kh):
                r = i * sh - ph + a * dh
                if r < 0 or r >= h:
                    continue
                for e in range(kw):
                    _tap(xf, of, wf, plane, r * w + col0[e], sw, o0, lo[e], hi[e])


@njit(inline="always", **NJIT_OPTIONS)
def _tap(xf, best, where, plane, s0, sw, o0, lo, hi):
    """One tap for outputs ``lo <= j < hi`` of a row of ``plane``: input ``xf[plane, s0 + j *
    sw]`` replaces the best value (``best[plane, o0 + j]``, found at ``where[plane, o0 + j]``)
    when it is the window's first tap, larger, or NaN. Written as selects (no branch), so that
    the loop vectorises."""
    src = xf[plane]
    bst = best[plane]
    whr = where[plane]
    step = np.uint64(sw)
    first = np.uint64(s0 + lo * sw)
    o = np.uint64(o0 + lo)
    for t in range(np.uint64(max(0, hi - lo))):
        k = first + t * step
        v = src[k]
        b = bst[o + t]
        p = whr[o + t]
        take = (p < 0) | (v > b) | (v != v)
        bst[o + t] = v if take else b
        whr[o + t] = np.int64(k) if take else p


@njit(**NJIT_PARALLEL_OPTIONS)
def _max_pool2d_backward(go, winners, gx):
    n_batch, channels = go.shape[0], go.shape[1]
    positions = go.shape[2] * go.shape[3]
    gf = go.reshape(n_batch * channels, positions)
    wf = winners.reshape(n_batch * channels, positions)
    xf = gx.reshape(n_batch * channels, gx.shape[2] * gx.shape[3])
    for plane in prange(n_batch * channels):
        dst = xf[plane]
        src = gf[plane]
        idx = wf[plane]
        for q in range(np.uint64(positions)):
            dst[np.uint64(idx[q])] += src[q]


#: elements per block of the ReLU kernels' parallel loop
RELU_BLOCK = 2**14


def relu(x):
    """``(out, passes)``: ``out`` = float ``x`` with its negative values 0 (a new array),
    ``passes`` where the gradient goes through (``out`` not ``<= 0``), as booleans."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    passes = np.empty(x.shape, dtype=np.bool_)
    if x.size:
        with parallel_launch():
            _relu(x.reshape(-1), out.reshape(-1), passes.reshape(-1))
    return out, passes


def relu_backward(go, passes):
    """``go`` where ``passes``, 0 elsewhere (a new array of ``go``'s dtype)."""
    go = np.ascontiguousarray(go)
    gx = np.empty_like(go)
    if go.size:
        with parallel_launch():
            _relu_backward(go.reshape(-1), passes.reshape(-1), gx.reshape(-1))
    return gx


@njit(**NJIT_PARALLEL_OPTIONS)
def _relu(x, out, passes):
    n = x.shape[0]
    for blk in prange((n + RELU_BLOCK - 1) // RELU_BLOCK):
        _relu_run(x, out, passes, blk * RELU_BLOCK, min(n, (blk + 1) * RELU_BLOCK))


@njit(**NJIT_OPTIONS)
def _relu_run(x, out, passes, start, stop):
    """The elements ``start <= i < stop`` (unsigned indices: the loop vectorises)."""
    zero = x.dtype.type(0)
    for i in range(np.uint64(start), np.uint64(stop)):
        v = x[i]
        o = zero if v < zero else v
        out[i] = o
        passes[i] = not o <= zero


@njit(**NJIT_PARALLEL_OPTIONS)
def _relu_backward(go, passes, gx):
    n = go.shape[0]
    for blk in prange((n + RELU_BLOCK - 1) // RELU_BLOCK):
        _relu_backward_run(go, passes, gx, blk * RELU_BLOCK, min(n, (blk + 1) * RELU_BLOCK))


@njit(**NJIT_OPTIONS)
def _relu_backward_run(go, passes, gx, start, stop):
    zero = go.dtype.type(0)
    for i in range(np.uint64(start), np.uint64(stop)):
        gx[i] = go[i] if passes[i] else zero

"""The weight gradient (1-, 2- and 3-D) by blocked im2col + GEMM, and the stride-1 transposed
convolution as the convolution it is the adjoint of.

The weight gradient is a sum over output positions that one matrix product per block of
positions computes. Each thread builds the columns of its blocks of positions (:func:`_columns`:
row ``((c * KD + kd) * KH + kh) * KW + kw``, one column per output position, zero padding written
as it reads, so the input is never padded) and multiplies them with single-threaded BLAS
(:func:`convlab._blas.gemm_call`) into the gradient or into a partial sum. The convolutions
themselves build no columns: :mod:`convlab._implicit`.

The work is cut by the layer's shapes only, never by the thread count: the blocks of positions,
the parts of the input channels and the ranges of blocks that have their own partial sum are fixed
by :func:`weight_grad_plan`, and the threads take whole units of that fixed cut (thread ``t`` of
``T`` the units ``[U t / T, U (t + 1) / T)``). Every number is therefore computed by the same BLAS
calls on the same operands whichever thread runs them, and partial sums are added in a fixed
order: the results are the same bits on any number of threads.

1-D and 2-D layers are 3-D layers with depth (and height) 1: ``x`` is always viewed as
``(N, C, D, H, W)``.
"""

import math

import numba
import numpy as np
from numba import njit, prange

from . import _implicit
from ._blas import blas_gemm, gemm_call, one_blas_thread
from ._implicit import _as3d
from ._kernels import _add_run, _im2col_block, _zero_run
from ._winograd import workspace
from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS, parallel_launch

#: bytes of columns a thread works on at a time: inside a core's L2, so the GEMM reads the
#: columns the column builder has just written
BLOCK_BYTES = 2**19
#: ... but never fewer positions per block than this (a product with a shorter sum dimension
#: runs far from BLAS's peak), unless an image has fewer
MIN_BLOCK = 256
#: the weight gradient's work is cut into about this many units (parts of the input channels x
#: ranges of position blocks): 12 splits evenly over 1, 2, 3, 4 and 6 threads
WGRAD_UNITS = 12
#: ... and a part of the input channels keeps at least this many rows of columns (the width of
#: the gradient block one product writes; thinner products run far from BLAS's peak)
WGRAD_MIN_ROWS = 128
#: the weight gradient's partial sums (one per range of blocks after the first) take at most
#: this many bytes; beyond it the work is cut by input channels only
WGRAD_PARTIAL_BYTES = 2**24


@njit(**NJIT_OPTIONS)
def _columns(x, n, c0, c1, cols, ld, kernel, stride, dilation, pad, out_hw, q0, q1):
    """Columns ``q0 <= q < q1`` of image ``n`` for the input channels ``c0 <= c < c1``.

    x: (N, C, D, H, W), C-contiguous and unpadded; ``kernel``, ``stride``, ``dilation``, ``pad``
    (the zero padding before the input) are (depth, height, width) triples; ``out_hw`` is
    ``(OH, OW)``. Position ``q = (od * OH + oh) * OW + ow``; row ``r = ((c - c0) * KD + kd) * KH *
    KW + kh * KW + kw`` starts at ``cols[r * ld]`` and its element ``q - q0`` is input ``(od * sd +
    kd * dd - pd, oh * sh + kh * dh - ph, ow * sw + kw * dw - pw)`` of channel ``c``, or 0 outside
    the input. Each depth slice of the block is one call of conv2d's
    :func:`convlab._kernels._im2col_block` on the input plane it reads (or zeros, for a slice in
    the depth padding); with depth 1 that is a single call for the whole block.
    """
    n_batch, channels, d_in, h_in, w_in = x.shape
    kd_n, kh_n, kw_n = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    pd, ph, pw = pad
    oh_n, ow_n = out_hw
    x4 = x.reshape(n_batch, channels * d_in, h_in, w_in)
    if kd_n == 1 and d_in == 1 and pd == 0:
        _im2col_block(x4, n, c0, c1, cols, ld, kh_n, kw_n, sh, sw, dh, dw, ph, pw, ow_n, q0, q1)
        return
    plane = oh_n * ow_n
    taps2 = kh_n * kw_n
    for od in range(q0 // plane, (q1 - 1) // plane + 1):
        a = max(q0, od * plane)
        b = min(q1, (od + 1) * plane)
        for c in range(c0, c1):
            for kd in range(kd_n):
                i_d = od * sd + kd * dd - pd
                start = ((c - c0) * kd_n + kd) * taps2 * ld + (a - q0)
                if i_d < 0 or i_d >= d_in:
                    for r in range(taps2):
                        _zero_run(cols, start + r * ld, start + r * ld + (b - a))
                    continue
                _im2col_block(
                    x4,
                    n,
                    c * d_in + i_d,
                    c * d_in + i_d + 1,
                    cols[start:],
                    ld,
                    kh_n,
                    kw_n,
                    sh,
                    sw,
                    dh,
                    dw,
                    ph,
                    pw,
                    ow_n,
                    a - od * plane,
                    b - od * plane,
                )


@njit(**NJIT_PARALLEL_OPTIONS)
def _weight_grad(
    gemm,
    x,
    go,
    gw,
    base,
    transposed,
    partial,
    kernel,
    stride,
    dilation,
    pad,
    groups,
    blocks,
    c_parts,
    r_parts,
    cols_buf,
):
    """The weight gradient ``gw[g] (C_out/g x K) = sum over blocks of go_block @ cols_block^T``.

    gemm: BLAS ``sgemm``/``dgemm`` (the caller holds BLAS to one thread); x: (N, C_in, D, H, W)
    unpadded; go: (N, C_out, OD, OH, OW); gw: (C_out, C_in/groups * KD*KH*KW), overwritten;
    base: ``gw`` itself, or with ``transposed`` a (C_in/groups * KD*KH*KW, C_out) scratch;
    partial: (r_parts - 1, gw.size) scratch, laid out as ``base``. Each image's positions are cut
    into ``blocks`` equal blocks; the ``N * blocks`` blocks into ``r_parts`` ranges, and each
    group's input channels into ``c_parts`` parts. Unit ``(part, range)`` sums its range's
    products for its channels, for every group: range 0 into ``base``, range ``r`` into
    ``partial[r - 1]``. The ranges' sums are then added in order into ``gw``. In column-major BLAS
    terms, with ``k`` the part's rows of columns, either ``gw[g, part]^T (k x C_out/g, ld K) (+)=
    cols (k x T, ld T) @ go[n, g, block]^T (T x C_out/g, ld OD*OH*OW)``, or (``transposed``)
    ``base[part, g]^T (C_out/g x k, ld C_out) (+)= go[n, g, block] @ cols^T``: the output channels
    as BLAS's M, which OpenBLAS ran 1.1-1.5x faster when they are fewer than the rows (one thread,
    432 rows of 800-1600 positions by 80 channels: 78-90 GFLOP/s with the rows as M, 89-100 with
    the channels; 864 rows by 32 channels: 58-74 and 84-93), and slower when they are more (a
    1x1 layer's 256 rows by 512 channels: 2.4-2.5 ms against 3.2-3.7 for the whole gradient).
    """
    n_threads = cols_buf.shape[0]
    n_batch, c_in = x.shape[0], x.shape[1]
    c_out = go.shape[1]
    out_hw = (go.shape[3], go.shape[4])
    positions = go.shape[2] * go.shape[3] * go.shape[4]
    c_per_group = c_in // groups
    taps = kernel[0] * kernel[1] * kernel[2]
    k_row = c_per_group * taps
    out_per_group = c_out // groups
    go_flat = go.reshape(-1)
    gw_flat = base.reshape(-1)
    size = gw_flat.shape[0]
    # where base holds (o, k) of the gradient: o * so + k * sk
    so, sk = (1, c_out) if transposed else (k_row, 1)
    part_flat = partial.reshape(-1)
    units = c_parts * r_parts
    n_blocks = n_batch * blocks
    for t in prange(n_threads):
        cols = cols_buf[t]
        for u in range(units * t // n_threads, units * (t + 1) // n_threads):
            cp = u // r_parts
            r = u - cp * r_parts
            lo = c_per_group * cp // c_parts
            hi = c_per_group * (cp + 1) // c_parts
            target = gw_flat if r == 0 else part_flat[(r - 1) * size :]
            beta = 0.0
            for bi in range(n_blocks * r // r_parts, n_blocks * (r + 1) // r_parts):
                n = bi // blocks
                j = bi - n * blocks
                q0 = positions * j // blocks
                q1 = positions * (j + 1) // blocks
                width = q1 - q0
                for g in range(groups):
                    c0 = g * c_per_group
                    _columns(
                        x,
                        n,
                        c0 + lo,
                        c0 + hi,
                        cols,
                        width,
                        kernel,
                        stride,
                        dilation,
                        pad,
                        out_hw,
                        q0,
                        q1,
                    )
                    go_block = go_flat[(n * c_out + g * out_per_group) * positions + q0 :]
                    at = target[g * out_per_group * so + lo * taps * sk :]
                    # one product either way round (see the docstring): the rows of columns
                    # or the output channels as BLAS's M
                    rows = (hi - lo) * taps
                    if transposed:
                        size_m, size_n, mat_a, lda, mat_b, ldb, ldc = (
                            out_per_group,
                            rows,
                            go_block,
                            positions,
                            cols,
                            width,
                            c_out,
                        )
                    else:
                        size_m, size_n, mat_a, lda, mat_b, ldb, ldc = (
                            rows,
                            out_per_group,
                            cols,
                            width,
                            go_block,
                            positions,
                            k_row,
                        )
                    gemm_call(
                        gemm,
                        "T",
                        "N",
                        size_m,
                        size_n,
                        width,
                        1.0,
                        mat_a,
                        lda,
                        mat_b,
                        ldb,
                        beta,
                        at,
                        ldc,
                    )
                beta = 1.0
    if not transposed:
        # base is gw: the other ranges' sums added to it in order, each thread a run of it
        for t in prange(n_threads if r_parts > 1 else 0):
            i0 = size * t // n_threads
            i1 = size * (t + 1) // n_threads
            for j in range(r_parts - 1):
                _add_run(gw_flat, part_flat, j * size, i0, i1 - i0)
        return
    # the ranges' sums in order, transposed into gw: thread t takes a run of gw's rows, 16 at a
    # time, so that the reads run along rows of base and the writes fill 16 rows' cache lines
    for t in prange(n_threads):
        o_end = c_out * (t + 1) // n_threads
        for o0 in range(c_out * t // n_threads, o_end, 16):
            o1 = min(o0 + 16, o_end)
            for k in range(k_row):
                for o in range(o0, o1):
                    v = gw_flat[k * c_out + o]
                    for j in range(r_parts - 1):
                        v += part_flat[j * size + k * c_out + o]
                    gw[o, k] = v


def weight_grad_plan(batch, c_in, c_out, kernel, out_spatial, itemsize, groups):
    """``(blocks, c_parts, r_parts, rows, width)`` of :func:`weight_grad`, from the shapes only.

    ``blocks``: blocks per image; ``c_parts``: parts of each group's input channels; ``r_parts``:
    ranges of blocks, each with its own partial sum; ``rows`` x ``width``: one thread's columns.
    """
    c_per_group = c_in // groups
    taps = math.prod(kernel)
    positions = math.prod(out_spatial)
    c_parts = max(1, min(WGRAD_UNITS, c_per_group, c_per_group * taps // WGRAD_MIN_ROWS))
    rows = -(-c_per_group // c_parts) * taps
    grad_bytes = c_out * c_per_group * taps * itemsize
    r_parts = max(1, min(-(-WGRAD_UNITS // c_parts), 1 + WGRAD_PARTIAL_BYTES // grad_bytes))
    width = max(MIN_BLOCK, BLOCK_BYTES // (rows * itemsize))
    # narrower blocks when there are too few positions for a block per range
    width = max(min(MIN_BLOCK, 32), min(width, -(-batch * positions // r_parts)))
    blocks = max(1, -(-positions // width))
    width = -(-positions // blocks)
    r_parts = min(r_parts, batch * blocks)
    return blocks, c_parts, r_parts, rows, width


def weight_grad_transposed(c_out, groups, rows):
    """Whether :func:`weight_grad` makes the output channels BLAS's M: when a group has fewer
    output channels than a part has rows of columns (``rows`` of :func:`weight_grad_plan`)."""
    return c_out // groups < rows


def weight_grad_workspace_nbytes(
    batch, c_in, c_out, kernel, out_spatial, itemsize, groups, threads
):
    """Bytes of the buffers :func:`weight_grad` allocates on ``threads`` threads: one thread's
    columns (``rows x width``) each, and one gradient-sized partial sum per range of blocks after
    the first, plus the transposed gradient the first range sums into when
    :func:`weight_grad_transposed`. ``kernel`` and ``out_spatial`` are (depth, height, width)
    triples."""
    _, _, r_parts, rows, width = weight_grad_plan(
        batch, c_in, c_out, kernel, out_spatial, itemsize, groups
    )
    grad_size = c_out * (c_in // groups) * math.prod(kernel)
    sums = r_parts - 1 + weight_grad_transposed(c_out, groups, rows)
    return (threads * rows * width + sums * grad_size) * itemsize


def weight_grad(x, go, weight_size, stride, dilation, padding, groups):
    """``grad_w`` of shape ``weight_size`` for input ``x`` and output gradient ``go``.

    x: (N, C_in, *S) and go: (N, C_out, *O) of 1, 2 or 3 spatial dimensions, validated by
    :func:`convlab.grad.conv1d_weight` and friends; ``padding`` is the zero padding on each side
    (the padding after the input follows from the sizes).
    """
    grad_w = np.empty(tuple(weight_size), dtype=x.dtype)
    c_out = weight_size[0]
    kernel = _as3d(weight_size[2:])
    x5 = np.ascontiguousarray(x).reshape(x.shape[:2] + _as3d(x.shape[2:]))
    go5 = np.ascontiguousarray(go).reshape(go.shape[:2] + _as3d(go.shape[2:]))
    blocks, c_parts, r_parts, rows, width = weight_grad_plan(
        x.shape[0], x.shape[1], c_out, kernel, go5.shape[2:], x.itemsize, groups
    )
    threads = numba.get_num_threads()
    cols_size = threads * rows * width
    transposed = weight_grad_transposed(c_out, groups, rows)
    base_size = grad_w.size if transposed else 0
    buf = workspace("engine", (cols_size + base_size + (r_parts - 1) * grad_w.size,), x.dtype)
    cols_buf = buf[:cols_size].reshape(threads, rows * width)
    gw = grad_w.reshape(c_out, -1)
    base = buf[cols_size : cols_size + base_size].reshape(gw.shape[1], c_out) if transposed else gw
    partial = buf[cols_size + base_size :].reshape(r_parts - 1, grad_w.size)
    with parallel_launch(), one_blas_thread():
        _weight_grad(
            blas_gemm(x.dtype),
            x5,
            go5,
            gw,
            base,
            transposed,
            partial,
            kernel,
            _as3d(stride),
            _as3d(dilation),
            _as3d(padding, 0),
            groups,
            blocks,
            c_parts,
            r_parts,
            cols_buf,
        )
    return grad_w


def gather_applies(stride, padding, dilation, kernel):
    """Whether :func:`conv_transpose_gather` computes this transposed convolution: stride 1 and
    a padding of at most ``d (k - 1)`` in every dimension."""
    return all(s == 1 for s in stride) and all(
        p <= d * (k - 1) for p, d, k in zip(padding, dilation, kernel, strict=True)
    )


def conv_transpose_gather(x, w, b, out, padding, dilation, groups):
    """A stride-1 transposed convolution as the convolution it is the adjoint of, gathered.

    With stride 1, ``conv_transpose(x, w, padding=p, dilation=d)`` is the convolution of ``x``
    with the kernel flipped and its channel axes swapped (per group), zero-padded by ``d (k - 1)
    - p`` before (and ``d (k - 1) - p + a`` after, ``a`` the output padding, which follows from
    ``out``'s size): every output element gathers its terms, so :func:`convlab._implicit.conv`
    computes it with no scatter and no columns. x: (N, C_in, *S); w: (C_in, C_out/groups,
    *K) as PyTorch lays it out; ``gather_applies`` holds.
    """
    nd = w.ndim - 2
    c_in, out_per_group = w.shape[0], w.shape[1]
    in_per_group = c_in // groups
    flip = (slice(None), slice(None)) + (slice(None, None, -1),) * nd
    # (C_in, C_out/g, *K) -> per group (C_out/g, C_in/g, *K), flipped
    wg = w.reshape((groups, in_per_group, out_per_group) + w.shape[2:]).swapaxes(1, 2)
    w_conv = np.ascontiguousarray(
        wg.reshape((groups * out_per_group, in_per_group) + w.shape[2:])[flip]
    )
    pad_before = tuple(
        d * (k - 1) - p for p, d, k in zip(padding, dilation, w.shape[2:], strict=True)
    )
    return _implicit.conv(x, w_conv, b, out, (1,) * nd, dilation, groups, pad_before)

"""The weight gradient (1-, 2- and 3-D), and the stride-1 transposed convolution as the
convolution it is the adjoint of.

The weight gradient is a sum over output positions, ``grad_w[o, c, tap] = sum over q of go[o, q]
* x[c, q * stride + tap * dilation - pad]``, which one matrix product per block of positions
computes. Three ways, picked per layer by :func:`weight_grad_uses_dots` and
:func:`weight_grad_uses_tile`:

* **by dot products** (:func:`_weight_grad_dots`), when each group has one input channel
  (depthwise layers) or a few (a stem, narrow groups): the matrix to multiply is too thin for BLAS
  and the tile, but each tap's sum is one long dot product of the output gradient with the
  input shifted by that tap, once both are laid out with the same row length (zero columns
  after each row of the gradient, zero padding around the input; a strided input split into
  its stride phases first). :func:`convlab._tile.tap_dots` keeps up to nine taps' sums in
  vector registers while it reads the gradient once.

* **by convlab's tile** (:func:`_weight_grad_tile`), for most layers: each thread copies the input
  rows its block reads once, channels last (:func:`_fill_channels_last`), and packs the block's
  output gradient into panels; the product's right-hand rows are then read in place, one per
  output position and kernel row, each the contiguous run of ``KW * C_in/groups`` values that
  position's taps read (:func:`convlab._tile.tile_matmul` with a table of offsets; strides and
  padding are only offsets). No columns are built.
* **by BLAS over columns** (:func:`_weight_grad`), where a product's row would be narrower than one
  strip of the tile (few channels per group, like the stem's 3) or the kernel is 1x1 (one large
  product, which BLAS runs well): each thread builds the columns of its blocks of positions
  (:func:`_columns`: row ``((c * KD + kd) * KH + kh) * KW + kw``, one column per output position,
  zero padding written as it reads) and multiplies them with single-threaded BLAS
  (:func:`convlab._blas.gemm_call`).

The work is cut by the layer's shapes only, never by the thread count: the blocks of positions,
the ranges of blocks that have their own partial sum (and, by BLAS, the parts of the input
channels) are fixed by :func:`weight_grad_tile_plan` or :func:`weight_grad_plan`, and the threads
take whole units of that fixed cut (thread ``t`` of ``T`` the units ``[U t / T, U (t + 1) /
T)``). Every number is therefore computed by the same products on the same operands whichever
thread runs them, and partial sums are added in a fixed order: the results are the same bits on
any number of threads.

1-D and 2-D layers are 3-D layers with depth (and height) 1: ``x`` is always viewed as
``(N, C, D, H, W)``. The convolutions themselves build no columns either:
:mod:`convlab._implicit`.
"""

import functools
import math

import numba
import numpy as np
from numba import njit, prange

from . import _implicit, _kernels_depthwise
from ._blas import blas_gemm, gemm_call, one_blas_thread
from ._implicit import _as3d
from ._kernels import _add_run, _copy_run, _im2col_block, _zero_run
from ._tile import (
    TAP_DOTS2_MAX,
    TAP_DOTS_MAX,
    TILES_ROWS,
    VECTOR_BYTES,
    pack_panel,
    panel_rows,
    tap_dots,
    tap_dots2,
    tile_columns,
    tile_matmul,
    tile_shape,
    vector_lanes,
)
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
    batch,
    c_in,
    c_out,
    kernel,
    out_spatial,
    itemsize,
    groups,
    threads,
    stride=(1, 1, 1),
    dilation=(1, 1, 1),
    padding=(0, 0, 0),
):
    """Bytes of the buffers :func:`weight_grad` allocates on ``threads`` threads. ``kernel``,
    ``out_spatial``, ``stride``, ``dilation`` and ``padding`` are (depth, height, width) triples.

    By dot products (:func:`weight_grad_uses_dots`): one thread's buffer of the group's input
    phases and of the output gradient each (the taps' shifts are cached per layer). By the tile
    (:func:`weight_grad_uses_tile`): one thread's buffer of input rows and of packed output
    gradient, and its table of offsets, each, and one gradient-sized partial sum per range of
    blocks. By BLAS: one thread's columns (``rows x width``) each, and one gradient-sized partial
    sum per range of blocks after the first, plus the transposed gradient the first range sums
    into when :func:`weight_grad_transposed`.
    """
    grad_size = c_out * (c_in // groups) * math.prod(kernel)
    if weight_grad_uses_dots(c_in, c_out, groups, math.prod(kernel)):
        plan, _, _ = dots_plan(
            batch,
            tuple(kernel),
            tuple(stride),
            tuple(dilation),
            tuple(padding),
            tuple(out_spatial),
            itemsize,
        )
        return threads * (c_in // groups * plan[-2] + 2 * plan[-1]) * itemsize
    if weight_grad_uses_tile(c_in, c_out, kernel, groups, itemsize, stride):
        _, _, _, r_parts, _, k_max, buf_size, ap_size, _ = weight_grad_tile_plan(
            batch, c_in, c_out, kernel, stride, dilation, out_spatial, itemsize, groups, threads
        )
        elements = threads * (buf_size + ap_size) + r_parts * grad_size
        return elements * itemsize + threads * k_max * 8
    _, _, r_parts, rows, width = weight_grad_plan(
        batch, c_in, c_out, kernel, out_spatial, itemsize, groups
    )
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
    gw = grad_w.reshape(c_out, -1)
    stride, dilation, pad = _as3d(stride), _as3d(dilation), _as3d(padding, 0)
    if weight_grad_uses_dots(x.shape[1], c_out, groups, math.prod(kernel)):
        _dots(x5, go5, gw, kernel, stride, dilation, pad, groups, numba.get_num_threads())
        if np.isfinite(gw).all():
            return grad_w
        # an inf or a NaN: the dot products also multiply the buffers' zero columns by the input
        # beside them, which would turn an inf that the sum never meets into a NaN; the columns
        # multiply only the pairs the sum has
    if weight_grad_uses_tile(x.shape[1], c_out, kernel, groups, x.itemsize, stride):
        _weight_grad_by_tile(x5, go5, gw, kernel, stride, dilation, pad, groups)
        return grad_w
    blocks, c_parts, r_parts, rows, width = weight_grad_plan(
        x.shape[0], x.shape[1], c_out, kernel, go5.shape[2:], x.itemsize, groups
    )
    threads = numba.get_num_threads()
    cols_size = threads * rows * width
    transposed = weight_grad_transposed(c_out, groups, rows)
    base_size = grad_w.size if transposed else 0
    buf = workspace("engine", (cols_size + base_size + (r_parts - 1) * grad_w.size,), x.dtype)
    cols_buf = buf[:cols_size].reshape(threads, rows * width)
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
            stride,
            dilation,
            pad,
            groups,
            blocks,
            c_parts,
            r_parts,
            cols_buf,
        )
    return grad_w


#: the tiled weight gradient's blocks aim at this many output positions ...
TILE_BLOCK = 1024
#: ... and its buffer of input rows (channels last) at most this many bytes, keeping one row
TILE_BUFFER_BYTES = 2**20


#: a strided layer's weight gradient stays on BLAS when its rows of columns, ``C_in/groups *
#: taps``, are at least this many (see :func:`weight_grad_uses_tile`)
TILE_MAX_STRIDED_ROWS = 2048

#: with AVX2 (16 vector registers: a tile of 4 output channels by 24 float32 columns, half of
#: AVX-512's 8 by 48) a group of this many input channels or more stays on BLAS, whose packed
#: kernels then ran faster. 2 threads, AMD Zen 3, ms, tile -> BLAS: 128 channels 3x3 on 32x32
#: 4.99 -> 3.77, 128 -> 64 channels 1.90 -> 1.59, a TCN layer (128 channels, k = 3, dilation
#: 8, over 2048) 3.29 -> 2.17, 256 channels over 1024 5.25 -> 3.44; below it the tile still won
#: (64 -> 128 channels on 32x32 1.65 -> 2.09, 96 channels, batch 4, 5.8 -> 6.8; batch 1 lost,
#: 1.84 -> 1.68; 64 channels over 2048 at dilation 8 0.70 -> 0.94)
TILE_MAX_CHANNELS_AVX2 = 128


def weight_grad_uses_tile(c_in, c_out, kernel, groups, itemsize, stride=(1, 1, 1)):
    """Whether :func:`weight_grad` computes this layer with convlab's tile
    (:func:`_weight_grad_tile`) rather than with BLAS over columns (:func:`_weight_grad`): when
    a product's row, the input channels of a group times the kernel's width (dilated or not),
    fills at least one strip of the tile, and the kernel is larger than 1x1
    (a 1x1 layer's gradient is one large product, which BLAS ran faster: 256 -> 512 channels on
    14x14, batch 2, 0.43 ms against 0.53), and the layer is not both strided and wide: there
    the products are large enough for BLAS, whose buffer of input rows would also hold the
    columns between strides (2 threads, ms, BLAS against tile: 256 -> 512 channels at stride 2
    on 28x28, batch 4, 5.5-6.5 against 7.5-8.6; 512 -> 512 on 14x14 3.1 against 3.6; with 128
    -> 256 channels, batch 8, the tile won, 14.9 against 10.8). Dilated layers take the tile
    from the same row width since their buffer stores the columns in phases: 2 threads, ms,
    BLAS -> tile, 32 -> 64 channels on 56x56 at dilation 2 0.45 -> 0.34, 24 -> 24 0.21 -> 0.14,
    40 -> 40 on 40x40 at dilation 4 (batch 2) 0.40 -> 0.30. Those are AVX-512 timings; with
    AVX2's narrower tile, groups of ``TILE_MAX_CHANNELS_AVX2`` input channels or more stay on
    BLAS."""
    cpg = c_in // groups
    run = cpg * kernel[2]
    taps = math.prod(kernel)
    if max(stride) > 1 and cpg * taps >= TILE_MAX_STRIDED_ROWS:
        return False
    if VECTOR_BYTES < 64 and cpg >= TILE_MAX_CHANNELS_AVX2:
        return False
    return taps > 1 and run >= tile_columns(tile_shape(c_out // groups), itemsize)


def tile_column_phases(cpg, opg, dw, itemsize):
    """How many phases :func:`_weight_grad_tile` stores a buffer row's columns in: ``dw`` (a
    dilated width) when one run of ``cpg`` values per tap would leave the tile's last strip part
    empty, else 1 (in order; a dilated width then takes one run per tap). The phases put a
    position's taps side by side, one run, at the cost of a strided copy. In-process A/B, 2
    threads, ms, a run per tap -> phases: 64 channels on 56x56 at dilation 2 0.76-0.82 -> 0.55-0.60,
    32 -> 64 channels 0.71-0.77 -> 0.30-0.33; with whole strips per tap only the copy shows, 96
    channels on 48x48 at dilation 3 0.87-0.93 -> 0.96-1.04, 48 on 56x56 at dilation 2 0.31-0.35
    -> 0.33-0.40."""
    if dw == 1 or cpg % tile_columns(tile_shape(opg), itemsize) == 0:
        return 1
    return dw


def weight_grad_tile_plan(
    batch, c_in, c_out, kernel, stride, dilation, out_spatial, itemsize, groups, threads
):
    """The cut of :func:`_weight_grad_tile`'s work: ``(shape, seg, rows_b, r_parts, c_parts,
    k_max, buf_size, ap_size, planes_b)``.

    Each output plane (one image, one output depth) is cut into blocks of ``rows_b`` rows, or,
    with ``seg > 0``, each row into segments of ``seg`` columns (1-D layers, wide maps), or, when
    a plane is small, ``planes_b`` consecutive whole planes make one block; the blocks into
    ``r_parts`` ranges, each summed into its own partial
    gradient; each group's output channels into ``c_parts`` ranges of panels. ``r_parts``
    follows from the shapes alone, so the sums are added in the same order on any number of
    threads; ``c_parts`` (which does not change any sum) from ``threads`` too. ``k_max``: the
    most positions in a block; ``buf_size``, ``ap_size``: one thread's buffer of input rows and
    of packed output gradient, in elements.
    """
    kd, kh, kw = kernel
    _, sh, sw = stride
    _, dh, dw = dilation
    od_n, oh_n, ow_n = out_spatial
    cpg = c_in // groups
    opg = c_out // groups
    shape = tile_shape(opg)
    mr = panel_rows(shape)
    panels = -(-opg // mr)
    halo_h = (kh - 1) * dh + 1
    halo_w = (kw - 1) * dw + 1
    row_bytes = kd * cpg * itemsize  # one buffer column of every plane

    phases = tile_column_phases(cpg, opg, dw, itemsize)

    def buffer(rows_out, cols_out):
        cols = (cols_out - 1) * sw + halo_w
        return kd * ((rows_out - 1) * sh + halo_h) * phases * -(-cols // phases) * cpg

    if ow_n >= TILE_BLOCK // 2:
        # segments of one row
        seg = min(TILE_BLOCK, max(1, (TILE_BUFFER_BYTES // (row_bytes * halo_h) - halo_w) // sw))
        seg = -(-ow_n // -(-ow_n // seg))
        rows_b, k_max, per_plane = 1, seg, oh_n * -(-ow_n // seg)
        buf_size = buffer(1, seg)
    else:
        seg = 0
        rows_b = max(1, min(oh_n, TILE_BLOCK // ow_n))
        while rows_b > 1 and buffer(rows_b, ow_n) * itemsize > TILE_BUFFER_BYTES:
            rows_b -= 1
        rows_b = -(-oh_n // -(-oh_n // rows_b))
        k_max, per_plane = rows_b * ow_n, -(-oh_n // rows_b)
        buf_size = buffer(rows_b, ow_n)
    # small planes (a 7x7 or 14x14 map): a block takes several whole ones, so that each product
    # still sums over about TILE_BLOCK positions
    planes_b = 1
    if seg == 0 and per_plane == 1:
        planes_b = min(batch * od_n, max(1, TILE_BLOCK // k_max))
        planes_b = max(1, min(planes_b, TILE_BUFFER_BYTES // (buf_size * itemsize)))
        k_max, buf_size = planes_b * k_max, planes_b * buf_size
    n_blocks = -(-batch * od_n // planes_b) * per_plane
    grad_bytes = c_out * cpg * kd * kh * kw * itemsize
    r_parts = max(1, min(WGRAD_UNITS, n_blocks, WGRAD_PARTIAL_BYTES // grad_bytes))
    # parts of the output channels only to give every thread work: each part fills the buffer
    # again, which costs as much as a few panels' products
    c_parts = 1
    while c_parts < panels and (r_parts * c_parts) % threads and r_parts * c_parts < 4 * threads:
        c_parts += 1
    ap_size = -(-panels // c_parts) * mr * k_max
    return shape, seg, rows_b, r_parts, c_parts, k_max, buf_size, ap_size, planes_b


@njit(**NJIT_OPTIONS)
def _fill_channels_last(x4, n, c0, cpg, d_in, id0, dd, kd_n, ih0, rows, iw0, wp, phases, buf):
    """``buf[((a * rows + r) * wb + col(j)) * cpg + c] = x[n, c0 + c, id0 + a dd, ih0 + r, iw0 +
    j]`` for ``j < wp``, 0 outside the input: the rows a block reads, channels last. x4: (N, C *
    D, H, W). With ``phases == 1`` the columns are in order (``col(j) = j``, ``wb = wp``); else
    ``col(j) = (j % phases) * wq + j // phases`` with ``wq = ceil(wp / phases)`` and ``wb = phases
    * wq``: with ``phases`` the width's dilation, the ``KW`` taps of a position are neighbours."""
    h_in, w_in = x4.shape[2], x4.shape[3]
    xf = x4.reshape(-1)
    step = d_in * h_in * w_in  # from one channel to the next
    wq = -(-wp // phases)
    row_len = phases * wq * cpg
    lo = min(wp, max(0, -iw0))
    hi = max(lo, min(wp, w_in - iw0))
    for a in range(kd_n):
        i_d = id0 + a * dd
        for r in range(rows):
            ih = ih0 + r
            dst = (a * rows + r) * row_len
            if i_d < 0 or i_d >= d_in or ih < 0 or ih >= h_in:
                _zero_run(buf, dst, dst + row_len)
                continue
            src = ((n * x4.shape[1] + c0 * d_in + i_d) * h_in + ih) * w_in + iw0
            for f in range(phases):
                # phase f: columns j = f + phases * t, inside the input for t_lo <= t < t_hi (with
                # one phase, in order: t = j)
                t_lo = min(wq, max(0, -((f - lo) // phases)))
                t_hi = max(t_lo, min(wq, -((f - hi) // phases)))
                d_f = dst + f * wq * cpg
                _zero_run(buf, d_f, d_f + t_lo * cpg)
                _zero_run(buf, d_f + t_hi * cpg, d_f + wq * cpg)
                for c8 in range(0, cpg - 7, 8):
                    _transpose8(
                        xf, src + f + c8 * step, step, phases, buf, d_f + c8, cpg, t_lo, t_hi
                    )
                for c in range(cpg - cpg % 8, cpg):
                    for t in range(t_lo, t_hi):
                        buf[d_f + t * cpg + c] = xf[src + c * step + f + phases * t]


@njit(**NJIT_OPTIONS)
def _transpose8(xf, src, step, jstep, buf, dst, cpg, lo, hi):
    """``buf[dst + j * cpg + i] = xf[src + i * step + j * jstep]`` for 8 rows ``i`` and ``lo <= j
    < hi``: eight channels' rows (every ``jstep``-th column) into eight consecutive values of
    each column. With the eight a constant and unsigned indices LLVM vectorises it: 0.19 ns per
    value on one Zen 5 thread, where the loop along one channel's row at a time took 0.55 (and
    16 channels at a time 0.25-0.42)."""
    s0 = np.uint64(src)
    d0 = np.uint64(dst)
    st = np.uint64(step)
    cn = np.uint64(cpg)
    js = np.uint64(jstep)
    for j in range(np.uint64(lo), np.uint64(hi)):
        d = d0 + j * cn
        s = s0 + j * js
        for i in range(np.uint64(8)):
            buf[d + i] = xf[s + i * st]


@njit(**NJIT_PARALLEL_OPTIONS)
def _weight_grad_tile(
    x, go, part, plan, kernel, stride, dilation, pad, phases, groups, bufs, aps, boffs
):
    """The weight gradient by convlab's tile, per range of blocks into ``part`` (``r_parts`` x
    ``C_out * KD*KH*KW * C_in/groups``: element ``(o, tap, c)`` at ``(o * taps + tap) * cpg +
    c``).

    For a block of output positions, ``grad_w[o, c, tap] += sum over positions q of go[o, q] *
    x[c, q * stride + tap * dilation - pad]``: a product ``A (o x q) @ B (q x (tap, c))`` with
    ``A`` the output gradient, packed (one panel per 8 or 4 output channels), and ``B``'s rows
    read in place from the block's input rows stored channels last (:func:`_fill_channels_last`):
    the row of position ``q`` for kernel row ``(kd, kh)`` is the ``KW * cpg`` values from its
    first tap on, one contiguous run. A dilated width's taps are not neighbours: the buffer then
    stores each row's columns in ``phases`` phases (:func:`tile_column_phases`), which makes
    them neighbours again, or (``phases == 1``) each tap is a run of ``cpg`` values of its
    own. Strides and padding are only offsets in the table ``boff``. plan:
    :func:`weight_grad_tile_plan`.
    """
    shape, seg, rows_b, r_parts, c_parts, planes_b = plan
    n_threads = bufs.shape[0]
    n_batch, c_in, d_in = x.shape[0], x.shape[1], x.shape[2]
    c_out = go.shape[1]
    od_n, oh_n, ow_n = go.shape[2], go.shape[3], go.shape[4]
    kd_n, kh_n, kw_n = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    pd, ph, pw = pad
    cpg = c_in // groups
    opg = c_out // groups
    ldc = kd_n * kh_n * kw_n * cpg
    size = c_out * ldc
    mr = TILES_ROWS[shape]
    panels = (opg + mr - 1) // mr
    x4 = x.reshape(n_batch, c_in * d_in, x.shape[3], x.shape[4])
    gof = go.reshape(-1)
    positions = od_n * oh_n * ow_n
    per_row = (ow_n + seg - 1) // seg if seg > 0 else 1
    per_plane = oh_n * per_row if seg > 0 else (oh_n + rows_b - 1) // rows_b
    n_planes = n_batch * od_n
    n_blocks = (n_planes + planes_b - 1) // planes_b * per_plane
    units = r_parts * c_parts
    together = phases == dw  # a kernel row's taps side by side (always with dw == 1)
    runs = 1 if together else kw_n  # calls per kernel row, each of `width` columns
    width = kw_n * cpg if together else cpg
    for t in prange(n_threads):
        buf = bufs[t]
        ap = aps[t]
        boff = boffs[t]
        for u in range(units * t // n_threads, units * (t + 1) // n_threads):
            r = u // c_parts
            cp = u - r * c_parts
            p0 = panels * cp // c_parts
            p1 = panels * (cp + 1) // c_parts
            o0 = p0 * mr
            m = min(opg, p1 * mr) - o0
            first = n_blocks * r // r_parts
            for bi in range(first, n_blocks * (r + 1) // r_parts):
                pl0 = bi // per_plane * planes_b  # the block's first plane (image, depth)
                n_pl = min(planes_b, n_planes - pl0)
                j = bi - bi // per_plane * per_plane
                if seg > 0:
                    oh0 = j // per_row
                    oh1 = oh0 + 1
                    ow0 = (j - oh0 * per_row) * seg
                    ow1 = min(ow_n, ow0 + seg)
                else:
                    oh0 = j * rows_b
                    oh1 = min(oh_n, oh0 + rows_b)
                    ow0 = 0
                    ow1 = ow_n
                bw = ow1 - ow0
                k_pl = (oh1 - oh0) * bw  # positions of one plane
                k = k_pl * n_pl
                rows = (oh1 - oh0 - 1) * sh + (kh_n - 1) * dh + 1
                wp = (bw - 1) * sw + (kw_n - 1) * dw + 1
                wq = -(-wp // phases)  # the buffer's columns per phase
                wb = phases * wq
                pl_buf = kd_n * rows * wb * cpg  # one plane's part of the buffer
                for q in range(k):
                    jp = q // k_pl
                    i = (q - jp * k_pl) // bw
                    col = (q - jp * k_pl - i * bw) * sw  # the position's first tap's column
                    col = (col % phases) * wq + col // phases
                    boff[q] = jp * pl_buf + (i * sh * wb + col) * cpg
                for g in range(groups):
                    for jp in range(n_pl):
                        img = (pl0 + jp) // od_n
                        od = pl0 + jp - img * od_n
                        _fill_channels_last(
                            x4,
                            img,
                            g * cpg,
                            cpg,
                            d_in,
                            od * sd - pd,
                            dd,
                            kd_n,
                            oh0 * sh - ph,
                            rows,
                            ow0 * sw - pw,
                            wp,
                            phases,
                            buf[jp * pl_buf :],
                        )
                        src = ((img * c_out + g * opg + o0) * od_n + od) * oh_n * ow_n
                        src += oh0 * ow_n + ow0
                        for p in range(p1 - p0):
                            full = min(mr, m - p * mr)
                            pack_panel(
                                gof,
                                src + p * mr * positions,
                                positions,
                                k_pl,
                                mr,
                                full,
                                ap,
                                p * k * mr + jp * k_pl * mr,
                            )
                    for a in range(kd_n):
                        for i in range(kh_n):
                            for jj in range(runs):
                                tile_matmul(
                                    shape,
                                    m,
                                    width,
                                    k,
                                    k,
                                    ap,
                                    0,
                                    k * mr,
                                    buf,
                                    ((a * rows + i * dh) * wb + jj * dw) * cpg,
                                    boff,
                                    part,
                                    r * size
                                    + (g * opg + o0) * ldc
                                    + ((a * kh_n + i) * kw_n + jj) * cpg,
                                    ldc,
                                    bi != first,
                                )


@njit(**NJIT_PARALLEL_OPTIONS)
def _sum_parts(part, r_parts, gw, cpg, taps, n_threads):
    """``gw[o, c * taps + tap]`` = the sum over ranges, in order, of ``part[r, o, tap, c]``: each
    thread a run of the output channels."""
    c_out = gw.shape[0]
    size = c_out * taps * cpg
    for t in prange(n_threads):
        for o in range(c_out * t // n_threads, c_out * (t + 1) // n_threads):
            row = o * taps * cpg
            for c in range(cpg):
                for tap in range(taps):
                    v = part[row + tap * cpg + c]
                    for r in range(1, r_parts):
                        v += part[r * size + row + tap * cpg + c]
                    gw[o, c * taps + tap] = v


def _weight_grad_by_tile(x5, go5, gw, kernel, stride, dilation, pad, groups):
    """:func:`_weight_grad_tile` and :func:`_sum_parts` into ``gw`` (C_out x C_in/g * taps)."""
    threads = numba.get_num_threads()
    plan = weight_grad_tile_plan(
        x5.shape[0],
        x5.shape[1],
        gw.shape[0],
        kernel,
        stride,
        dilation,
        go5.shape[2:],
        x5.itemsize,
        groups,
        threads,
    )
    _, _, _, r_parts, _, k_max, buf_size, ap_size, _ = plan
    cpg = x5.shape[1] // groups
    part_size = r_parts * gw.size
    buf = workspace("engine", (threads * (buf_size + ap_size) + part_size,), x5.dtype)
    bufs = buf[: threads * buf_size].reshape(threads, buf_size)
    aps = buf[threads * buf_size : threads * (buf_size + ap_size)].reshape(threads, ap_size)
    part = buf[threads * (buf_size + ap_size) :]
    boffs = workspace("engine_offsets", (threads, k_max), np.int64)
    with parallel_launch():
        _weight_grad_tile(
            x5,
            go5,
            part,
            plan[:5] + plan[8:],
            kernel,
            stride,
            dilation,
            pad,
            tile_column_phases(cpg, gw.shape[0] // groups, dilation[2], x5.itemsize),
            groups,
            bufs,
            aps,
            boffs,
        )
        _sum_parts(part, r_parts, gw, cpg, math.prod(kernel), threads)


@njit(inline="always", **NJIT_OPTIONS)
def _valid(q0, step, phase, size, n):
    """``[lo, hi)``: the ``u < n`` with ``0 <= (u + q0) * step + phase < size``
    (``0 <= phase < step``)."""
    lo = min(n, max(0, -q0))
    hi = max(lo, min(n, (size - phase + step - 1) // step - q0))
    return lo, hi


@njit(**NJIT_OPTIONS)
def _fill_phase(src, s0, in_size, q0, step, phase, dims, dst, d0):
    """The interior of one phase of a volume: ``dst[d0 + (u * HQ + v) * WQ + w] = src[s0 + (iz *
    H + ih) * W + iw]`` with ``i = (u + q0) * step + phase`` in each dimension, wherever that lies
    inside the volume ``in_size`` (D, H, W); the rest of ``dst`` is left as it is (zeros)."""
    dq, hq, wq = dims
    z_lo, z_hi = _valid(q0[0], step[0], phase[0], in_size[0], dq)
    r_lo, r_hi = _valid(q0[1], step[1], phase[1], in_size[1], hq)
    w_lo, w_hi = _valid(q0[2], step[2], phase[2], in_size[2], wq)
    for u in range(z_lo, z_hi):
        iz = (u + q0[0]) * step[0] + phase[0]
        for v in range(r_lo, r_hi):
            ih = (v + q0[1]) * step[1] + phase[1]
            src_row = s0 + (iz * in_size[1] + ih) * in_size[2] + (w_lo + q0[2]) * step[2]
            _copy_run(
                dst, d0 + (u * hq + v) * wq + w_lo, src, src_row + phase[2], w_hi - w_lo, step[2]
            )


@njit(**NJIT_OPTIONS)
def _fill_phase_pair(src, s0, in_size, q0, step, phase, dims, dst, d0, d1):
    """:func:`_fill_phase` for the two phases of a width stride of 2 at once (``phase[2] = 0``
    into ``d0``, 1 into ``d1``): each input row is read once, its even and odd values split."""
    dq, hq, wq = dims
    z_lo, z_hi = _valid(q0[0], step[0], phase[0], in_size[0], dq)
    r_lo, r_hi = _valid(q0[1], step[1], phase[1], in_size[1], hq)
    e_lo, e_hi = _valid(q0[2], 2, 0, in_size[2], wq)
    o_lo, o_hi = _valid(q0[2], 2, 1, in_size[2], wq)
    lo, hi = max(e_lo, o_lo), max(max(e_lo, o_lo), min(e_hi, o_hi))
    for u in range(z_lo, z_hi):
        iz = (u + q0[0]) * step[0] + phase[0]
        for v in range(r_lo, r_hi):
            ih = (v + q0[1]) * step[1] + phase[1]
            row = s0 + (iz * in_size[1] + ih) * in_size[2] + 2 * q0[2]  # input column of w = 0
            out = (u * hq + v) * wq
            for w in range(e_lo, lo):
                dst[d0 + out + w] = src[row + 2 * w]
            for w in range(hi, e_hi):
                dst[d0 + out + w] = src[row + 2 * w]
            for w in range(o_lo, lo):
                dst[d1 + out + w] = src[row + 2 * w + 1]
            for w in range(hi, o_hi):
                dst[d1 + out + w] = src[row + 2 * w + 1]
            _split_run(dst, d0 + out + lo, d1 + out + lo, src, row + 2 * lo, hi - lo)


@njit(inline="always", **NJIT_OPTIONS)
def _split_run(dst, d0, d1, src, s0, count):
    """``dst[d0 + i] = src[s0 + 2 i]``, ``dst[d1 + i] = src[s0 + 2 i + 1]`` for ``i < count``:
    with both values of each pair used, LLVM loads whole vectors and shuffles them apart."""
    a = np.uint64(d0)
    b = np.uint64(d1)
    s = np.uint64(s0)
    two = np.uint64(2)
    for i in range(np.uint64(count)):
        even = src[s + two * i]
        odd = src[s + two * i + np.uint64(1)]
        dst[a + i] = even
        dst[b + i] = odd


@njit(**NJIT_PARALLEL_OPTIONS)
def _weight_grad_dots(x, go, gw, plan, stride, groups, offs, phases, bufs):
    """The weight gradient as dot products, for layers with few input channels per group
    (depthwise ones, channel multipliers, a stem's 3 channels): ``gw[o, c * taps + tap] = sum over
    n, q of go[n, o, q] * x[n, g * cpg + c, q * stride + tap * dilation - pad]`` (``g`` the group
    of ``o``) by :func:`convlab._tile.tap_dots`, with the taps' sums in vector registers.

    Each output channel's sum is one thread's. For ``stack`` images at a time it copies the
    group's input channels into a flat buffer, once per stride phase (:func:`_fill_phase`; a
    stride-1 layer has one phase, its zero padding the buffer's zeros), in rows of ``WQ`` values,
    planes of ``HQ`` rows and volumes of ``DQ * HQ * WQ``, and the output gradient of each of its
    output channels the same way (zeros after each row's ``OW``), so that every tap is one
    constant shift ``offs[tap]`` of the whole buffer: each tap's sum is then one long dot
    product. The products the zero columns add are zeros (unless the input holds an inf or a NaN
    there: :func:`weight_grad` checks). ``plan`` from :func:`dots_plan`; x: (N, C_in, D, H,
    W) unpadded; go: (N, C_out, OD, OH, OW).
    """
    n_threads = bufs.shape[0]
    n_b, c_in, d_in, h_in, w_in = x.shape
    c_out, od_n, oh_n, ow_n = go.shape[1], go.shape[2], go.shape[3], go.shape[4]
    dq, hq, wq, q_d, q_h, q_w, stack, nv, region, x_size, g_size = plan
    cpg = c_in // groups
    opg = c_out // groups
    taps = offs.shape[0]
    n_ph = phases.shape[0]
    vol = dq * hq * wq
    dims = (dq, hq, wq)
    in_size = (d_in, h_in, w_in)
    q0 = (q_d, q_h, q_w)
    step = stride
    sw = stride[2]
    xf = x.reshape(-1)
    gf = go.reshape(-1)
    gwf = gw.reshape(-1)
    for t in prange(n_threads):
        buf = bufs[t]
        _zero_run(buf, 0, cpg * x_size + 2 * g_size)
        xb = buf[: cpg * x_size]  # channel c's phases from c * x_size
        gb = buf[cpg * x_size : cpg * x_size + 2 * g_size]  # two output channels' gradients
        o_end = c_out * (t + 1) // n_threads
        o0 = c_out * t // n_threads
        while o0 < o_end:  # the thread's output channels of one group
            g = o0 // opg
            o1 = min(o_end, (g + 1) * opg)
            for o in range(o0, o1):
                for k in range(cpg * taps):
                    gw[o, k] = 0.0
            for n0 in range(0, n_b, stack):
                ns = min(stack, n_b - n0)
                for c in range(cpg):
                    for s in range(ns):
                        start = ((n0 + s) * c_in + g * cpg + c) * d_in * h_in * w_in
                        p = 0
                        while p < n_ph:
                            phase = (phases[p, 0], phases[p, 1], phases[p, 2])
                            d0 = c * x_size + p * region + s * vol
                            if sw == 2 and phase[2] == 0 and p + 1 < n_ph:
                                if phases[p + 1, 2] == 1:
                                    _fill_phase_pair(
                                        xf,
                                        start,
                                        in_size,
                                        q0,
                                        step,
                                        phase,
                                        dims,
                                        xb,
                                        d0,
                                        d0 + region,
                                    )
                                    p += 2
                                    continue
                            _fill_phase(xf, start, in_size, q0, step, phase, dims, xb, d0)
                            p += 1
                o = o0
                while o < o1:  # two output channels at a time: each input vector serves both
                    pair = o + 1 < o1
                    for r in range(2 if pair else 1):
                        for s in range(ns):
                            _fill_phase(
                                gf,
                                ((n0 + s) * c_out + o + r) * od_n * oh_n * ow_n,
                                (od_n, oh_n, ow_n),
                                (0, 0, 0),
                                (1, 1, 1),
                                (0, 0, 0),
                                dims,
                                gb,
                                r * g_size + s * vol,
                            )
                        if ns < stack:  # the last, short stack: no gradient for images not there
                            _zero_run(gb, r * g_size + ns * vol, (r + 1) * g_size)
                    for c in range(cpg):
                        row = o * cpg * taps + c * taps
                        if pair:
                            for t0 in range(0, taps, TAP_DOTS2_MAX):
                                nt = min(TAP_DOTS2_MAX, taps - t0)
                                tap_dots2(
                                    nv,
                                    gb,
                                    0,
                                    g_size,
                                    xb,
                                    c * x_size,
                                    offs,
                                    t0,
                                    gwf,
                                    row + t0,
                                    cpg * taps,
                                    nt,
                                )
                        else:
                            for t0 in range(0, taps, TAP_DOTS_MAX):
                                nt = min(TAP_DOTS_MAX, taps - t0)
                                tap_dots(nv, gb, 0, xb, c * x_size, offs, t0, gwf, row + t0, nt)
                    o += 2 if pair else 1
            o0 = o1


#: bytes of one stack of images' output gradient in :func:`_weight_grad_dots`: small maps
#: are stacked so that each dot product is long (batch-64 8x8 maps: 0.070 ms in stacks of up to
#: 16 KB against 0.091 one image at a time, one thread)
DOTS_STACK_BYTES = 16384


#: the dot products take layers with up to this many input channels per group
DOTS_MAX_CHANNELS = 8


def weight_grad_uses_dots(c_in, c_out, groups, taps):
    """Whether :func:`weight_grad` computes the layer by :func:`_weight_grad_dots`: up to
    ``DOTS_MAX_CHANNELS`` input channels per group (depthwise layers, with or without a channel
    multiplier, stems, narrow groups), where the columns' product is too thin for BLAS and the
    tile. Not a single input channel with several filters, a plain convolution on which the
    columns run faster (2 threads, ms, dots / columns / PyTorch: 256 8x8 images to 16 filters
    0.16 / 0.10 / 0.08), nor, as on the tile (:func:`weight_grad_uses_tile`), a 1x1 kernel over
    several channels, one plain product for BLAS (8 -> 32 on 56x56, batch 4: 0.109 / 0.069 /
    0.139; 3 -> 16 on 128x128 0.075 / 0.050 / 0.127; a depthwise 1x1 layer stays: 0.078 / 0.117).
    1-D and 3-D layers gain as 2-D ones do: 8 -> 32, k5, L 4096 batch 4 0.26 -> 0.17 (0.29); 3-D
    3 -> 16 on 16x32x32 batch 2 0.55 -> 0.29 (0.26).

    2 threads, ms, the columns or the channels-last copies it replaced -> this (PyTorch):
    depthwise 144 channels on 56x56 0.32-0.40 -> 0.11-0.15 (0.16), at stride 2 0.13 -> 0.08
    (0.11); 32 on 112x112 0.30 -> 0.09-0.11 (0.14); 96 on 112x112 at stride 2 0.68 -> 0.15
    (0.21); 384 on 14x14 0.10-0.15 -> 0.04-0.06 (0.06-0.09); batch 64 of 16 channels on 8x8
    0.16-0.23 -> 0.05-0.09 (0.07); 240 on 28x28 with 5x5 kernels 0.31 -> 0.08 (1.7); 32 channels
    to 64 (a multiplier of 2) on 56x56 0.23 -> 0.07 (0.31). Few channels, two output channels
    at a time (:func:`convlab._tile.tap_dots2`): the 7x7 stride-2 stem 3 -> 64 on 224x224 1.07-1.43
    -> 0.75 (0.66-0.78), batch 4 4.1 -> 2.9 (2.7-2.8); 3 -> 32 on 128x128 (batch 2), 3x3 0.50 ->
    0.21 (0.23), 5x5 0.53 -> 0.29, 7x7 0.45 -> 0.27 (0.28); 8 -> 32 on 64x64 0.29 -> 0.14
    (0.26); 128 channels in groups of 8 on 28x28 0.44-0.56 -> 0.13-0.16 (0.14-0.15), of 4 0.41
    -> 0.08-0.11 (0.35)."""
    cpg = c_in // groups
    if c_in == 1 and c_out > 1:
        return False
    return cpg == 1 or (cpg <= DOTS_MAX_CHANNELS and taps > 1)


@functools.lru_cache(maxsize=256)
def dots_plan(batch, kernel, stride, dilation, pad, out_spatial, itemsize):
    """``(plan, offs, phases)`` of :func:`_weight_grad_dots` for (depth, height, width)
    triples: ``plan = (DQ, HQ, WQ, q_d, q_h, q_w, stack, nv, region, x_size, g_size)``;
    ``offs[tap]`` each tap's shift into the input's buffer; ``phases`` one row per stride phase
    (the input's index modulo the stride, per dimension) that some tap reads.

    A tap ``t`` of a dimension reads input ``o * s + t * d - p = (o + q_t) * s + r_t`` for output
    ``o``: phase ``r_t``, position ``o + q_t`` in it. Each phase is stored from ``q0 = min q_t``
    over ``OQ + max q_t - q0`` positions (``DQ, HQ, WQ``), the output gradient at the same row
    and plane lengths, so tap ``t`` is the constant shift ``q_t - q0`` (per dimension) into its
    phase's ``region``. Cached (a training loop asks for the same few layers again and again:
    working it out took a quarter of a small layer's time); the arrays are read-only."""
    lanes = vector_lanes(itemsize)
    dims, q0s, residues = [], [], []
    for k, s, d, p, o in zip(kernel, stride, dilation, pad, out_spatial, strict=True):
        q = [(t * d - p) // s for t in range(k)]
        dims.append(o + max(q) - min(q))
        q0s.append(min(q))
        residues.append([(t * d - p) % s for t in range(k)])
    dq, hq, wq = dims
    vol = dq * hq * wq
    stack = max(1, min(batch, DOTS_STACK_BYTES // (vol * itemsize)))
    od, oh, ow = out_spatial
    length = (stack - 1) * vol + ((od - 1) * hq + oh - 1) * wq + ow
    nv = -(-length // lanes)
    region = stack * vol
    phase_list = sorted({(a, b, c) for a in residues[0] for b in residues[1] for c in residues[2]})
    offs = np.empty(math.prod(kernel), np.int64)
    tap = 0
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            for c in range(kernel[2]):
                key = (residues[0][a], residues[1][b], residues[2][c])
                shift = (
                    (
                        ((a * dilation[0] - pad[0]) // stride[0] - q0s[0]) * hq
                        + (b * dilation[1] - pad[1]) // stride[1]
                        - q0s[1]
                    )
                    * wq
                    + (c * dilation[2] - pad[2]) // stride[2]
                    - q0s[2]
                )
                offs[tap] = phase_list.index(key) * region + shift
                tap += 1
    # every vector read lies inside the buffers: the gradient's nv vectors, each tap's nv
    # vectors from its shift
    x_size = max(len(phase_list) * region, int(offs.max()) + nv * lanes)
    g_size = max(region, nv * lanes)
    phases = np.array(phase_list, np.int64).reshape(-1, 3)
    offs.setflags(write=False)
    phases.setflags(write=False)
    plan = (dq, hq, wq, *q0s, stack, nv, region, x_size, g_size)
    return plan, offs, phases


def _dots(x5, go5, gw, kernel, stride, dilation, pad, groups, threads):
    """:func:`_weight_grad_dots` into ``gw`` (C_out x C_in/groups * taps)."""
    plan, offs, phases = dots_plan(
        x5.shape[0],
        tuple(kernel),
        tuple(stride),
        tuple(dilation),
        tuple(pad),
        tuple(go5.shape[2:]),
        x5.itemsize,
    )
    size = x5.shape[1] // groups * plan[-2] + 2 * plan[-1]
    bufs = workspace("engine", (threads, size), x5.dtype)
    with parallel_launch():
        _weight_grad_dots(x5, go5, gw, plan, tuple(stride), groups, offs, phases, bufs)


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
    computes it with no scatter and no columns (a 3-D depthwise layer: the depthwise kernel).
    x: (N, C_in, *S); w: (C_in, C_out/groups, *K) as PyTorch lays it out; ``gather_applies``
    holds.
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
    if nd == 3 and groups == c_in:
        # depthwise: the depthwise kernel, which pads zeros as it reads
        with parallel_launch():
            _kernels_depthwise._conv3d_depthwise(
                np.ascontiguousarray(x), w_conv, b, out, 1, 1, 1, *dilation, *pad_before
            )
        return out
    return _implicit.conv(x, w_conv, b, out, (1,) * nd, dilation, groups, pad_before)

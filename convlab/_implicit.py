"""Convolution as an implicit matrix product: no columns, the input's rows read in place by tap.

im2col copies every input value once per tap (``KD * KH * KW`` times) into columns, so that one
matrix product sums over them; for a 7x7 kernel the copy moves 49 times the input, and building
the columns took a third of the layer's time. Here nothing is copied per tap. For a block of
output rows, each thread copies the input rows the block reads once, zero-padded, into a buffer
(:func:`_fill`); the rows of the product's right-hand side are then *views* of that buffer, one
per (input channel, tap), each shifted by the tap's offset, and :func:`convlab._tile.tile_matmul`
reads them through a table of offsets (``boff``).

The block's output positions are numbered along rows of the buffer's width ``wq = OWb + halo``
(``OWb`` the block's output columns, ``halo = (KW - 1) * dw // sw``): output ``(i, j)`` is flat
position ``i * wq + j``, and tap ``(kh, kw)`` reads it at ``i * wq + j`` plus the tap's offset, so
every tap reads a contiguous run. The ``halo`` positions at the end of each row are computed and
thrown away (18% of a 7x7 layer on a 28x28 map, 9% of a 5x5 one on 40x40; none in 1-D, where a
block is part of one row).

Where those positions are a large share of the row (:func:`shifted_copies`: at least
``SHIFT_MIN_HALO``, at stride 1 along the width), the buffer holds instead ``KW`` copies of each
input plane, copy ``kw`` shifted left by ``kw * dw`` columns and ``OWb`` wide: tap ``(kh, kw)``
then reads copy ``kw`` at row offset ``kh``, and no position is thrown away, for ``KW`` times the
copying and the buffer.

A stride becomes unit steps by storing each plane's rows and columns by phase: input column
``(c0 + j) * sw + p - pw`` goes to column ``j`` of phase ``p`` (``0 <= p < sw``), so tap ``kw``
reads phase ``kw * dw % sw`` from column ``kw * dw // sw`` on, and the same for rows. A 1-, 2- or
3-D layer is a 3-D one with depth (and height) 1; the depth taps are more planes of the buffer.

The work is cut by the layer's shapes only (:func:`implicit_plan`): images, groups, output depth
slices, blocks of rows and of columns, and parts of the output channels, which count towards
the units the threads need before the blocks of positions are cut smaller. Thread ``t`` of ``T``
takes the units ``[U t / T, U (t + 1) / T)``; every output element is the same product on the
same operands whichever thread computes it, so the result does not depend on the number of
threads.
"""

import math

import numba
import numpy as np
from numba import njit, prange

from ._kernels import _copy_run, _fill_run, _zero_run
from ._tile import (
    TILES_ROWS,
    VECTOR_BYTES,
    pack_panel,
    pack_range,
    panel_rows,
    tile_matmul,
    tile_shape,
)
from ._winograd import workspace
from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS, parallel_launch

#: a block's flat positions (its rows times the buffer's width) aim at this many: long enough
#: that the strips' last, partial one and the halo rows re-read are a small part of the work;
#: this many in a 1-D layer (a block of one row's columns) ...
TARGET_FLAT = 1024
#: ... and this many in blocks of whole rows (2-D and 3-D layers). 2 threads, ms, 1024 -> 2048:
#: 128 channels 3x3 in 32 groups on 56x56 0.252 -> 0.200, 24 channels 3x3x3 on 12x32x32 0.94
#: -> 0.84, a 64 -> 32 transposed 4x4 at stride 2 on 4 x 32x32 0.80 -> 0.75, 64 channels with
#: dilation 2 on 56x56 0.63 -> 0.60, the rest within the noise; in 1-D it lost (64 channels over
#: 1024 with k = 5 0.133 -> 0.139)
TARGET_FLAT_ROWS = 2048
#: ... and are never fewer than this when the image has them, even to give every thread a block
#: (the output channels are cut instead)
MIN_FLAT = 256
#: bytes of one thread's buffer of input rows (every plane a block reads) ...
BLOCK_BYTES = 2**20
#: ... and of its block of products (output channels x flat positions), before the copy into
#: the output. A block keeps at least one row, and the halo rows, whatever these say
OUT_BYTES = 2**20
#: the weights one pass of the sum reads (:func:`convlab._tile.tile_matmul`'s ``kc``) take
#: about this many bytes (inside L2, next to the buffer), in passes of at least MIN_PASS rows
SUM_BYTES = 2**18
MIN_PASS = 128
#: the work is cut into at least this many units when the layer has enough positions and
#: output channels: 12 splits evenly over 1, 2, 3, 4 and 6 threads. The output channels' panels
#: count towards them before the blocks of positions are cut smaller: the units of one block
#: share its copy of the input rows, and longer blocks copy fewer halo rows and compute less of
#: the strips' last, partial one (2 threads, ms: 48 -> 64 channels 5x5 on 35x35 0.585 -> 0.506,
#: 128 channels 3x3 in 8 groups on 28x28 0.166 -> 0.126, 64 channels with dilation 2 on 56x56
#: 0.660 -> 0.626, a 96 -> 48 transposed 4x4 at stride 2 on 24x24 0.283 -> 0.269, a 1-D layer
#: of 128 -> 256 channels over 4 x 512 0.96 -> 0.87, the input gradient of a stride-2 layer 0.706
#: -> 0.616; no layer measured slower beyond the noise)
MIN_UNITS = 12
#: :func:`shifted_copies` applies when the thrown-away positions are at least this share of a
#: buffer row. 2 threads, ms, one copy -> ``KW`` shifted copies: 64 channels 7x7 on 28x28 (18%)
#: 0.79 -> 0.74, 128 channels 7x7 on 14x14 (30%) 1.00 -> 0.88; about even at 9-11% (48 -> 64
#: channels 5x5 on 35x35 0.468 -> 0.457, 32 channels 7x7 on 56x56 0.739 -> 0.728), slower below
#: (16 channels 9x9 on 64x64, 11%, 0.418 -> 0.444; 64 channels 3x3 with dilation 2 on 56x56,
#: 7%, 0.53 -> 0.68), where the copies outgrow what the positions save. That is with AVX-512
#: (AMD Zen 5, 1 MiB of L2 per core). With AVX2 (AMD Zen 3, 512 KiB of L2 per core) the tile
#: is half as wide, reads twice the bytes of ``B`` per multiply-add, and the copies, which
#: spread a block's rows over ``KW`` times the memory, lost up to 30% (2 threads, ms, one copy
#: -> shifted copies: 64 channels 7x7 on 28x28, 18%, 2.69 -> 4.04; 96 channels 5x5 on 24x24,
#: 14%, 2.24 -> 2.87; 64 channels 3x3 at dilation 4 on 32x32, 20%, 0.95 -> 1.25; 48 channels
#: 5x5 on 16x16, 20%, 0.40 -> 0.45; 64 on 12x12, 25%, 0.42 -> 0.44; 32 channels at dilation 6
#: on 32x32, 27%, 0.28 -> 0.31) and won only from 30% (128 channels 7x7 on 14x14 2.82 -> 2.56;
#: 64 channels 7x7 on 14x14, batch 4, 2.98 -> 2.23)
SHIFT_MIN_HALO = 0.15 if VECTOR_BYTES == 64 else 0.28


def implicit_plan(
    batch,
    c_in,
    c_out,
    kernel,
    stride,
    dilation,
    out_spatial,
    itemsize,
    groups,
    phases=1,
    shift=False,
):
    """The cut of :func:`conv`'s work, from the shapes only: a tuple ``(shape, col_blocks,
    col_w, row_blocks, rows, parts, rq, wq, kc)``. ``phases``: blocks of products per block of
    positions (one per output phase of :mod:`convlab._phases`); ``shift``: the buffer holds
    ``KW`` shifted copies of each plane (:func:`shifted_copies`), with no thrown-away positions.

    ``shape``: the tile (:func:`convlab._tile.tile_shape`); the output columns are cut into
    ``col_blocks`` blocks of at most ``col_w``, the rows into ``row_blocks`` blocks of at most
    ``rows``, each group's output channels into ``parts`` ranges of panels; the buffer holds
    ``rq`` rows of ``wq`` per plane; the sum is made in passes of ``kc`` rows. (depth, height,
    width) triples.
    """
    kd, kh, kw = kernel
    _, sh, sw = stride
    _, dh, dw = dilation
    od_n, oh_n, ow_n = out_spatial
    opg = c_out // groups
    shape = tile_shape(opg)
    mr = panel_rows(shape)
    panels = -(-opg // mr)
    halo_h = (kh - 1) * dh // sh
    halo_w = 0 if shift else (kw - 1) * dw // sw
    # one position of every plane (with shift, of every shifted copy)
    plane_bytes = c_in // groups * kd * sh * (kw if shift else sw) * itemsize
    out_bytes = phases * panels * mr * itemsize  # one flat position of products
    outer = batch * groups * od_n
    col_w = ow_n
    if oh_n == 1:
        # one output row (1-D): blocks of columns, as many as the threads want, none too short
        col_w = -(-ow_n * outer * panels // MIN_UNITS)
        col_w = max(col_w, MIN_FLAT)
        col_w = min(col_w, TARGET_FLAT, BLOCK_BYTES // plane_bytes - halo_w)
        col_w = min(col_w, OUT_BYTES // out_bytes)
        col_w = max(1, col_w)
    col_blocks = -(-ow_n // min(col_w, ow_n))
    col_w = -(-ow_n // col_blocks)
    wq = col_w + halo_w
    rows = -(-oh_n * outer * col_blocks * panels // MIN_UNITS)
    rows = max(rows, -(-MIN_FLAT // wq))
    rows = min(rows, -(-TARGET_FLAT_ROWS // wq), BLOCK_BYTES // (plane_bytes * wq) - halo_h)
    rows = min(rows, OUT_BYTES // (out_bytes * wq))
    rows = max(1, halo_h, min(oh_n, rows))
    rows = min(rows, oh_n)
    row_blocks = -(-oh_n // rows)
    rows = -(-oh_n // row_blocks)
    units = outer * col_blocks * row_blocks
    parts = min(panels, max(1, -(-MIN_UNITS // units)))
    k = c_in // groups * kd * kh * kw
    kc = pass_rows(k, -(-panels // parts) * mr, itemsize)
    return shape, col_blocks, col_w, row_blocks, rows, parts, rows + halo_h, wq, kc


def pass_rows(k, m, itemsize):
    """Rows of the sum per pass (``kc`` of :func:`convlab._tile.tile_matmul`) for ``m`` rows of
    ``A`` (padded to whole panels): ``m x kc`` fills about ``SUM_BYTES``, with passes of at
    least ``MIN_PASS`` rows, cut evenly."""
    kc = max(MIN_PASS, SUM_BYTES // (m * itemsize))
    passes = -(-k // max(1, min(k, kc)))
    return max(1, -(-k // passes))


@njit(**NJIT_OPTIONS)
def tap_offsets(
    c_per_group, kernel, stride, dilation, rq, wq, boff, d_first=0, ring=False, shift=False
):
    """Fill ``boff``: where in a thread's buffer the product's row ``((kd * C + c) * KH + kh) *
    KW + kw`` starts (``C = c_per_group``: the packed weight's order, depth tap first,
    :func:`_pack_depth_first`): plane ``(c, s, kh * dh % sh, kw * dw % sw)``, row ``kh * dh //
    sh``, column ``kw * dw // sw``; with ``shift``, plane ``(c, s, kh * dh % sh, kw)`` (the
    copy shifted by the tap), row ``kh * dh // sh``, column 0. The depth slot ``s`` is ``kd``,
    or with ``ring`` the slot :func:`_fill` keeps input depth ``d_first + kd`` in."""
    kd_n, kh_n, kw_n = kernel
    sh, sw = stride[1], stride[2]
    dh, dw = dilation[1], dilation[2]
    r = 0
    for kd in range(kd_n):
        slot = (d_first + kd) % kd_n if ring else kd
        for c in range(c_per_group):
            for kh in range(kh_n):
                for kw in range(kw_n):
                    if shift:
                        plane = ((c * kd_n + slot) * sh + kh * dh % sh) * kw_n + kw
                        boff[r] = plane * rq * wq + kh * dh // sh * wq
                    else:
                        plane = ((c * kd_n + slot) * sh + kh * dh % sh) * sw + kw * dw % sw
                        boff[r] = plane * rq * wq + kh * dh // sh * wq + kw * dw // sw
                    r += 1


def _as3d(values, fill=1):
    """1, 2 or 3 per-dimension values (sizes, strides, ...) as 3, the missing leading ones ``fill``
    (a 1- or 2-D layer is a 3-D one of depth, and height, 1; :mod:`convlab._engine` uses it too)."""
    return (fill,) * (3 - len(values)) + tuple(values)


def shifted_copies(kernel, stride, dilation, out_spatial):
    """Whether :func:`conv` keeps ``KW`` shifted copies of each input plane (the module
    docstring): at stride 1 along the width, in 2-D and 3-D, when the positions one copy would
    throw away, ``(KW - 1) dw`` per row, are at least ``SHIFT_MIN_HALO`` of the buffer's row.
    (depth, height, width) triples."""
    halo = (kernel[2] - 1) * dilation[2]
    return (
        stride[2] == 1
        and halo > 0
        and out_spatial[1] > 1
        and halo >= SHIFT_MIN_HALO * (out_spatial[2] + halo)
    )


def _buffer_sizes(plan, c_in, c_out, kernel, stride, groups, shift=False):
    """``(buf, out, packed, k)``: elements of one thread's buffer of input rows and of its
    block of products, of the packed weights, and the rows of the sum, for ``plan``."""
    shape, _, col_w, _, rows, parts, rq, wq, _ = plan
    mr = panel_rows(shape)
    panels = -(-(c_out // groups) // mr)
    k = c_in // groups * math.prod(kernel)
    copies = kernel[2] if shift else stride[2]  # planes per channel along the width
    buf = c_in // groups * kernel[0] * stride[1] * copies * rq * wq
    out = -(-panels // parts) * mr * ((rows - 1) * wq + col_w)
    return buf, out, groups * panels * mr * k, k


def implicit_workspace_nbytes(
    batch, c_in, c_out, kernel, stride, dilation, out_spatial, itemsize, groups, threads
):
    """Bytes :func:`conv` allocates besides its output on ``threads`` threads: each thread's
    buffer of input rows, block of products and table of offsets, and the packed weights."""
    shift = shifted_copies(kernel, stride, dilation, out_spatial)
    plan = implicit_plan(
        batch, c_in, c_out, kernel, stride, dilation, out_spatial, itemsize, groups, shift=shift
    )
    buf, out, packed, k = _buffer_sizes(plan, c_in, c_out, kernel, stride, groups, shift)
    return (threads * (buf + out) + packed) * itemsize + threads * k * 8


@njit(**NJIT_OPTIONS)
def _fill(
    x,
    n,
    cg,
    cpg,
    od,
    r0,
    c0,
    buf,
    rq,
    wq,
    kernel,
    stride,
    dilation,
    pad,
    kd0=0,
    ring=False,
    shift=False,
):
    """Copy the input rows block ``(od, r0.., c0..)`` reads into ``buf``, by phase, zero-padded.

    Plane ``((c * KD + kd) * sh + hp) * sw + wp`` (``c < cpg``, input channel ``cg + c``), row
    ``i``, column ``j`` holds input ``(od * sd + kd * dd - pd, (r0 + i) * sh + hp - ph, (c0 + j) *
    sw + wp - pw)``, or 0 outside the input. Phases no tap reads are left as they are.

    With ``ring`` (a depth stride and dilation of 1), input depth ``i_d`` goes to depth slot
    ``i_d % KD`` instead of ``kd``: the next output depth's block reads the same planes but one,
    which is then the only one to copy (``kd0 = KD - 1``: only taps ``kd >= kd0`` are filled).

    With ``shift`` (stride 1 along the width), the planes along the width are the ``KW`` shifted
    copies instead of the phases: plane ``((c * KD + kd) * sh + hp) * KW + kw``, column ``j``
    holds input column ``c0 + j + kw * dw - pw``.
    """
    c_all, d_in, h_in, w_in = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    x_flat = x.reshape(-1)
    kd_n, kh_n, kw_n = kernel
    sd, sh, sw = stride
    dd, dh, dw = dilation
    pd, ph, pw = pad
    plane = rq * wq
    for hp in range(sh):
        used_h = False
        for kh in range(kh_n):
            used_h = used_h or (kh * dh) % sh == hp
        n_w = kw_n if shift else sw  # planes along the width: shifted copies, or phases
        for wp in range(n_w):
            used_w = shift
            for kw in range(kw_n):
                used_w = used_w or (kw * dw) % sw == wp
            if not (used_h and used_w):
                continue
            iw0 = c0 + wp * dw - pw if shift else c0 * sw + wp - pw  # input column of j = 0
            # columns j with 0 <= iw0 + j * sw < w_in
            j_lo = min(wq, max(0, (-iw0 + sw - 1) // sw))
            j_hi = max(j_lo, min(wq, (w_in - iw0 + sw - 1) // sw))
            # rows i with 0 <= (r0 + i) * sh + hp - ph < h_in
            ih0 = r0 * sh + hp - ph
            i_lo = min(rq, max(0, (-ih0 + sh - 1) // sh))
            i_hi = max(i_lo, min(rq, (h_in - ih0 + sh - 1) // sh))
            width = j_hi - j_lo
            for c in range(cpg):
                for kd in range(kd0, kd_n):
                    i_d = od * sd + kd * dd - pd
                    slot = i_d % kd_n if ring else kd
                    base = (((c * kd_n + slot) * sh + hp) * n_w + wp) * plane
                    if i_d < 0 or i_d >= d_in:
                        _zero_run(buf, base, base + plane)
                        continue
                    _zero_run(buf, base, base + i_lo * wq)
                    src = (((n * c_all + cg + c) * d_in + i_d) * h_in + ih0) * w_in + iw0
                    for i in range(i_lo, i_hi):
                        row = base + i * wq
                        _zero_run(buf, row, row + j_lo)
                        _copy_run(
                            buf, row + j_lo, x_flat, src + i * sh * w_in + j_lo * sw, width, sw
                        )
                        _zero_run(buf, row + j_hi, row + wq)
                    _zero_run(buf, base + i_hi * wq, base + plane)


@njit(inline="always", **NJIT_OPTIONS)
def unit_of(u, parts, col_blocks, row_blocks, od_n, groups, depth_last=False):
    """``(block, part, n, g, od, rb, cbk)`` of unit ``u`` of :func:`implicit_plan`'s cut: units
    are numbered by image, group, output depth, block of rows, block of columns, then part of
    the output channels, the last fastest; with ``depth_last``, by image, group, block of rows,
    block of columns, output depth, part (a thread's consecutive blocks are then consecutive
    depths of the same rows, which share all their input planes but one)."""
    block = u // parts
    part = u - block * parts
    rest = block
    od = 0
    if depth_last:
        od = rest % od_n
        rest //= od_n
    cbk = rest % col_blocks
    rest //= col_blocks
    rb = rest % row_blocks
    rest //= row_blocks
    if not depth_last:
        od = rest % od_n
        rest //= od_n
    g = rest % groups
    n = rest // groups
    return block, part, n, g, od, rb, cbk


@njit(**NJIT_OPTIONS)
def _biased_run(dst, d0, src, s0, count, bias):
    """``dst[d0 + j] = src[s0 + j] + bias`` for ``j < count``, unsigned indices (no wraparound
    test on every access, so LLVM vectorises it: the copy of a stem's products into the output
    took a third of the layer with signed ones)."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    for j in range(np.uint64(max(0, count))):
        dst[d + j] = src[s + j] + bias


@njit(**NJIT_OPTIONS)
def _pack_depth_first(a, groups, mr, ap, p0, p1, kd_n, cpg):
    """:func:`convlab._tile.pack_range` of ``a`` (``groups * m`` x ``cpg * kd_n * T``, row
    element ``(c * kd_n + kd) * T + t``) with each panel's sum reordered depth tap first: element
    ``(kd * cpg + c) * T + t`` of the packed rows, the order :func:`tap_offsets` gives."""
    rows, k = a.shape
    m = rows // groups
    panels = (m + mr - 1) // mr
    taps = k // (kd_n * cpg)
    af = a.reshape(-1)
    for q in range(p0, p1):
        g = q // panels
        p = q - g * panels
        first = (g * m + p * mr) * k
        n_rows = min(mr, m - p * mr)
        for kd in range(kd_n):
            for c in range(cpg):
                src = first + (c * kd_n + kd) * taps
                pack_panel(af, src, k, taps, mr, n_rows, ap, (q * k + (kd * cpg + c) * taps) * mr)


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv_implicit(
    x, w2, ap, boffs, b, out, kernel, stride, dilation, pad, groups, plan, bufs, cbufs, skip, shift
):
    """``out = b + conv(x, w)`` by blocks (see the module docstring).

    x: (N, C_in, D, H, W) unpadded; w2: the weight (C_out, C_in/groups * KD*KH*KW), packed by
    the threads into ``ap`` (:func:`convlab._tile.pack_panels`'s layout, flat) with the depth
    taps outermost (:func:`_pack_depth_first`), so that the taps of one input depth are one
    range of the sum; boffs: (threads,
    rows of the sum), each thread's table of :func:`tap_offsets`; b: (C_out,); out: (N, C_out,
    OD, OH, OW), overwritten; plan: :func:`implicit_plan`; bufs, cbufs: each thread's buffer of
    input rows and block of products; shift: the buffer holds shifted copies
    (:func:`shifted_copies`, and the plan was made for them).

    A 3-D kernel with depth stride and dilation 1 keeps its input planes in a ring
    (:func:`_fill`'s ``ring``): a thread takes the output depths of the same rows one after the
    other and copies one new plane per depth, not ``KD`` (a 3x3x3 layer's copies were a seventh
    of its time). With ``skip`` (the caller found the weight finite), a block whose depth taps
    read depth padding leaves those taps out of its sum: they would add exact zeros (8% of the
    products of a 3x3x3 layer on 8 depths). With an inf or NaN weight they are kept, so that
    ``0 * inf`` gives the NaN the definition gives. A block with no such tap sums them all.
    """
    n_threads = bufs.shape[0]
    n_batch, c_in, d_in = x.shape[0], x.shape[1], x.shape[2]
    c_out = out.shape[1]
    od_n, oh_n, ow_n = out.shape[2], out.shape[3], out.shape[4]
    shape, col_blocks, col_w, row_blocks, rows, parts, rq, wq, kc = plan
    cpg = c_in // groups
    opg = c_out // groups
    mr = TILES_ROWS[shape]
    panels = (opg + mr - 1) // mr
    k = boffs.shape[1]
    # a 1x1x1 kernel with stride 1 and no padding reads the input where it lies: the product's
    # row c is input channel c of the group, at the block's first position
    in_place = (
        k == cpg
        and stride[0] == stride[1] == stride[2] == 1
        and pad[0] == pad[1] == pad[2] == 0
        and x.shape[2] * x.shape[3] * x.shape[4] == od_n * oh_n * ow_n
        and (col_blocks == 1 or rows == 1)  # so every block is a run of the output
    )
    ring = kernel[0] > 1 and stride[0] == 1 and dilation[0] == 1 and not in_place
    x_flat = x.reshape(-1)
    for t in prange(n_threads):
        q0 = groups * panels * t // n_threads
        q1 = groups * panels * (t + 1) // n_threads
        if kernel[0] == 1:
            pack_range(w2, groups, mr, ap, q0, q1)
        else:
            _pack_depth_first(w2, groups, mr, ap, q0, q1, kernel[0], cpg)
    plane_size = od_n * oh_n * ow_n
    out_flat = out.reshape(-1)
    units = n_batch * groups * od_n * row_blocks * col_blocks * parts
    for t in prange(n_threads):
        buf = bufs[t]
        cb = cbufs[t]
        boff = boffs[t]
        if in_place:
            for c in range(cpg):
                boff[c] = c * od_n * oh_n * ow_n
        elif not ring:
            tap_offsets(cpg, kernel, stride, dilation, rq, wq, boff, 0, False, shift)
        filled = -1
        for u in range(units * t // n_threads, units * (t + 1) // n_threads):
            block, part, n, g, od, rb, cbk = unit_of(
                u, parts, col_blocks, row_blocks, od_n, groups, ring
            )
            r0 = rb * rows
            r1 = min(oh_n, r0 + rows)
            c0 = cbk * col_w
            c1 = min(ow_n, c0 + col_w)
            if in_place:
                pass
            elif block != filled:
                # with the ring, the block before (the previous depth of the same rows, filled
                # by this thread) left every plane but the last in place
                kd0 = kernel[0] - 1 if ring and od > 0 and block == filled + 1 else 0
                _fill(
                    x,
                    n,
                    g * cpg,
                    cpg,
                    od,
                    r0,
                    c0,
                    buf,
                    rq,
                    wq,
                    kernel,
                    stride,
                    dilation,
                    pad,
                    kd0,
                    ring,
                    shift,
                )
                if ring:
                    tap_offsets(
                        cpg, kernel, stride, dilation, rq, wq, boff, od - pad[0], True, shift
                    )
                filled = block
            p0 = panels * part // parts
            p1 = panels * (part + 1) // parts
            m = min(opg, p1 * mr) - p0 * mr
            if m <= 0:
                continue
            n_flat = (r1 - r0 - 1) * wq + (c1 - c0)
            oc0 = g * opg + p0 * mr
            # the range of the sum this block adds: all of it, or (skip) the depth taps that
            # read inside the input
            k_lo = 0
            k_n = k
            if skip:
                kd_lo = 0
                while kd_lo < kernel[0] and od * stride[0] + kd_lo * dilation[0] < pad[0]:
                    kd_lo += 1
                kd_hi = kernel[0]
                while kd_hi > kd_lo and od * stride[0] + (kd_hi - 1) * dilation[0] - pad[0] >= d_in:
                    kd_hi -= 1
                per_tap = k // kernel[0]
                k_lo = kd_lo * per_tap
                k_n = (kd_hi - kd_lo) * per_tap
            direct = r1 - r0 == 1 or wq == ow_n
            src = buf
            src_off = 0
            if direct:
                # the block's positions are a contiguous run of the output: the products go
                # straight there, onto the bias
                target = out_flat
                t_off = ((n * c_out + oc0) * od_n + od) * oh_n * ow_n + r0 * ow_n + c0
                t_ld = plane_size
                for o in range(m):
                    _fill_run(out_flat, t_off + o * plane_size, n_flat, b[oc0 + o])
                if in_place:
                    src = x_flat
                    src_off = ((n * c_in + g * cpg) * od_n + od) * oh_n * ow_n + r0 * ow_n + c0
            else:
                target = cb
                t_off = 0
                t_ld = n_flat
            tile_matmul(
                shape,
                m,
                n_flat,
                k_n,
                kc,
                ap,
                (g * panels + p0) * k * mr + k_lo * mr,
                k * mr,
                src,
                src_off,
                boff[k_lo:],
                target,
                t_off,
                t_ld,
                1 if direct else 0,
            )
            if direct:
                continue
            start = ((n * c_out + oc0) * od_n + od) * oh_n * ow_n + r0 * ow_n + c0
            for o in range(m):
                bias = b[oc0 + o]
                for i in range(r1 - r0):
                    _biased_run(
                        out_flat,
                        start + o * plane_size + i * ow_n,
                        cb,
                        o * n_flat + i * wq,
                        c1 - c0,
                        bias,
                    )


def conv(x, w, b, out, stride, dilation, groups, pad_before):
    """Fill ``out`` with the convolution of the unpadded ``x`` (1, 2 or 3 spatial dimensions).

    ``pad_before`` is the zero padding before the input in each dimension (the padding after it
    follows from ``out``'s size); ``b`` the bias (C_out,). Arguments validated by the caller.
    """
    c_out = w.shape[0]
    kernel = _as3d(w.shape[2:])
    stride3, dilation3 = _as3d(stride), _as3d(dilation)
    x5 = np.ascontiguousarray(x).reshape(x.shape[:2] + _as3d(x.shape[2:]))
    out5 = out.reshape(out.shape[:2] + _as3d(out.shape[2:]))
    shift = shifted_copies(kernel, stride3, dilation3, out5.shape[2:])
    plan = implicit_plan(
        x.shape[0],
        x.shape[1],
        c_out,
        kernel,
        stride3,
        dilation3,
        out5.shape[2:],
        x.itemsize,
        groups,
        shift=shift,
    )
    buf_size, out_size, packed, k = _buffer_sizes(
        plan, x.shape[1], c_out, kernel, stride3, groups, shift
    )
    threads = numba.get_num_threads()
    space = workspace("implicit", (threads * (buf_size + out_size) + packed,), x.dtype)
    bufs = space[: threads * buf_size].reshape(threads, buf_size)
    cbufs = space[threads * buf_size : threads * (buf_size + out_size)].reshape(threads, out_size)
    ap = space[threads * (buf_size + out_size) :]
    boffs = np.empty((threads, k), np.int64)
    w2 = np.ascontiguousarray(w).reshape(c_out, -1)
    # blocks leave the depth taps that read padding out of their sums only for a finite weight
    # (a finite sum proves it without an array of flags; a sum that overflows keeps the taps)
    skip = kernel[0] > 1 and bool(np.isfinite(w2.sum()))
    with parallel_launch():
        _conv_implicit(
            x5,
            w2,
            ap,
            boffs,
            np.ascontiguousarray(b),
            out5,
            kernel,
            stride3,
            dilation3,
            _as3d(pad_before, 0),
            groups,
            plan,
            bufs,
            cbufs,
            skip,
            shift,
        )
    return out

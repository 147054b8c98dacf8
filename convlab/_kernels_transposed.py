"""Numba kernels for transposed convolution.

Every kernel takes C-contiguous arrays that the wrappers in :mod:`convlab.transposed` and
:mod:`convlab.grad` have validated and allocated; kernels only loop.

A transposed convolution *scatters*: input element ``x[n, ci, ih, iw]`` times tap
``w[ci, oc, kh, kw]`` lands on output ``(ih*sh - ph + kh*dh, iw*sw - pw + kw*dw)``. Scattering in
parallel over input channels would race on the output, so every kernel here gives each parallel
task one whole ``(image, output channel)`` plane that no other task touches, and scatters into it
from every input channel of that channel's group. The padding ``p`` of the transposed convolution
*crops* the full result: the 2-D direct kernel scatters into a private uncropped buffer and crops
while copying out; the 3-D kernel and the folds compute for every tap the range of input
rows/columns whose targets fall inside the cropped output (:func:`_first_in` and
:func:`_stop_in`). Either way no index ever leaves an array.

Innermost loops index plain ``range`` variables into row views sliced beforehand
(``dst = plane[r, start:stop:step]``, then ``dst[i]``), never ``row[i + offset]``: Numba cannot prove
``i + offset >= 0``, so it would emit a negative-index wraparound branch per element and LLVM
would not vectorise the loop (measured 3-10x slower on 28-wide rows).
"""

import numpy as np
from numba import njit, prange

from ._blas import UNITS, gemm_call, unit_range
from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS


@njit(inline="always", **NJIT_OPTIONS)
def _first_in(offset, stride):
    """Smallest ``i >= 0`` with ``i * stride + offset >= 0``."""
    if offset >= 0:
        return 0
    return (-offset + stride - 1) // stride


@njit(inline="always", **NJIT_OPTIONS)
def _stop_in(offset, stride, out_size, in_size):
    """One past the largest ``i < in_size`` with ``i * stride + offset <= out_size - 1``."""
    last = out_size - 1 - offset
    if last < 0:
        return 0
    return min(in_size, last // stride + 1)


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv_transpose2d_phases(x, w, b, out, sh, sw, ph, pw, dh, dw, groups):
    """Direct 2-D transposed convolution, scattering with contiguous writes.

    x: (N, C_in, H, W); w: (C_in, C_out/groups, KH, KW); b: (C_out,) (zeros when there is no bias);
    out: (N, C_out, OH, OW), overwritten.

    With stride ``s`` a tap ``k`` sends input ``i`` to the uncropped position ``F = i*s + k*d``.
    Write ``F = q*s + r``: every target of one tap has the same phase ``r = (k*d) % s`` and
    ``q = i + (k*d) // s``, consecutive for consecutive ``i``. So each task (one image, one output
    channel) scatters into a private buffer ``buf[r_h, r_w, q_h, q_w]`` where the innermost loop
    reads an input row *and* writes a buffer row contiguously (LLVM vectorises it), then
    interleaves the phases into the output and crops the padding in one pass. (Writing straight
    into the output with stride ``s``, as :func:`_conv_transpose3d_scatter` does, measured slower
    except for depthwise layers.) The output padding needs no code: the buffer covers the padded
    size and the rows it adds receive whatever taps reach them.
    """
    n_batch, c_out, oh_n, ow_n = out.shape
    c_in, h_n, w_n = x.shape[1], x.shape[2], x.shape[3]
    out_per_group = w.shape[1]
    in_per_group = c_in // groups
    kh_n, kw_n = w.shape[2], w.shape[3]
    # the uncropped result (with the output padding) has OH + 2*ph rows
    qh_n = (oh_n + 2 * ph - 1) // sh + 1
    qw_n = (ow_n + 2 * pw - 1) // sw + 1
    for task in prange(n_batch * c_out):
        n = task // c_out
        oc = task % c_out
        g = oc // out_per_group
        ocl = oc - g * out_per_group
        buf = np.zeros((sh, sw, qh_n, qw_n), dtype=out.dtype)
        for cil in range(in_per_group):
            ci = g * in_per_group + cil
            src = x[n, ci]
            for kh in range(kh_n):
                rh = (kh * dh) % sh
                qh0 = (kh * dh) // sh
                for kw in range(kw_n):
                    rw = (kw * dw) % sw
                    qw0 = (kw * dw) // sw
                    wv = w[ci, ocl, kh, kw]
                    phase = buf[rh, rw]
                    for ih in range(h_n):
                        dst = phase[ih + qh0, qw0 : qw0 + w_n]
                        row = src[ih]
                        for iw in range(w_n):
                            dst[iw] += wv * row[iw]
        plane = out[n, oc]
        bias = b[oc]
        for oh in range(oh_n):
            fh = oh + ph
            phase_rows = buf[fh % sh, :, fh // sh]
            dst = plane[oh]
            for ow in range(ow_n):
                fw = ow + pw
                dst[ow] = bias + phase_rows[fw % sw, fw // sw]


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv_transpose3d_scatter(x, w, b, out, sd, sh, sw, pd, ph, pw, dd, dh, dw, groups):
    """Direct 3-D transposed convolution, scattering straight into the cropped output.

    x: (N, C_in, D, H, W); w: (C_in, C_out/groups, KD, KH, KW); b: (C_out,) (zeros when there is no
    bias); out: (N, C_out, OD, OH, OW), overwritten. The output padding needs no code: it only
    makes ``out`` larger, and the elements it adds receive whatever taps reach them.

    One task per (image, output channel): the task owns its output volume, so the scatter-add has
    no races. For each input channel and tap the weight sits in a register and the innermost loop
    reads an input row contiguously (and writes with the stride).
    """
    n_batch, c_out, od_n, oh_n, ow_n = out.shape
    c_in, d_n, h_n, w_n = x.shape[1], x.shape[2], x.shape[3], x.shape[4]
    out_per_group = w.shape[1]
    in_per_group = c_in // groups
    kd_n, kh_n, kw_n = w.shape[2], w.shape[3], w.shape[4]
    for task in prange(n_batch * c_out):
        n = task // c_out
        oc = task % c_out
        g = oc // out_per_group
        ocl = oc - g * out_per_group
        vol = out[n, oc]
        bias = b[oc]
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    vol[od, oh, ow] = bias
        for cil in range(in_per_group):
            ci = g * in_per_group + cil
            src = x[n, ci]
            for kd in range(kd_n):
                off_d = kd * dd - pd
                id0 = _first_in(off_d, sd)
                id1 = _stop_in(off_d, sd, od_n, d_n)
                for kh in range(kh_n):
                    off_h = kh * dh - ph
                    ih0 = _first_in(off_h, sh)
                    ih1 = _stop_in(off_h, sh, oh_n, h_n)
                    for kw in range(kw_n):
                        off_w = kw * dw - pw
                        iw0 = _first_in(off_w, sw)
                        iw1 = _stop_in(off_w, sw, ow_n, w_n)
                        if iw1 <= iw0:
                            continue
                        wv = w[ci, ocl, kd, kh, kw]
                        first = iw0 * sw + off_w
                        last = (iw1 - 1) * sw + off_w
                        for i_d in range(id0, id1):
                            for ih in range(ih0, ih1):
                                dst = vol[i_d * sd + off_d, ih * sh + off_h, first : last + 1 : sw]
                                row = src[i_d, ih, iw0:iw1]
                                for j in range(iw1 - iw0):
                                    dst[j] += wv * row[j]


@njit(**NJIT_PARALLEL_OPTIONS)
def _fold_transposed2d(cols, b, out, kh_n, kw_n, sh, sw, ph, pw, dh, dw, h_n, w_n):
    """Second half of the GEMM form of a 2-D transposed convolution: scatter-add the columns.

    cols: (C_out*KH*KW, N, H*W) where ``cols[(oc*KH + kh)*KW + kw, n, ih*W + iw]`` holds
    ``sum_ci w[ci, oc, kh, kw] * x[n, ci, ih, iw]`` (the matrix product ``W^T @ x`` per group, with
    the batch folded into the columns so that it is one large GEMM);
    out: (N, C_out, OH, OW), overwritten with the bias plus every column value at its target.
    This is ``col2im`` with the padding cropped on the fly, one (image, channel) plane at a time.

    Parallel over the planes (``prange``): each task owns its plane and adds into it in a fixed
    order, so there are no races and the result does not depend on the thread count. (It was
    serial while ``cols`` came from NumPy's matmul, whose BLAS threads kept spinning on the same
    cores after the product; :func:`_gemm_columns` now multiplies on convlab's own threads, and
    on 2 threads the serial fold had become most of a batch-4 layer's time: 5.1 ms of which the
    GEMM took about a fifth.)
    """
    n_batch, c_out, oh_n, ow_n = out.shape
    for task in prange(n_batch * c_out):
        n = task // c_out
        oc = task % c_out
        plane = out[n, oc]
        bias = b[oc]
        for oh in range(oh_n):
            for ow in range(ow_n):
                plane[oh, ow] = bias
        for kh in range(kh_n):
            off_h = kh * dh - ph
            ih0 = _first_in(off_h, sh)
            ih1 = _stop_in(off_h, sh, oh_n, h_n)
            for kw in range(kw_n):
                off_w = kw * dw - pw
                iw0 = _first_in(off_w, sw)
                iw1 = _stop_in(off_w, sw, ow_n, w_n)
                if iw1 <= iw0:
                    continue
                src = cols[(oc * kh_n + kh) * kw_n + kw, n]
                first = iw0 * sw + off_w
                last = (iw1 - 1) * sw + off_w
                for ih in range(ih0, ih1):
                    dst = plane[ih * sh + off_h, first : last + 1 : sw]
                    row = src[ih * w_n + iw0 : ih * w_n + iw1]
                    for j in range(iw1 - iw0):
                        dst[j] += row[j]


@njit(**NJIT_PARALLEL_OPTIONS)
def _fold_transposed3d(
    cols, b, out, kd_n, kh_n, kw_n, sd, sh, sw, pd, ph, pw, dd, dh, dw, d_n, h_n, w_n
):
    """:func:`_fold_transposed2d` in 3-D (parallel over the volumes in the same way).

    cols: (C_out*KD*KH*KW, N, D*H*W); out: (N, C_out, OD, OH, OW).
    """
    n_batch, c_out, od_n, oh_n, ow_n = out.shape
    for task in prange(n_batch * c_out):
        n = task // c_out
        oc = task % c_out
        vol = out[n, oc]
        bias = b[oc]
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    vol[od, oh, ow] = bias
        for kd in range(kd_n):
            off_d = kd * dd - pd
            id0 = _first_in(off_d, sd)
            id1 = _stop_in(off_d, sd, od_n, d_n)
            for kh in range(kh_n):
                off_h = kh * dh - ph
                ih0 = _first_in(off_h, sh)
                ih1 = _stop_in(off_h, sh, oh_n, h_n)
                for kw in range(kw_n):
                    off_w = kw * dw - pw
                    iw0 = _first_in(off_w, sw)
                    iw1 = _stop_in(off_w, sw, ow_n, w_n)
                    if iw1 <= iw0:
                        continue
                    src = cols[((oc * kd_n + kd) * kh_n + kh) * kw_n + kw, n]
                    first = iw0 * sw + off_w
                    last = (iw1 - 1) * sw + off_w
                    for i_d in range(id0, id1):
                        for ih in range(ih0, ih1):
                            dst = vol[i_d * sd + off_d, ih * sh + off_h, first : last + 1 : sw]
                            base = (i_d * h_n + ih) * w_n
                            row = src[base + iw0 : base + iw1]
                            for j in range(iw1 - iw0):
                                dst[j] += row[j]


@njit(**NJIT_PARALLEL_OPTIONS)
def _gemm_columns(gemm, x2, w2, cols, groups, n_threads):
    """``cols[g*rows:(g+1)*rows] = w2[group g].T @ x2[group g]`` for every group, split among
    ``n_threads`` threads.

    x2: (C_in, M) input, one column per (image, pixel); w2: (C_in, rows) weight, ``rows = C_out/g
    * prod(k)``; cols: (groups * rows, M), overwritten. Thread ``t`` (``prange``) takes a
    contiguous range of the M columns, or of the rows when there are more rows than columns (a
    small map), and makes one single-threaded BLAS call per group for it (``gemm``:
    :func:`convlab._blas.blas_gemm`; the caller holds BLAS to one thread with
    :func:`convlab._blas.one_blas_thread`). NumPy's ``matmul`` did this before, on NumPy's own
    BLAS threads, which kept spinning for about 0.1 s after each product and slowed the next
    parallel kernels (a ``conv2d`` right after it ran twice as long). In column-major BLAS terms,
    ``cols[g]^T (M x rows, ld M) = x2[g]^T (M x C_in/g, ld M) @ w2[g] (C_in/g x rows, ld rows)``.
    """
    c_in, m_total = x2.shape
    rows = w2.shape[1]
    in_per_group = c_in // groups
    by_rows = rows > m_total
    x_flat = x2.reshape(-1)
    w_flat = w2.reshape(-1)
    c_flat = cols.reshape(-1)
    size = rows if by_rows else m_total
    # ranges cut by the shape only, whole ranges per thread: the same bits on any thread count
    for t in prange(n_threads):
        for u in range(UNITS * t // n_threads, UNITS * (t + 1) // n_threads):
            lo, hi = unit_range(size, u, UNITS)
            if hi <= lo:
                continue
            # this range's block: M x (hi - lo) of cols^T, or (hi - lo) x rows
            m = m_total if by_rows else hi - lo
            n = hi - lo if by_rows else rows
            x_off = 0 if by_rows else lo
            w_off = lo if by_rows else 0
            c_off = lo * m_total if by_rows else lo
            for g in range(groups):
                gemm_call(
                    gemm,
                    "N",
                    "T",
                    m,
                    n,
                    in_per_group,
                    1.0,
                    x_flat[g * in_per_group * m_total + x_off :],
                    m_total,
                    w_flat[g * in_per_group * rows + w_off :],
                    rows,
                    0.0,
                    c_flat[g * rows * m_total + c_off :],
                    m_total,
                )

"""Numba kernels for separable convolutions (see :mod:`convlab.separable`).

As in :mod:`convlab._kernels`, every kernel receives C-contiguous arrays that the public wrapper
has validated and allocated, and only loops; the output sizes come from
:func:`convlab.conv_output_size`. The depthwise-separable kernel receives its input padded, so
every index it forms is in range by construction; the spatially separable one reads the unpadded
input and leaves out the rows and columns that fall in the padding (its runs rounded up to whole
vectors stay inside its buffers' slack and the input, as its docstring says).
"""

import numpy as np
from numba import njit, prange

from ._kernels import _copy_run, _zero_run
from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS


@njit(**NJIT_PARALLEL_OPTIONS)
def _depthwise_separable_fused(xp, wd, bd, wp, bp, out, multiplier, sh, sw, dh, dw, rows):
    """Depthwise conv then 1x1 conv in one pass, a block of output rows at a time.

    xp: (N, C_in, Hp, Wp) padded input; wd: (C_in*K, 1, KH, KW) depthwise weight; bd: (C_in*K,);
    wp: (C_out, C_in*K) pointwise weight; bp: (C_out,); sh, sw: stride; dh, dw: dilation;
    out: (N, C_out, OH, OW), overwritten. ``multiplier`` is K: intermediate channel ``m`` filters
    input channel ``m // K`` (PyTorch's grouped-conv channel order). ``rows``: output rows per task.

    One task per (image, block of ``rows`` output rows). The task computes the depthwise output of
    every intermediate channel for its block into a small buffer (C_in*K x rows*OW, a few kB to
    tens of kB, so it stays in cache) and mixes it at once into the C_out output blocks, which are
    contiguous in NCHW; the intermediate tensor is never written to memory.
    """
    n_batch, c_out, oh_n, ow_n = out.shape
    c_mid = wd.shape[0]
    kh_n, kw_n = wd.shape[2], wd.shape[3]
    blocks = (oh_n + rows - 1) // rows
    for task in prange(n_batch * blocks):
        n = task // blocks
        oh0 = (task % blocks) * rows
        nrows = min(rows, oh_n - oh0)
        width = nrows * ow_n
        mid = np.empty((c_mid, width), dtype=out.dtype)
        for m in range(c_mid):
            src = xp[n, m // multiplier]
            dst = mid[m]
            bias = bd[m]
            for i in range(width):
                dst[i] = bias
            for r in range(nrows):
                base = r * ow_n
                for kh in range(kh_n):
                    line = src[(oh0 + r) * sh + kh * dh]
                    for kw in range(kw_n):
                        wv = wd[m, 0, kh, kw]
                        col0 = kw * dw
                        seg = dst[base : base + ow_n]
                        if sw == 1:
                            # unit-stride indices: LLVM vectorises this loop
                            win = line[col0 : col0 + ow_n]
                            for ow in range(ow_n):
                                seg[ow] += wv * win[ow]
                        else:
                            for ow in range(ow_n):
                                seg[ow] += wv * line[ow * sw + col0]
        # The mixing, a small matrix product (C_out x C_mid) @ (C_mid x width), as loops: np.dot
        # would call a multi-threaded BLAS from inside every prange thread and oversubscribe the
        # cores. Four output channels at a time share each load of an intermediate row.
        start = oh0 * ow_n
        co = 0
        while co + 4 <= c_out:
            d0 = out[n, co].reshape(oh_n * ow_n)[start : start + width]
            d1 = out[n, co + 1].reshape(oh_n * ow_n)[start : start + width]
            d2 = out[n, co + 2].reshape(oh_n * ow_n)[start : start + width]
            d3 = out[n, co + 3].reshape(oh_n * ow_n)[start : start + width]
            b0, b1, b2, b3 = bp[co], bp[co + 1], bp[co + 2], bp[co + 3]
            for i in range(width):
                d0[i] = b0
                d1[i] = b1
                d2[i] = b2
                d3[i] = b3
            for m in range(c_mid):
                w0, w1, w2, w3 = wp[co, m], wp[co + 1, m], wp[co + 2, m], wp[co + 3, m]
                src_row = mid[m]
                for i in range(width):
                    v = src_row[i]
                    d0[i] += w0 * v
                    d1[i] += w1 * v
                    d2[i] += w2 * v
                    d3[i] += w3 * v
            co += 4
        while co < c_out:
            d0 = out[n, co].reshape(oh_n * ow_n)[start : start + width]
            b0 = bp[co]
            for i in range(width):
                d0[i] = b0
            for m in range(c_mid):
                w0 = wp[co, m]
                src_row = mid[m]
                for i in range(width):
                    d0[i] += w0 * src_row[i]
            co += 1


#: the separable kernel's runs are whole multiples of this many values (a 512-bit vector of
#: float32): a run of 135 values left a scalar tail of 7
RUN = 16


@njit(**NJIT_OPTIONS)
def _axpy(dst, d0, src, s0, count, a):
    """``dst[d0 + i] += a * src[s0 + i]`` for ``i < count``, unsigned indices (so LLVM
    vectorises it: with signed ones every access tests for a negative index)."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    for i in range(np.uint64(max(0, count))):
        dst[d + i] += a * src[s + i]


@njit(**NJIT_OPTIONS)
def _axpy3(dst, d0, src, s0, s1, s2, count, a0, a1, a2):
    """``dst[d0 + i] += a0 * src[s0 + i] + a1 * src[s1 + i] + a2 * src[s2 + i]``: three taps in
    one pass over ``dst`` (tap by tap, loading and storing ``dst`` once per tap took most of
    the time on rows of a hundred values)."""
    d = np.uint64(d0)
    t0 = np.uint64(s0)
    t1 = np.uint64(s1)
    t2 = np.uint64(s2)
    for i in range(np.uint64(max(0, count))):
        dst[d + i] += a0 * src[t0 + i] + a1 * src[t1 + i] + a2 * src[t2 + i]


@njit(**NJIT_OPTIONS)
def _axpy2(dst, d0, src, s0, s1, count, a0, a1):
    """``dst[d0 + i] += a0 * src[s0 + i] + a1 * src[s1 + i]`` (see :func:`_axpy3`)."""
    d = np.uint64(d0)
    t0 = np.uint64(s0)
    t1 = np.uint64(s1)
    for i in range(np.uint64(max(0, count))):
        dst[d + i] += a0 * src[t0 + i] + a1 * src[t1 + i]


@njit(inline="always", **NJIT_OPTIONS)
def _taps(dst, d0, src, starts, count, weights, n_taps):
    """``dst[d0 + i] += sum over t < n_taps of weights[t] * src[starts[t] + i]``, three taps per
    pass (the last pass two or one)."""
    t = 0
    while t + 3 <= n_taps:
        _axpy3(
            dst,
            d0,
            src,
            starts[t],
            starts[t + 1],
            starts[t + 2],
            count,
            weights[t],
            weights[t + 1],
            weights[t + 2],
        )
        t += 3
    if t + 2 == n_taps:
        _axpy2(dst, d0, src, starts[t], starts[t + 1], count, weights[t], weights[t + 1])
    elif t + 1 == n_taps:
        _axpy(dst, d0, src, starts[t], count, weights[t])


@njit(**NJIT_OPTIONS)
def _row3(dst, d0, src, s0, count, a0, a1, a2, step):
    """``dst[d0 + i] += a0 * src[j] + a1 * src[j + 1] + a2 * src[j + 2]``, ``j = s0 + step *
    i``: three consecutive taps of a row pass at a column stride (steps 1 and 2 literal, so
    that LLVM vectorises the loads)."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    n = np.uint64(max(0, count))
    one = np.uint64(1)
    two = np.uint64(2)
    if step == 1:
        for i in range(n):
            dst[d + i] += a0 * src[s + i] + a1 * src[s + i + one] + a2 * src[s + i + two]
    elif step == 2:
        for i in range(n):
            j = s + two * i
            dst[d + i] += a0 * src[j] + a1 * src[j + one] + a2 * src[j + two]
    else:
        st = np.uint64(step)
        for i in range(n):
            j = s + st * i
            dst[d + i] += a0 * src[j] + a1 * src[j + one] + a2 * src[j + two]


@njit(**NJIT_OPTIONS)
def _row1(dst, d0, src, s0, count, a0, step):
    """One tap of a row pass at a column stride (see :func:`_row3`)."""
    d = np.uint64(d0)
    s = np.uint64(s0)
    n = np.uint64(max(0, count))
    if step == 1:
        for i in range(n):
            dst[d + i] += a0 * src[s + i]
    elif step == 2:
        two = np.uint64(2)
        for i in range(n):
            dst[d + i] += a0 * src[s + two * i]
    else:
        st = np.uint64(step)
        for i in range(n):
            dst[d + i] += a0 * src[s + st * i]


@njit(inline="always", **NJIT_OPTIONS)
def _row_pass(dst, d0, src, count, taps, n_taps, step):
    """``dst[d0 + i] += sum over t of taps[t] * src[step * i + t]``: three taps per sweep."""
    t = 0
    while t + 3 <= n_taps:
        _row3(dst, d0, src, t, count, taps[t], taps[t + 1], taps[t + 2], step)
        t += 3
    while t < n_taps:
        _row1(dst, d0, src, t, count, taps[t], step)
        t += 1


@njit(**NJIT_PARALLEL_OPTIONS)
def _spatially_separable(x, col, row, out, sh, sw, ph, pw, row_blocks):
    """Filter every channel with ``sum_r col[:, r] row[r, :]`` by a column pass and a row pass.

    x: (N, C, H, W), unpadded; col: (R, KH) (the column factors, one row per term); row: (R, KW);
    out: (N, C, OH, OW), overwritten; ``ph``, ``pw``: the zero padding above and to the left of
    ``x`` (below and to the right it follows from ``out``'s size). The work is ``N * C *
    row_blocks`` tasks, each a block of output rows of one plane, so that a few planes still
    give every thread work. For each output row and term, the column pass adds the ``KH`` input
    rows the row reads, each times its ``col`` factor, into ``tmp`` (the ``(OW - 1) * sw + KW``
    columns of the padded row that the row pass reads; input rows in the padding are left out
    and padding columns stay zero); the row pass adds ``tmp`` shifted by each tap, times its
    ``row`` factor, into the output row (at a column stride ``sw``, every ``sw``-th value of
    ``tmp``). Both passes add three taps per sweep over a row (:func:`_taps`, :func:`_row_pass`),
    each sweep one vectorised loop over a whole number of ``RUN`` values (the row pass only at
    strides 1 and 2). The row pass has helpers of its own, whose three taps read consecutive
    values of one base: at stride 2 LLVM loads them as one interleaved group, which it did not
    do for three independent starts (16 channels 128x128, 9x9 at stride 2: 0.27 against 0.43
    ms). Each output is computed by the same operations in the same order whatever the number
    of threads.
    """
    n_batch, channels, h_in, w_in = x.shape
    oh_n, ow_n = out.shape[2], out.shape[3]
    rank, kh_n = col.shape
    kw_n = row.shape[1]
    wc = (ow_n - 1) * sw + kw_n
    # the columns of tmp that hold input (the others are padding: zero)
    j_lo = min(wc, pw)
    j_hi = max(j_lo, min(wc, pw + w_in))
    cnt_r = (j_hi - j_lo + RUN - 1) // RUN * RUN
    # the row pass's runs: whole vectors at column strides 1 and 2 (at a larger stride the
    # loads are gathers anyway, and the rounding would read up to 15 strides past the row)
    ow_r = (ow_n + RUN - 1) // RUN * RUN if sw <= 2 else ow_n
    x_flat = x.reshape(-1)
    out_flat = out.reshape(-1)
    per_block = (oh_n + row_blocks - 1) // row_blocks
    for task in prange(n_batch * channels * row_blocks):
        plane = task // row_blocks
        oh0 = (task - plane * row_blocks) * per_block
        oh1 = min(oh_n, oh0 + per_block)
        # whole vectors: the runs are rounded up to RUN values; the extra ones land in tmp's
        # slack or its padding columns (zeroed again), or in the block's next rows of the
        # output, which are zeroed after; a row whose extra values would reach past the
        # block's last row (another task's) goes through acc, and so does the last row
        tmp = np.zeros(max(wc, (ow_r - 1) * sw + kw_n) + RUN, dtype=out.dtype)
        acc = np.empty(ow_r, dtype=out.dtype)
        starts = np.empty(kh_n, dtype=np.int64)
        weights = np.empty(kh_n, dtype=out.dtype)
        for oh in range(oh0, oh1):
            last = oh == oh1 - 1 or (oh1 - oh) * ow_n < ow_r
            dst = acc if last else out_flat
            o = 0 if last else (plane * oh_n + oh) * ow_n
            _zero_run(dst, o, o + ow_r)
            for r in range(rank):
                # the input rows inside the input (the others are padding: left out)
                n_taps = 0
                for kh in range(kh_n):
                    y = oh * sh + kh - ph
                    if 0 <= y < h_in:
                        starts[n_taps] = (plane * h_in + y) * w_in + j_lo - pw
                        weights[n_taps] = col[r, kh]
                        n_taps += 1
                # past the input's last row, only the values it has
                count = cnt_r
                if n_taps > 0 and starts[n_taps - 1] + cnt_r > x_flat.size:
                    count = j_hi - j_lo
                _zero_run(tmp, j_lo, j_lo + count)
                _taps(tmp, j_lo, x_flat, starts, count, weights, n_taps)
                _zero_run(tmp, j_hi, min(wc, j_lo + count))
                _row_pass(dst, o, tmp, ow_r, row[r], kw_n, sw)
            if last:  # (an earlier row's extra values may be here: this overwrites them)
                _copy_run(out_flat, (plane * oh_n + oh) * ow_n, acc, 0, ow_n, 1)

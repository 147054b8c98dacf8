"""Numba kernels for plain convolution and im2col/col2im.

Every kernel takes C-contiguous arrays that the public wrappers have already validated and
allocated; kernels only loop. The direct kernels and col2im get padded inputs, so every index they
form is in range by construction: ``(out - 1) * stride + (k - 1) * dilation < padded size`` is
exactly the condition :func:`convlab.shapes.conv_output_size` enforces. The im2col kernels of
``conv2d`` (``_im2col_block``, ``_im2col_gemm``) take the unpadded input and the padding above and
to the left, and write zeros for the positions that fall in the padding instead of reading them.
"""

import numpy as np
from numba import njit, prange

from ._blas import gemm_call
from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS

#: output channels the direct kernel computes together: every input element it loads feeds this
#: many accumulators, so the loads per multiply-add drop from ~1 to ~1/4 (register blocking)
OC_BLOCK = 4
#: elements of the flattened output one stride-1 task accumulates (4 x 512 float32 = 8 KiB, well
#: inside L1, so the accumulators never leave the cache while all input channels stream past)
FLAT_SEGMENT = 512


# The four helpers below are the innermost loops of ``_conv2d_direct``. Each applies up to three
# kernel taps of one kernel row to a run of ``n`` accumulators, for one output channel (``_x1``) or
# four (``_x4``), with the weights held in scalars. Every accumulator is updated ``acc += w * x``
# once per tap, taps in order, so each output element is summed in exactly the order of the plain
# loop "bias, then every (ci, kh, kw)": the blocking changes the speed, not a single bit of the
# result (fastmath is off, so LLVM may not reassociate). ``inline="always"`` lets the stride-1
# call sites pass a literal 1, which LLVM folds into unit-stride vector loads.


@njit(inline="always", **NJIT_OPTIONS)
def _taps3_x4(
    a0,
    a1,
    a2,
    a3,
    src,
    j0,
    sw,
    c0,
    dw,
    n,
    w00,
    w01,
    w02,
    w10,
    w11,
    w12,
    w20,
    w21,
    w22,
    w30,
    w31,
    w32,
):
    c1 = c0 + dw
    c2 = c1 + dw
    for i in range(n):
        j = j0 + i * sw
        x0 = src[j + c0]
        x1 = src[j + c1]
        x2 = src[j + c2]
        acc = a0[i]
        acc += w00 * x0
        acc += w01 * x1
        acc += w02 * x2
        a0[i] = acc
        acc = a1[i]
        acc += w10 * x0
        acc += w11 * x1
        acc += w12 * x2
        a1[i] = acc
        acc = a2[i]
        acc += w20 * x0
        acc += w21 * x1
        acc += w22 * x2
        a2[i] = acc
        acc = a3[i]
        acc += w30 * x0
        acc += w31 * x1
        acc += w32 * x2
        a3[i] = acc


@njit(inline="always", **NJIT_OPTIONS)
def _taps1_x4(a0, a1, a2, a3, src, j0, sw, c0, n, w0, w1, w2, w3):
    for i in range(n):
        x0 = src[j0 + i * sw + c0]
        a0[i] += w0 * x0
        a1[i] += w1 * x0
        a2[i] += w2 * x0
        a3[i] += w3 * x0


@njit(inline="always", **NJIT_OPTIONS)
def _taps3_x1(a0, src, j0, sw, c0, dw, n, w00, w01, w02):
    c1 = c0 + dw
    c2 = c1 + dw
    for i in range(n):
        j = j0 + i * sw
        acc = a0[i]
        acc += w00 * src[j + c0]
        acc += w01 * src[j + c1]
        acc += w02 * src[j + c2]
        a0[i] = acc


@njit(inline="always", **NJIT_OPTIONS)
def _taps1_x1(a0, src, j0, sw, c0, n, w0):
    for i in range(n):
        a0[i] += w0 * src[j0 + i * sw + c0]


@njit(inline="always", **NJIT_OPTIONS)
def _accumulate_x4(
    xp, w, a0, a1, a2, a3, n_img, cin0, o0, o1, o2, o3, row0, row_step, j0, sw, dh, dw, count
):
    """Add every (ci, kh, kw) term to four accumulator runs of output channels ``o0..o3``.

    Run element ``i`` reads input element ``row0 + kh * dh * row_step`` (a row of ``xp``'s
    flattened plane) at column ``j0 + i * sw + kw * dw``.
    """
    c_per_group, kh_n, kw_n = w.shape[1], w.shape[2], w.shape[3]
    for ci in range(c_per_group):
        plane = xp[n_img, cin0 + ci].ravel()
        for kh in range(kh_n):
            start = (row0 + kh * dh) * row_step + j0
            kw = 0
            while kw + 3 <= kw_n:
                _taps3_x4(
                    a0,
                    a1,
                    a2,
                    a3,
                    plane,
                    start,
                    sw,
                    kw * dw,
                    dw,
                    count,
                    w[o0, ci, kh, kw],
                    w[o0, ci, kh, kw + 1],
                    w[o0, ci, kh, kw + 2],
                    w[o1, ci, kh, kw],
                    w[o1, ci, kh, kw + 1],
                    w[o1, ci, kh, kw + 2],
                    w[o2, ci, kh, kw],
                    w[o2, ci, kh, kw + 1],
                    w[o2, ci, kh, kw + 2],
                    w[o3, ci, kh, kw],
                    w[o3, ci, kh, kw + 1],
                    w[o3, ci, kh, kw + 2],
                )
                kw += 3
            while kw < kw_n:
                _taps1_x4(
                    a0,
                    a1,
                    a2,
                    a3,
                    plane,
                    start,
                    sw,
                    kw * dw,
                    count,
                    w[o0, ci, kh, kw],
                    w[o1, ci, kh, kw],
                    w[o2, ci, kh, kw],
                    w[o3, ci, kh, kw],
                )
                kw += 1


@njit(inline="always", **NJIT_OPTIONS)
def _accumulate_x1(xp, w, a0, n_img, cin0, o0, row0, row_step, j0, sw, dh, dw, count):
    """:func:`_accumulate_x4` for a single output channel."""
    c_per_group, kh_n, kw_n = w.shape[1], w.shape[2], w.shape[3]
    for ci in range(c_per_group):
        plane = xp[n_img, cin0 + ci].ravel()
        for kh in range(kh_n):
            start = (row0 + kh * dh) * row_step + j0
            kw = 0
            while kw + 3 <= kw_n:
                _taps3_x1(
                    a0,
                    plane,
                    start,
                    sw,
                    kw * dw,
                    dw,
                    count,
                    w[o0, ci, kh, kw],
                    w[o0, ci, kh, kw + 1],
                    w[o0, ci, kh, kw + 2],
                )
                kw += 3
            while kw < kw_n:
                _taps1_x1(a0, plane, start, sw, kw * dw, count, w[o0, ci, kh, kw])
                kw += 1


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv2d_direct(xp, w, b, out, sh, sw, dh, dw, groups):
    """Direct 2-D cross-correlation over a padded input, register- and cache-blocked.

    xp: (N, C_in, Hp, Wp) padded input; w: (C_out, C_in/groups, KH, KW); b: (C_out,) bias (zeros
    when there is none); out: (N, C_out, OH, OW), overwritten.

    The arithmetic is the plain loop ``out[n, oc, oh, ow] = b[oc] + sum over (ci, kh, kw) of
    w[oc, ci, kh, kw] * xp[n, g*C_in/groups + ci, oh*sh + kh*dh, ow*sw + kw*dw]``, summed in that
    order; only the schedule differs (the seed article 003 explains why the naive schedule is
    cache-unfriendly):

    * register blocking: ``OC_BLOCK`` output channels of a group are computed together (when the
      group has that many), and up to three taps of a kernel row are applied per pass, so each
      loaded input element feeds up to 12 multiply-adds held in registers;
    * stride 1 ("flat" schedule): output row ``oh`` is stored ``Wp`` wide, so output element
      ``q = oh * Wp + ow`` reads input ``q + kh * dh * Wp + kw * dw`` of the flattened plane for
      every row: each task accumulates a ``FLAT_SEGMENT``-long run of this flattened output
      (several rows at once for small images: long, unit-stride, vectorisable loops) in a buffer
      that stays in L1, then keeps the ``ow < OW`` elements. The ``Wp - OW`` extra columns per row
      are the price (3.6% for a 56x56 3x3 "same" layer);
    * other strides: one task per (image, channel block, output row), accumulating straight into
      the output rows (a copy of the loops specialised for stride 2 measured no faster and doubled
      the compile time, so there is none).

    Tasks are (image, channel block, segment or row) triples, spread over the threads by
    ``prange``.
    """
    n_batch, c_out, oh_n, ow_n = out.shape
    c_per_group = w.shape[1]
    out_per_group = c_out // groups
    block = OC_BLOCK if out_per_group >= OC_BLOCK else 1
    blocks_per_group = (out_per_group + block - 1) // block
    n_blocks = groups * blocks_per_group
    if sh == 1 and sw == 1:
        wp = xp.shape[3]
        total = (oh_n - 1) * wp + ow_n
        n_seg = (total + FLAT_SEGMENT - 1) // FLAT_SEGMENT
        n_tasks = n_batch * n_blocks * n_seg
    else:
        n_seg = 0
        wp = 0
        total = 0
        n_tasks = n_batch * n_blocks * oh_n
    for task in prange(n_tasks):
        sub = n_seg if n_seg > 0 else oh_n
        n = task // (n_blocks * sub)
        blk = (task // sub) % n_blocks
        part = task % sub
        g = blk // blocks_per_group
        first = g * out_per_group + (blk % blocks_per_group) * block
        last = g * out_per_group + out_per_group - 1
        cin0 = g * c_per_group
        # channels past the group's end (a partial block) repeat the last channel into scratch
        o0 = first
        o1 = min(first + 1, last)
        o2 = min(first + 2, last)
        o3 = min(first + 3, last)
        if n_seg > 0:
            q0 = part * FLAT_SEGMENT
            count = min(FLAT_SEGMENT, total - q0)
            acc = np.empty((block, count), dtype=out.dtype)
            for j in range(block):
                bias = b[min(first + j, last)]
                for i in range(count):
                    acc[j, i] = bias
            if block == OC_BLOCK:
                _accumulate_x4(
                    xp,
                    w,
                    acc[0],
                    acc[1],
                    acc[2],
                    acc[3],
                    n,
                    cin0,
                    o0,
                    o1,
                    o2,
                    o3,
                    0,
                    wp,
                    q0,
                    1,
                    dh,
                    dw,
                    count,
                )
            else:
                _accumulate_x1(xp, w, acc[0], n, cin0, o0, 0, wp, q0, 1, dh, dw, count)
            for j in range(block):
                oc = first + j
                if oc > last:
                    break
                plane = out[n, oc]
                for i in range(count):
                    q = q0 + i
                    ow = q % wp
                    if ow < ow_n:
                        plane[q // wp, ow] = acc[j, i]
        else:
            oh = part
            row0 = oh * sh
            if block == OC_BLOCK:
                scratch = np.empty((OC_BLOCK, ow_n), dtype=out.dtype)
                r0 = out[n, o0, oh]
                r1 = out[n, o1, oh] if first + 1 <= last else scratch[1]
                r2 = out[n, o2, oh] if first + 2 <= last else scratch[2]
                r3 = out[n, o3, oh] if first + 3 <= last else scratch[3]
                b0, b1, b2, b3 = b[o0], b[o1], b[o2], b[o3]
                for i in range(ow_n):
                    r0[i] = b0
                    r1[i] = b1
                    r2[i] = b2
                    r3[i] = b3
                _accumulate_x4(
                    xp,
                    w,
                    r0,
                    r1,
                    r2,
                    r3,
                    n,
                    cin0,
                    o0,
                    o1,
                    o2,
                    o3,
                    row0,
                    xp.shape[3],
                    0,
                    sw,
                    dh,
                    dw,
                    ow_n,
                )
            else:
                r0 = out[n, o0, oh]
                b0 = b[o0]
                for i in range(ow_n):
                    r0[i] = b0
                _accumulate_x1(xp, w, r0, n, cin0, o0, row0, xp.shape[3], 0, sw, dh, dw, ow_n)


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv3d_direct(xp, w, b, out, sd, sh, sw, dd, dh, dw, groups):
    """Direct 3-D cross-correlation over a padded input; the 2-D kernel with a depth loop.

    xp: (N, C_in, Dp, Hp, Wp); w: (C_out, C_in/groups, KD, KH, KW); out: (N, C_out, OD, OH, OW).
    """
    n_batch, c_out, od_n, oh_n, ow_n = out.shape
    c_per_group = w.shape[1]
    kd_n, kh_n, kw_n = w.shape[2], w.shape[3], w.shape[4]
    out_per_group = c_out // groups
    for task in prange(n_batch * c_out):
        n = task // c_out
        oc = task % c_out
        g = oc // out_per_group
        vol = out[n, oc]
        bias = b[oc]
        for od in range(od_n):
            for oh in range(oh_n):
                for ow in range(ow_n):
                    vol[od, oh, ow] = bias
        for ci in range(c_per_group):
            src = xp[n, g * c_per_group + ci]
            for kd in range(kd_n):
                for kh in range(kh_n):
                    for kw in range(kw_n):
                        wv = w[oc, ci, kd, kh, kw]
                        col0 = kw * dw
                        for od in range(od_n):
                            for oh in range(oh_n):
                                row = src[od * sd + kd * dd, oh * sh + kh * dh]
                                dst = vol[od, oh]
                                for ow in range(ow_n):
                                    dst[ow] += wv * row[ow * sw + col0]


@njit(**NJIT_PARALLEL_OPTIONS)
def _im2col(xp, cols, kh_n, kw_n, sh, sw, dh, dw, oh_n, ow_n):
    """Unfold a padded input into columns, in ``torch.nn.functional.unfold`` order.

    xp: (N, C, Hp, Wp); cols: (N, C*KH*KW, OH*OW) with row ``(c*KH + kh)*KW + kw`` and column
    ``oh*OW + ow`` holding ``xp[n, c, oh*sh + kh*dh, ow*sw + kw*dw]``.
    """
    n_batch, channels = xp.shape[0], xp.shape[1]
    for task in prange(n_batch * channels):
        n = task // channels
        c = task % channels
        src = xp[n, c]
        for kh in range(kh_n):
            for kw in range(kw_n):
                dst = cols[n, (c * kh_n + kh) * kw_n + kw]
                for oh in range(oh_n):
                    row = src[oh * sh + kh * dh]
                    base = oh * ow_n
                    for ow in range(ow_n):
                        dst[base + ow] = row[ow * sw + kw * dw]


# The im2col helpers below index flat arrays with unsigned (np.uint64) offsets, for two reasons.
# A signed index that might be negative gets Numba's wraparound select (``i < 0 ? i + n : i``)
# in every iteration, which stops LLVM from vectorising a copy. And every array view made per
# output row (a slice, or an array passed to an ``inline="always"`` function) updates the
# reference count of the array it views, an atomic add on memory that both threads share (with
# such views per row, the 256-channel 14x14 layer took 1.43 ms on two threads and 1.92 ms on one;
# without, 1.09 and 1.90). So the hot loops make no views: ``_zero_run``, ``_copy_run`` and the
# other ``*_run``/``_rows`` helpers are ordinary (not inlined at Numba's level) functions, which
# take their arrays without touching the count, and every offset they get is non-negative by
# construction.


@njit(**NJIT_OPTIONS)
def _zero_run(cols, start, stop):
    """``cols[start:stop] = 0`` (nothing if ``stop <= start``)."""
    first = np.uint64(start)
    for i in range(np.uint64(max(0, stop - start))):
        cols[first + i] = 0


@njit(**NJIT_OPTIONS)
def _copy_run(cols, dst, xf, src, count, step):
    """``cols[dst + i] = xf[src + i * step]`` for ``i < count``; steps 1 and 2 literal."""
    d = np.uint64(dst)
    s = np.uint64(src)
    n = np.uint64(max(0, count))
    if step == 1:
        for i in range(n):
            cols[d + i] = xf[s + i]
    elif step == 2:
        two = np.uint64(2)
        for i in range(n):
            cols[d + i] = xf[s + two * i]
    else:
        st = np.uint64(step)
        for i in range(n):
            cols[d + i] = xf[s + st * i]


@njit(**NJIT_OPTIONS)
def _copy_rows(cols, dst, xf, src, n_rows, width, lo, hi, step, src_stride):
    """``n_rows`` rows of ``width`` columns: row ``i`` is ``cols[dst + i * width:][:width]``, zeros
    outside ``[lo, hi)`` and ``xf[src + i * src_stride + j * step]`` at column ``j`` inside."""
    for r in range(max(0, n_rows)):
        d = np.uint64(dst + r * width)
        s = np.uint64(src + r * src_stride + lo * step)
        for j in range(np.uint64(lo)):
            cols[d + j] = 0
        dm = d + np.uint64(lo)
        n = np.uint64(hi - lo)
        if step == 1:
            for i in range(n):
                cols[dm + i] = xf[s + i]
        elif step == 2:
            two = np.uint64(2)
            for i in range(n):
                cols[dm + i] = xf[s + two * i]
        else:
            st = np.uint64(step)
            for i in range(n):
                cols[dm + i] = xf[s + st * i]
        for j in range(np.uint64(hi), np.uint64(width)):
            cols[d + j] = 0


@njit(inline="always", **NJIT_OPTIONS)
def _im2col_block(x, n, c0, c1, cols, ld, kh_n, kw_n, sh, sw, dh, dw, ph, pw, ow_n, p0, p1):
    """:func:`_im2col_split_block` of the input as it lies (not split)."""
    _im2col_split_block(
        x, n, c0, c1, cols, ld, kh_n, kw_n, sh, sw, dh, dw, ph, pw, ow_n, p0, p1, x.shape[3], False
    )


@njit(inline="always", **NJIT_OPTIONS)
def _im2col_split_block(
    x, n, c0, c1, cols, ld, kh_n, kw_n, sh, sw, dh, dw, ph, pw, ow_n, p0, p1, w_in, split
):
    """Columns ``p0 <= p < p1`` (output position ``p = oh * OW + ow``) of image ``n``'s im2col,
    for the input channels ``c0 <= c < c1``.

    x: (N, C, H, W), C-contiguous and *unpadded*: the ``ph`` rows above and ``pw`` columns left
    of it (and whatever the output needs below and right) are zeros that are written, never read.
    cols: flat; row ``r = ((c - c0) * KH + kh) * KW + kw`` (as in :func:`_im2col`) starts at
    ``r * ld`` and its element ``p - p0`` is input ``(oh * sh + kh * dh - ph, ow * sw + kw * dw -
    pw)`` of channel ``c``, or 0 outside the image. The block may start and end mid-row.

    When ``sh * W == sw * OW`` (stride 1 with "same" padding, the common case) output position
    ``q`` reads plane element ``sw * q + off`` for a constant ``off`` per tap: every row of cols is
    then one long copy, with zeros written afterwards over the few positions whose column falls in
    the padding. Otherwise each output row is a zero head, a copied middle and a zero tail, and the
    block's whole rows go to :func:`_copy_rows` in one call (1.4x faster than a call per row for
    the 14-wide rows of a 1x1 stride-2 layer).

    ``w_in`` is the input's width. With ``split`` (stride 2 across), every row of ``x`` holds the
    input row's even columns, then its odd ones (:func:`_split_rows`; ``x.shape[3]`` is twice
    ``(w_in + 1) // 2``): a tap reads every other column, all of one parity, so each copy reads
    one run of consecutive elements instead of every second one.
    """
    channels, h_in = x.shape[1], x.shape[2]
    row_len = x.shape[3]  # w_in, or both halves of a split row
    half = row_len // 2
    plane_size = h_in * row_len
    xf = x.reshape(-1)
    oh_first = p0 // ow_n
    oh_last = (p1 - 1) // ow_n
    flat = sh * w_in == sw * ow_n and not split
    step = 1 if split else sw
    for c in range(c0, c1):
        plane = (n * channels + c) * plane_size
        for kh in range(kh_n):
            row0 = kh * dh - ph  # input row of output row 0
            for kw in range(kw_n):
                d = ((c - c0) * kh_n + kh) * kw_n + kw
                d = d * ld - p0  # cols index of position p is d + p
                col0 = kw * dw - pw  # input column of output column 0
                # where in a row of x output column 0 reads (maybe outside the row; never read)
                col_at = (col0 % 2) * half + (col0 - col0 % 2) // 2 if split else col0
                # output columns lo <= ow < hi read inside the image: 0 <= ow * sw + col0 < W
                lo = min(ow_n, max(0, -(col0 // sw)))
                hi = max(lo, min(ow_n, -((col0 - w_in) // sw)))
                if flat:
                    # output rows oh_lo <= oh < oh_hi read inside the image
                    oh_lo = max(0, -(row0 // sh))
                    oh_hi = min(oh_last + 1, -((row0 - h_in) // sh))
                    off = row0 * w_in + col0
                    # the run [a, b): inside those rows, and reading inside the plane
                    a = min(p1, max(p0, oh_lo * ow_n, -(off // sw)))
                    b = max(a, min(p1, oh_hi * ow_n, -((off - plane_size) // sw)))
                    _zero_run(cols, d + p0, d + a)
                    _copy_run(cols, d + a, xf, plane + sw * a + off, b - a, sw)
                    _zero_run(cols, d + b, d + p1)
                    if (lo > 0 or hi < ow_n) and b > a:
                        # the run also copied the neighbouring rows' ends into the padding
                        for oh in range(a // ow_n, (b - 1) // ow_n + 1):
                            q = oh * ow_n
                            _zero_run(cols, d + max(q, a), d + min(q + lo, b))
                            _zero_run(cols, d + max(q + hi, a), d + min(q + ow_n, b))
                    continue
                # whole output rows [full0, full1) in one call; the block's partial first and
                # last rows one at a time
                full0 = oh_first if p0 == oh_first * ow_n else oh_first + 1
                full1 = max(full0, oh_last + 1 if p1 == (oh_last + 1) * ow_n else oh_last)
                for oh in range(oh_first, oh_last + 1):
                    if oh == full0:
                        # rows above the image, rows inside it, rows below it
                        in0 = min(max(full0, -(row0 // sh)), full1)
                        in1 = max(in0, min(full1, -((row0 - h_in) // sh)))
                        _zero_run(cols, d + full0 * ow_n, d + in0 * ow_n)
                        _copy_rows(
                            cols,
                            d + in0 * ow_n,
                            xf,
                            plane + (in0 * sh + row0) * row_len + col_at,
                            in1 - in0,
                            ow_n,
                            lo,
                            hi,
                            step,
                            sh * row_len,
                        )
                        _zero_run(cols, d + in1 * ow_n, d + full1 * ow_n)
                    if full0 <= oh < full1:
                        continue
                    q = oh * ow_n
                    ow0 = p0 - q if oh == oh_first else 0
                    ow1 = p1 - q if oh == oh_last else ow_n
                    ih = oh * sh + row0
                    if ih < 0 or ih >= h_in:
                        _zero_run(cols, d + q + ow0, d + q + ow1)
                        continue
                    head = min(max(lo, ow0), ow1)
                    stop = max(min(hi, ow1), head)
                    _zero_run(cols, d + q + ow0, d + q + head)
                    _copy_run(
                        cols,
                        d + q + head,
                        xf,
                        plane + ih * row_len + head * step + col_at,
                        stop - head,
                        step,
                    )
                    _zero_run(cols, d + q + stop, d + q + ow1)


@njit(**NJIT_OPTIONS)
def _split_rows(x, n, c0, nch, r0, r1, xs):
    """``xs[0, c, r - r0]`` = row ``r`` of channel ``c0 + c`` of image ``n`` of ``x``, its even
    columns first, then its odd ones, for ``r0 <= r < r1`` and ``c < nch`` (see
    :func:`_im2col_split_block`). With an odd width the last odd slot is left as it was."""
    w_in = x.shape[3]
    half = xs.shape[3] // 2
    odd = w_in // 2
    for c in range(nch):
        for r in range(r0, r1):
            for j in range(half):
                xs[0, c, r - r0, j] = x[n, c0 + c, r, 2 * j]
            for j in range(odd):
                xs[0, c, r - r0, half + j] = x[n, c0 + c, r, 2 * j + 1]


@njit(**NJIT_OPTIONS)
def _fill_run(a, start, count, value):
    """``a[start:start + count] = value``."""
    first = np.uint64(start)
    for i in range(np.uint64(max(0, count))):
        a[first + i] = value


@njit(**NJIT_PARALLEL_OPTIONS)
def _im2col_gemm(
    gemm,
    x,
    w2,
    b,
    out,
    kh_n,
    kw_n,
    sh,
    sw,
    dh,
    dw,
    ph,
    pw,
    groups,
    block,
    k_parts,
    pieces,
    segments,
    chunk,
    cols_buf,
    partial,
    split_buf,
):
    """im2col + GEMM, with every thread building and multiplying its own blocks of columns.

    gemm: BLAS ``sgemm``/``dgemm`` of ``x``'s dtype (:func:`convlab._blas.blas_gemm`; the caller
    holds BLAS to one thread, :func:`convlab._blas.one_blas_thread`); x: (N, C_in, H, W), the
    unpadded input, read with ``ph``/``pw`` zeros above/left (see :func:`_im2col_block`); w2:
    (C_out, C_in/groups * KH * KW) weight matrix; b: (C_out,); out: (N, C_out, OH, OW), overwritten.

    The work is ``N * pieces * k_parts`` items: every image's ``OH * OW`` output positions cut
    into ``pieces`` contiguous pieces, times ``k_parts`` parts of every group's input channels
    (the GEMM's K). A piece is ``segments`` blocks: the image's positions are cut into ``pieces *
    segments`` blocks at multiples of 16 positions (BLAS works on 16 rows at a time: a block of
    262 positions would end in a slow tail of 6), each at most ``block`` positions. Thread ``t``
    of ``cols_buf.shape[0]`` (``prange``) takes a contiguous run of items. For each block of an
    item and each group it writes the columns of ``chunk`` of the item's channels at a time
    into its row of ``cols_buf`` (rows of the block's width; a chunk's columns are still in L2
    when BLAS packs them) and multiplies them by the matching weight rows straight into the
    block of output, later chunks adding to it (``beta = 1``): part 0 into ``out``, filled with
    the bias first (``beta = 1``), part ``j`` into ``partial[j - 1]`` (N * C_out * OH * OW,
    first chunk ``beta = 0``), which are added to ``out`` afterwards, in the order of ``j``. The
    items, their blocks and the order of the sums depend on ``pieces``, ``segments``,
    ``k_parts`` and ``chunk`` only, which the caller derives from the layer's shapes
    (:func:`convlab.algorithms._im2col_plan`): the result is the same bits whatever the number
    of threads.

    BLAS's leading dimensions (the output's row length ``OH * OW``) let it write
    the block in place: no product buffer and no copy. In column-major BLAS terms,
    ``out[n, group, block]^T (T x C_out/groups, ld OH*OW) += cols^T (T x k, ld T) @
    w2[group, part]^T (k x C_out/groups, ld K)``.

    One part (``k_parts == 1``) splits the positions among the threads; several parts (split-K)
    are for layers with few positions (a 14x14 map has 196): split by positions, each thread
    would multiply a thin block by the whole weight matrix (BLAS runs 121 GFLOP/s on 98 x 256 x
    2304, 137 on 196 x 256 x 1152). A 1x1 kernel with stride 1 and no padding needs no columns at
    all: BLAS reads the input's rows in place (``lda = H * W``).
    """
    n_threads = cols_buf.shape[0]
    n_batch, c_out = out.shape[0], out.shape[1]
    ow_n = out.shape[3]
    positions = out.shape[2] * ow_n
    c_in = x.shape[1]
    c_per_group = c_in // groups
    taps = kh_n * kw_n
    k_rows = c_per_group * taps  # w2's row length
    out_per_group = c_out // groups
    out_flat = out.reshape(-1)
    w_flat = w2.reshape(-1)
    x_flat = x.reshape(-1)
    part_flat = partial.reshape(-1)
    n_items = n_batch * pieces * k_parts
    in_place = (
        taps == 1
        and sh == 1
        and sw == 1
        and ph == 0
        and pw == 0
        and x.shape[2] * x.shape[3] == positions
    )
    split = split_buf.shape[1] > 0
    for t in prange(n_threads):
        cols = cols_buf[t]
        for item in range(n_items * t // n_threads, n_items * (t + 1) // n_threads):
            _im2col_gemm_item(
                gemm,
                x,
                x_flat,
                w_flat,
                b,
                out_flat,
                part_flat,
                cols,
                split_buf[t],
                split,
                item,
                k_parts,
                pieces,
                segments,
                chunk,
                positions,
                c_in,
                c_out,
                c_per_group,
                out_per_group,
                k_rows,
                taps,
                ow_n,
                kh_n,
                kw_n,
                sh,
                sw,
                dh,
                dw,
                ph,
                pw,
                groups,
                in_place,
            )
    if k_parts > 1:
        size = out_flat.shape[0]
        for t in prange(n_threads):
            i0 = size * t // n_threads
            i1 = size * (t + 1) // n_threads
            for j in range(k_parts - 1):
                _add_run(out_flat, part_flat, j * size, i0, i1 - i0)


@njit(**NJIT_OPTIONS)
def _im2col_gemm_item(
    gemm,
    x,
    x_flat,
    w_flat,
    b,
    out_flat,
    part_flat,
    cols,
    sbuf,
    split,
    item,
    k_parts,
    pieces,
    segments,
    chunk,
    positions,
    c_in,
    c_out,
    c_per_group,
    out_per_group,
    k_rows,
    taps,
    ow_n,
    kh_n,
    kw_n,
    sh,
    sw,
    dh,
    dw,
    ph,
    pw,
    groups,
    in_place,
):
    """One work item of :func:`_im2col_gemm`: part ``item % k_parts`` of the input channels over
    piece ``item // k_parts`` of the images' output positions, block by block."""
    part = item % k_parts
    n = item // k_parts // pieces
    piece = item // k_parts - n * pieces
    # this part's input channels of each group, and where its products go
    lo = c_per_group * part // k_parts
    hi = c_per_group * (part + 1) // k_parts
    target = out_flat if part == 0 else part_flat[(part - 1) * out_flat.shape[0] :]
    beta = 1.0 if part == 0 else 0.0  # onto the bias in out, else into a fresh partial sum
    units = (positions + 15) // 16  # the image's positions in runs of 16
    cuts = pieces * segments
    h_in, w_in = x.shape[2], x.shape[3]
    half = (w_in + 1) // 2  # a split row: its even columns, then its odd ones
    for seg in range(piece * segments, (piece + 1) * segments):
        p0 = min(positions, 16 * (units * seg // cuts))
        p1 = min(positions, 16 * (units * (seg + 1) // cuts))
        width = p1 - p0
        if width <= 0:
            continue
        if part == 0:
            for o in range(c_out):
                _fill_run(out_flat, (n * c_out + o) * positions + p0, width, b[o])
        for g in range(groups):
            for k0 in range(lo, hi, chunk):
                k1 = min(hi, k0 + chunk)
                c0 = g * c_per_group + k0
                if in_place:
                    a = x_flat[(n * c_in + c0) * positions + p0 :]
                else:
                    # the image and its channels, or (split) this chunk's split rows
                    src, src_n, src_c, pad_h = x, n, c0, ph
                    if split:
                        # the input rows the block reads, each split into even and odd columns
                        r0 = max(0, (p0 // ow_n) * sh - ph)
                        r1 = max(r0, min(h_in, ((p1 - 1) // ow_n) * sh - ph + (kh_n - 1) * dh + 1))
                        nch = k1 - k0
                        src = sbuf[: nch * (r1 - r0) * 2 * half].reshape(
                            (1, nch, r1 - r0, 2 * half)
                        )
                        _split_rows(x, n, c0, nch, r0, r1, src)
                        src_n, src_c, pad_h = 0, 0, ph + r0
                    _im2col_split_block(
                        src,
                        src_n,
                        src_c,
                        src_c + k1 - k0,
                        cols,
                        width,
                        kh_n,
                        kw_n,
                        sh,
                        sw,
                        dh,
                        dw,
                        pad_h,
                        pw,
                        ow_n,
                        p0,
                        p1,
                        w_in,
                        split,
                    )
                    a = cols
                gemm_call(
                    gemm,
                    "N",
                    "N",
                    width,
                    out_per_group,
                    (k1 - k0) * taps,
                    1.0,
                    a,
                    positions if in_place else width,
                    w_flat[g * out_per_group * k_rows + k0 * taps :],
                    k_rows,
                    beta if k0 == lo else 1.0,
                    target[(n * c_out + g * out_per_group) * positions + p0 :],
                    positions,
                )


@njit(**NJIT_OPTIONS)
def _add_run(dst, src, offset, start, count):
    """``dst[start:start + count] += src[offset + start:offset + start + count]``."""
    d = np.uint64(start)
    s = np.uint64(offset + start)
    for i in range(np.uint64(max(0, count))):
        dst[d + i] += src[s + i]


@njit(**NJIT_PARALLEL_OPTIONS)
def _col2im(cols, outp, kh_n, kw_n, sh, sw, dh, dw, oh_n, ow_n):
    """Fold columns back, summing overlaps: the adjoint of :func:`_im2col`.

    cols: (N, C*KH*KW, OH*OW); outp: (N, C, Hp, Wp) zero-initialised padded output. Each task owns
    one (image, channel) plane, so the scatter-add has no races.
    """
    n_batch, channels = outp.shape[0], outp.shape[1]
    for task in prange(n_batch * channels):
        n = task // channels
        c = task % channels
        dst = outp[n, c]
        for kh in range(kh_n):
            for kw in range(kw_n):
                src = cols[n, (c * kh_n + kh) * kw_n + kw]
                for oh in range(oh_n):
                    row = dst[oh * sh + kh * dh]
                    base = oh * ow_n
                    for ow in range(ow_n):
                        row[ow * sw + kw * dw] += src[base + ow]


@njit(**NJIT_PARALLEL_OPTIONS)
def _im2col_gemm_images(
    gemm,
    x,
    w2,
    b,
    out,
    kh_n,
    kw_n,
    sh,
    sw,
    dh,
    dw,
    ph,
    pw,
    groups,
    per_block,
    cols_buf,
    prod_buf,
    batch_last_buf,
):
    """im2col + GEMM for small maps: the columns of ``per_block`` whole images in one product.

    gemm, x, w2, b, out: as in :func:`_im2col_gemm`. The work is ``blocks * groups`` items, a
    block being ``per_block`` consecutive images (the last may hold fewer). For an item, a thread
    copies the group's channels of its images into ``batch_last_buf[t]`` with the image index
    last, ``(C/groups, H, W, images)``; writes the columns into ``cols_buf[t]``, row ``(c, i, j)``
    holding tap ``(i, j)`` of channel ``c`` at column ``position * images + image``, so that
    every (row, position) is one contiguous copy of ``images`` values (or zeros, for padding);
    multiplies the group's weight rows by them into ``prod_buf[t]`` (one BLAS call); and writes
    the products into ``out`` with the bias. A 4x4 map gave :func:`_im2col_gemm` a product 16
    positions wide per image and columns built in runs of 4; here both are ``per_block`` times
    wider. ``per_block`` depends on the layer's shapes only, and each output is one dot product
    over the same rows in the same order, so the result does not depend on the number of threads.
    """
    n_threads = cols_buf.shape[0]
    n_batch, c_out, oh_n, ow_n = out.shape[0], out.shape[1], out.shape[2], out.shape[3]
    positions = oh_n * ow_n
    c_in, h_in, w_in = x.shape[1], x.shape[2], x.shape[3]
    cpg = c_in // groups
    opg = c_out // groups
    taps = kh_n * kw_n
    k_rows = cpg * taps
    blocks = (n_batch + per_block - 1) // per_block
    items = blocks * groups
    w_flat = w2.reshape(-1)
    out_flat = out.reshape(-1)
    zero = x.dtype.type(0)
    # the input rows and columns the outputs read (the rest is never copied)
    h_in = max(0, min(h_in, (oh_n - 1) * sh - ph + (kh_n - 1) * dh + 1))
    w_used = max(0, min(w_in, (ow_n - 1) * sw - pw + (kw_n - 1) * dw + 1))
    # each input row split into its sw column phases (one for stride 1), so that the columns a
    # tap reads along an output row are consecutive: one copy per tap and output row
    half = (w_used + sw - 1) // sw
    x_flat = x.reshape(-1)
    image = c_in * x.shape[2] * x.shape[3]
    for t in prange(n_threads):
        cols = cols_buf[t]
        prod = prod_buf[t]
        xt = batch_last_buf[t]
        for item in range(items * t // n_threads, items * (t + 1) // n_threads):
            blk = item // groups
            g = item - blk * groups
            n0 = blk * per_block
            nb = min(n_batch, n0 + per_block) - n0
            q_n = nb * positions
            run = ow_n * nb
            # the block's images, channel by channel, with the image index last
            for c in range(cpg):
                ch = g * cpg + c
                for y in range(h_in):
                    for phase in range(sw):
                        dst = ((c * h_in + y) * sw + phase) * half * nb
                        for hx in range(half):
                            xx = hx * sw + phase
                            # one run with unsigned indices (_copy_run): a loop over n indexing x
                            # in 4-D checked every index (2 threads, 128 images of 128 channels
                            # 8x8: 0.35 against 0.64 ms per layer)
                            if xx < w_used:
                                src = ((n0 * c_in + ch) * x.shape[2] + y) * x.shape[3] + xx
                                _copy_run(xt, dst, x_flat, src, nb, image)
                            else:
                                _zero_run(xt, dst, dst + nb)
                            dst += nb
            # the columns: per tap and output row, zeros where the tap reads padding, and for the
            # output columns [lo, hi) whose tap lands inside the input, runs of nb values
            for c in range(cpg):
                for i in range(kh_n):
                    for j in range(kw_n):
                        row = ((c * kh_n + i) * kw_n + j) * q_n
                        off = j * dw - pw
                        lo = 0 if off >= 0 else (-off + sw - 1) // sw
                        hi = 0 if w_used - 1 - off < 0 else (w_used - 1 - off) // sw + 1
                        lo = min(lo, ow_n)
                        hi = max(lo, min(hi, ow_n))
                        for oy in range(oh_n):
                            y = oy * sh - ph + i * dh
                            dst = row + oy * run
                            if y < 0 or y >= h_in:
                                cols[dst : dst + run] = zero
                                continue
                            if lo > 0:
                                cols[dst : dst + lo * nb] = zero
                            if hi < ow_n:
                                cols[dst + hi * nb : dst + run] = zero
                            # input column ox * sw + off: phase off % sw, ox + off // sw
                            shift = (((c * h_in + y) * sw + off % sw) * half + off // sw) * nb - dst
                            cols[dst + lo * nb : dst + hi * nb] = xt[
                                dst + lo * nb + shift : dst + hi * nb + shift
                            ]
            # column-major: prod^T (q x opg, ld q) = cols^T (q x k, ld q) @ w_g^T (k x opg)
            gemm_call(
                gemm,
                "N",
                "N",
                q_n,
                opg,
                k_rows,
                1.0,
                cols,
                q_n,
                w_flat[g * opg * k_rows :],
                k_rows,
                0.0,
                prod,
                q_n,
            )
            for o in range(opg):
                oc = g * opg + o
                bias = b[oc]
                for n in range(nb):
                    dst = ((n0 + n) * c_out + oc) * positions
                    src = o * q_n + n
                    for p in range(positions):
                        out_flat[dst + p] = prod[src + p * nb] + bias

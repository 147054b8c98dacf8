"""Numba kernels for separable convolutions (see :mod:`convlab.separable`).

As in :mod:`convlab._kernels`, every kernel receives C-contiguous arrays that the public wrapper
has validated, padded and allocated, and only loops. Inputs arrive padded, so every index formed
here is in range by construction (the output sizes come from :func:`convlab.conv_output_size`).
"""

import numpy as np
from numba import njit, prange

from .config import NJIT_PARALLEL_OPTIONS


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


@njit(**NJIT_PARALLEL_OPTIONS)
def _spatially_separable(xp, col, row, out, sh, sw):
    """Filter every channel with ``sum_r col[:, r] row[r, :]`` by a column pass and a row pass.

    xp: (N, C, Hp, Wp) padded input; col: (KH, R); row: (R, KW); out: (N, C, OH, OW), overwritten.

    One task per (image, channel) plane. For each rank ``r`` the column pass filters the plane
    vertically with ``col[:, r]`` (at the row stride) into ``tmp`` (OH x WC, only the WC columns the
    row pass reads), then the row pass filters ``tmp`` horizontally with ``row[r, :]`` (at the column
    stride) and adds the result to the output. Cost per output pixel: about ``R * (KH + KW)``
    multiply-adds instead of ``KH * KW``.
    """
    n_batch, channels, oh_n, ow_n = out.shape
    kh_n, rank = col.shape
    kw_n = row.shape[1]
    wc = (ow_n - 1) * sw + kw_n
    for task in prange(n_batch * channels):
        n = task // channels
        c = task % channels
        src = xp[n, c]
        plane = out[n, c]
        tmp = np.empty((oh_n, wc), dtype=out.dtype)
        for oh in range(oh_n):
            for ow in range(ow_n):
                plane[oh, ow] = 0.0
        for r in range(rank):
            for oh in range(oh_n):
                dst = tmp[oh]
                for j in range(wc):
                    dst[j] = 0.0
                for kh in range(kh_n):
                    wv = col[kh, r]
                    line = src[oh * sh + kh]
                    for j in range(wc):
                        dst[j] += wv * line[j]
            for oh in range(oh_n):
                line = tmp[oh]
                dst = plane[oh]
                for kw in range(kw_n):
                    wv = row[r, kw]
                    for ow in range(ow_n):
                        dst[ow] += wv * line[ow * sw + kw]

"""Numba kernels of deformable convolution (Dai et al. 2017; Zhu et al. 2019 for the masks).

The public wrappers in :mod:`convlab.deformable` validate every argument, pad the input and
allocate every buffer; these kernels only loop.

Where a tap samples. Output position ``p = (oy, ox)`` and kernel tap ``t = (i, j)`` read the input
at the fractional point ``y = oy*sh - ph + i*dh + dy``, ``x = ox*sw - pw + j*dw + dx`` by bilinear
interpolation with torchvision's rules (``torchvision/csrc/ops/cpu/deform_conv2d_kernel.cpp``,
``bilinear_interpolate``): a point with ``y <= -1``, ``y >= H``, ``x <= -1`` or ``x >= W`` reads 0,
and inside that band each of the four neighbours that falls outside the image counts as 0.

The point depends on the offset group, the tap and the position but not on the channel, so
:func:`_deform_plan` computes it once per (image, group, tap, position) and every channel of the group
reuses it. The plan holds the flat index of the top-left neighbour in a *padded* image (one zero
row and column before, two zero rows and one zero column after: ``Hp = H + 3``, ``Wp = W + 2``),
so that the four neighbours ``k, k+1, k+Wp, k+Wp+1`` are always inside the array and a neighbour
outside the image reads a padding zero, which is torchvision's per-corner rule; and the fractional
parts ``lh, lw``. A point that fails the outer rule gets ``lh = lw = 0`` and the index of the 2x2
block of zeros at rows ``H+1, H+2``, so it reads exactly 0 (even beside an ``inf`` pixel, as in
torchvision).

Arithmetic is in the input's dtype and in torchvision's order (``w1*v1 + w2*v2 + w3*v3 + w4*v4``
with ``w1 = hh*hw`` ..., then times the mask), so the sampled columns equal torchvision's bit for
bit; only the matrix product afterwards sums in a different order.
"""

import numpy as np
from numba import njit, prange

from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS


@njit(**NJIT_OPTIONS)
def _deform_plan(offset, ybase, xbase, height, width, idx, lh, lw):
    """Sampling points of every image of the batch (one launch for the whole call).

    offset: (N, G, T, 2, P) the offsets (``dy`` then ``dx`` per tap; ``T = KH*KW``,
    ``P = OH*OW``); ybase: (KH, OH) holds ``oy*sh - ph + i*dh`` and xbase: (KW, OW) holds
    ``ox*sw - pw + j*dw``, both in the input's dtype so that ``base + offset`` is rounded as
    torchvision rounds it; idx (int32), lh, lw: (N, G, T, P), overwritten.

    Serial: it does ``C / G`` times less work than the sampling, and a parallel launch would cost
    another wake-up of the worker threads, which matters more on small layers.
    """
    n_batch, n_groups, taps, _, positions = offset.shape
    kw_n = xbase.shape[0]
    ow_n = xbase.shape[1]
    wp = width + 2
    zero_block = (height + 1) * wp
    zero = ybase.dtype.type(0)
    for task in range(n_batch * n_groups * taps):
        n = task // (n_groups * taps)
        g = (task // taps) % n_groups
        t = task % taps
        i = t // kw_n
        j = t % kw_n
        for p in range(positions):
            y = ybase[i, p // ow_n] + offset[n, g, t, 0, p]
            x = xbase[j, p % ow_n] + offset[n, g, t, 1, p]
            # written so that a NaN point fails it too and reads 0 instead of a wild index
            if y > -1 and y < height and x > -1 and x < width:
                fy = np.floor(y)
                fx = np.floor(x)
                lh[n, g, t, p] = y - fy
                lw[n, g, t, p] = x - fx
                idx[n, g, t, p] = (int(fy) + 1) * wp + int(fx) + 1
            elif np.isnan(y) or np.isnan(x):
                # torchvision gives NaN for a NaN offset: NaN weights on the zero block do that
                lh[n, g, t, p] = np.nan
                lw[n, g, t, p] = np.nan
                idx[n, g, t, p] = zero_block
            else:
                lh[n, g, t, p] = zero
                lw[n, g, t, p] = zero
                idx[n, g, t, p] = zero_block


@njit(**NJIT_PARALLEL_OPTIONS)
def _deform_im2col(xp, wp, idx, lh, lw, mask, use_mask, cols, p0):
    """Deformable im2col of one image for the output positions ``p0 .. p0 + L - 1``.

    xp: (C, Hp*Wp) the padded image, ``wp`` its row length; idx, lh, lw: the plan (G, T, P);
    mask: (G, T, P), read only when ``use_mask``; cols: (C*T, L), overwritten. Row ``c*T + t``
    (``torch.nn.functional.unfold``'s order, which is also the weight's flattening) and column
    ``q`` hold ``mask * bilinear(x[c], point(t, p0 + q))``.
    """
    channels = xp.shape[0]
    n_groups, taps = idx.shape[0], idx.shape[1]
    c_per_group = channels // n_groups
    length = cols.shape[1]
    one = lh.dtype.type(1)
    for task in prange(channels * taps):
        c = task // taps
        t = task % taps
        g = c // c_per_group
        src = xp[c]
        dst = cols[task]
        ids = idx[g, t, p0:p0 + length]
        fh = lh[g, t, p0:p0 + length]
        fw = lw[g, t, p0:p0 + length]
        for q in range(length):
            k = ids[q]
            a = fh[q]
            b = fw[q]
            hh = one - a
            hw = one - b
            val = hh * hw * src[k] + hh * b * src[k + 1] + a * hw * src[k + wp] + a * b * src[k + wp + 1]
            if use_mask:
                val = mask[g, t, p0 + q] * val
            dst[q] = val


@njit(**NJIT_PARALLEL_OPTIONS)
def _deform_col2im(gcols, wp, idx, lh, lw, mask, use_mask, gxp, p0):
    """Adjoint of :func:`_deform_im2col`: scatter column gradients onto the padded image.

    gcols: (C*T, L) gradient of the columns of positions ``p0 .. p0 + L - 1``; gxp: (C, Hp*Wp),
    accumulated into. One task per channel plane, so the scatter-add has no races. Each neighbour
    receives ``mask * weight * g`` with its bilinear weight (torchvision's
    ``deformable_col2im_kernel``); neighbours outside the image land in the padding, which the
    caller crops.
    """
    channels = gxp.shape[0]
    n_groups, taps = idx.shape[0], idx.shape[1]
    c_per_group = channels // n_groups
    length = gcols.shape[1]
    one = lh.dtype.type(1)
    for c in prange(channels):
        g = c // c_per_group
        dst = gxp[c]
        for t in range(taps):
            src = gcols[c * taps + t]
            ids = idx[g, t, p0:p0 + length]
            fh = lh[g, t, p0:p0 + length]
            fw = lw[g, t, p0:p0 + length]
            for q in range(length):
                k = ids[q]
                a = fh[q]
                b = fw[q]
                hh = one - a
                hw = one - b
                m = mask[g, t, p0 + q] if use_mask else one
                v = src[q]
                dst[k] += m * (hh * hw) * v
                dst[k + 1] += m * (hh * b) * v
                dst[k + wp] += m * (a * hw) * v
                dst[k + wp + 1] += m * (a * b) * v


@njit(**NJIT_PARALLEL_OPTIONS)
def _deform_coord_grad(xp, wp, gcols, offset, ybase, xbase, height, width, mask, use_mask,
                       goffset, gmask, p0):
    """Gradients with respect to the offsets and the mask, positions ``p0 .. p0 + L - 1``.

    xp: (C, Hp*Wp) padded image; gcols: (C*T, L) gradient of the columns; offset: (G, T, 2, P);
    ybase, xbase as in :func:`_deform_plan`; goffset: (G, T, 2, P) and gmask: (G, T, P) of this
    image, overwritten at those positions (gmask only when ``use_mask``).

    Mirrors torchvision's ``deformable_col2im_coord_kernel``: the derivative of the bilinear value
    along ``y`` is ``lw*(v_YX - v_yX) + (1-lw)*(v_Yx - v_yx)`` (and symmetrically along ``x``),
    computed from the four neighbours with the per-corner rule only, not the outer ``y <= -1``
    rule, so a point at exactly ``y = -1`` gets the one-sided derivative. It is 0 unless
    ``-1 <= y < H`` and ``-1 <= x < W`` (else every neighbour is outside). The mask's gradient is
    the sum over the group's channels of ``g * bilinear(x[c], point)``.
    """
    channels = xp.shape[0]
    n_groups, taps = offset.shape[0], offset.shape[1]
    c_per_group = channels // n_groups
    length = gcols.shape[1]
    kw_n = xbase.shape[0]
    ow_n = xbase.shape[1]
    zero_block = (height + 1) * wp
    zero = ybase.dtype.type(0)
    one = ybase.dtype.type(1)
    for task in prange(n_groups * taps):
        g = task // taps
        t = task % taps
        i = t // kw_n
        j = t % kw_n
        ids = np.empty(length, np.int64)
        fa = np.empty(length, ybase.dtype)
        fb = np.empty(length, ybase.dtype)
        inside = np.empty(length, np.bool_)
        for q in range(length):
            p = p0 + q
            y = ybase[i, p // ow_n] + offset[g, t, 0, p]
            x = xbase[j, p % ow_n] + offset[g, t, 1, p]
            if y >= -1 and y < height and x >= -1 and x < width:
                fy = np.floor(y)
                fx = np.floor(x)
                fa[q] = y - fy
                fb[q] = x - fx
                ids[q] = (int(fy) + 1) * wp + int(fx) + 1
                inside[q] = y > -1 and x > -1
            elif np.isnan(y) or np.isnan(x):
                fa[q] = np.nan
                fb[q] = np.nan
                ids[q] = zero_block
                inside[q] = True
            else:
                fa[q] = zero
                fb[q] = zero
                ids[q] = zero_block
                inside[q] = False
        acc_y = np.zeros(length, ybase.dtype)
        acc_x = np.zeros(length, ybase.dtype)
        acc_m = np.zeros(length, ybase.dtype)
        for c in range(g * c_per_group, (g + 1) * c_per_group):
            src = xp[c]
            gc = gcols[c * taps + t]
            for q in range(length):
                k = ids[q]
                a = fa[q]
                b = fb[q]
                v_yx = src[k]
                v_yX = src[k + 1]
                v_Yx = src[k + wp]
                v_YX = src[k + wp + 1]
                gv = gc[q]
                m = mask[g, t, p0 + q] if use_mask else one
                acc_y[q] += m * (b * (v_YX - v_yX) + (one - b) * (v_Yx - v_yx)) * gv
                acc_x[q] += m * (a * (v_YX - v_Yx) + (one - a) * (v_yX - v_yx)) * gv
                if use_mask and inside[q]:
                    hh = one - a
                    hw = one - b
                    val = hh * hw * v_yx + hh * b * v_yX + a * hw * v_Yx + a * b * v_YX
                    acc_m[q] += gv * val
        for q in range(length):
            goffset[g, t, 0, p0 + q] = acc_y[q]
            goffset[g, t, 1, p0 + q] = acc_x[q]
            if use_mask:
                gmask[g, t, p0 + q] = acc_m[q]



@njit(**NJIT_PARALLEL_OPTIONS)
def _deform_im2col_hwc(xph, wp, idx, lh, lw, mask, use_mask, segments, cols, p0):
    """Deformable im2col of one image from a channels-last copy, in (tap, channel) order.

    xph: (Hp*Wp, C) the padded image with channels last, ``wp`` its row length; idx, lh, lw: the
    plan (G, T, P); mask: (G, T, P), read only when ``use_mask``; segments: (S, 4) int64 rows
    ``(c0, c1, offset group, weight group)`` cutting the channels into runs that share both groups;
    cols: (L, groups, T, C/groups), overwritten: ``cols[q, gw, t, c - gw*C/groups]`` holds
    ``mask * bilinear(x[c], point(t, p0 + q))``: per weight group the transposed column matrix in
    (tap, channel) order, which the caller multiplies by a reordered copy of the weight.

    The sampling point and its four bilinear weights are the same for every channel of an offset
    group, and channels last the four neighbours of a point are four contiguous rows of ``C``
    values: the innermost loop over channels reads and writes contiguous memory (no gathers). One
    task per output position.
    """
    length = cols.shape[0]
    taps = idx.shape[1]
    cpg = cols.shape[3]
    one = lh.dtype.type(1)
    for q in prange(length):
        p = p0 + q
        for t in range(taps):
            for s in range(segments.shape[0]):
                c0 = segments[s, 0]
                c1 = segments[s, 1]
                g = segments[s, 2]
                gw = segments[s, 3]
                k = idx[g, t, p]
                a = lh[g, t, p]
                b = lw[g, t, p]
                hh = one - a
                hw = one - b
                w1 = hh * hw
                w2 = hh * b
                w3 = a * hw
                w4 = a * b
                # slices, so that the loop index starts at 0: Numba then knows it is not
                # negative, drops the wraparound check and LLVM vectorises the loop (3-4x faster)
                v00 = xph[k, c0:c1]
                v01 = xph[k + 1, c0:c1]
                v10 = xph[k + wp, c0:c1]
                v11 = xph[k + wp + 1, c0:c1]
                base = gw * cpg
                row = cols[q, gw, t, c0 - base:c1 - base]
                if use_mask:
                    m = mask[g, t, p]
                    for j in range(c1 - c0):
                        row[j] = m * (w1 * v00[j] + w2 * v01[j] + w3 * v10[j] + w4 * v11[j])
                else:
                    for j in range(c1 - c0):
                        row[j] = w1 * v00[j] + w2 * v01[j] + w3 * v10[j] + w4 * v11[j]


@njit(**NJIT_PARALLEL_OPTIONS)
def _deform_im2col_blocked(xph, wp, idx, lh, lw, mask, use_mask, segments, cols, p0):
    """Deformable im2col of one image from a channels-last copy, into the usual column layout.

    xph: (Hp*Wp, C) the padded image with channels last, ``wp`` its row length; idx, lh, lw: the
    plan (G, T, P); mask: (G, T, P), read only when ``use_mask``; segments: (S, 4) int64 rows
    ``(c0, c1, offset group, weight group)`` cutting the channels into runs that share their
    groups (the weight group is not needed here);
    cols: (C*T, L), overwritten: row ``c*T + t`` (the weight's own (channel, tap) order, so that a
    weight group's rows are one contiguous block) and column ``q`` hold
    ``mask * bilinear(x[c], point(t, p0 + q))``.

    Channels last, the four neighbours of a point are four contiguous runs of channels, so the
    sampling loop over channels reads contiguous memory (no gathers) and fills a small buffer of
    ``block`` positions x C channels in L1 (32 x C); the buffer is then written out transposed, one
    contiguous run of ``block`` positions per (channel, tap) row. One task per block of positions.
    """
    length = cols.shape[1]
    channels = xph.shape[1]
    taps = idx.shape[1]
    one = lh.dtype.type(1)
    block = 32
    n_blocks = (length + block - 1) // block
    for bi in prange(n_blocks):
        q0 = bi * block
        nq = min(block, length - q0)
        buf = np.empty((block, channels), dtype=cols.dtype)
        for t in range(taps):
            for qq in range(nq):
                p = p0 + q0 + qq
                row = buf[qq]
                for s in range(segments.shape[0]):
                    c0 = segments[s, 0]
                    c1 = segments[s, 1]
                    g = segments[s, 2]
                    k = idx[g, t, p]
                    a = lh[g, t, p]
                    b = lw[g, t, p]
                    hh = one - a
                    hw = one - b
                    w1 = hh * hw
                    w2 = hh * b
                    w3 = a * hw
                    w4 = a * b
                    # slices: a loop index from 0 lets LLVM vectorise (see _deform_im2col_hwc)
                    v00 = xph[k, c0:c1]
                    v01 = xph[k + 1, c0:c1]
                    v10 = xph[k + wp, c0:c1]
                    v11 = xph[k + wp + 1, c0:c1]
                    seg = row[c0:c1]
                    if use_mask:
                        m = mask[g, t, p]
                        for j in range(c1 - c0):
                            seg[j] = m * (w1 * v00[j] + w2 * v01[j] + w3 * v10[j] + w4 * v11[j])
                    else:
                        for j in range(c1 - c0):
                            seg[j] = w1 * v00[j] + w2 * v01[j] + w3 * v10[j] + w4 * v11[j]
            for c in range(channels):
                dst = cols[c * taps + t, q0:q0 + nq]
                src = buf[:nq, c]
                for qq in range(nq):
                    dst[qq] = src[qq]

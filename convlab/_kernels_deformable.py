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

from ._blas import UNITS, gemm_call, unit_range
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
        ids = idx[g, t, p0 : p0 + length]
        fh = lh[g, t, p0 : p0 + length]
        fw = lw[g, t, p0 : p0 + length]
        for q in range(length):
            k = ids[q]
            a = fh[q]
            b = fw[q]
            hh = one - a
            hw = one - b
            val = (
                hh * hw * src[k]
                + hh * b * src[k + 1]
                + a * hw * src[k + wp]
                + a * b * src[k + wp + 1]
            )
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
            ids = idx[g, t, p0 : p0 + length]
            fh = lh[g, t, p0 : p0 + length]
            fw = lw[g, t, p0 : p0 + length]
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
def _deform_coord_grad(
    xp, wp, gcols, offset, ybase, xbase, height, width, mask, use_mask, goffset, gmask, p0
):
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


@njit(**NJIT_OPTIONS)
def _sample_tap_major(
    xph, channels, wp, idx, lh, lw, mask, use_mask, c_per_og, q0, nq, c0, c1, t0, t1, cols, ld
):
    """Columns of positions ``q0 .. q0+nq-1``, taps ``t0 .. t1-1``, channels ``c0 .. c1-1``, in
    (tap, channel) order, from a channels-last image: no gathers, contiguous writes.

    xph: (Hp*Wp*C,) the padded channels-last image, flat; ``wp`` its row length; idx, lh, lw,
    mask: the plan of this image (G, T, P); ``c_per_og``: channels per offset group; cols: flat,
    row ``q`` (``ld`` apart) gets ``mask * bilinear(x[c], point(t, q0 + q))`` at
    ``(t - t0) * (c1 - c0) + c - c0``.

    The four neighbours of a point are four contiguous runs of ``C`` values, so the loop over the
    channels of a run that shares its offset group reads and writes contiguous memory and LLVM
    vectorises it. Flat arrays and unsigned indices: no wraparound checks and no array views in
    the loop (a view per run cost 3-4x when runs are short).
    """
    one = lh.dtype.type(1)
    uc = np.uint64(channels)
    width = np.uint64(c1 - c0)
    for qq in range(nq):
        p = q0 + qq
        row = np.uint64(qq * ld)
        for t in range(t0, t1):
            dst0 = row + np.uint64(t - t0) * width
            s0 = c0
            while s0 < c1:
                g = s0 // c_per_og
                s1 = min(c1, (g + 1) * c_per_og)
                k = idx[g, t, p]
                a = lh[g, t, p]
                b = lw[g, t, p]
                hh = one - a
                hw = one - b
                w1 = hh * hw
                w2 = hh * b
                w3 = a * hw
                w4 = a * b
                b00 = np.uint64(k) * uc + np.uint64(s0)
                b01 = b00 + uc
                b10 = np.uint64(k + wp) * uc + np.uint64(s0)
                b11 = b10 + uc
                d = dst0 + np.uint64(s0 - c0)
                n = np.uint64(s1 - s0)
                if use_mask:
                    m = mask[g, t, p]
                    for j in range(n):
                        cols[d + j] = m * (
                            w1 * xph[b00 + j]
                            + w2 * xph[b01 + j]
                            + w3 * xph[b10 + j]
                            + w4 * xph[b11 + j]
                        )
                else:
                    for j in range(n):
                        cols[d + j] = (
                            w1 * xph[b00 + j]
                            + w2 * xph[b01 + j]
                            + w3 * xph[b10 + j]
                            + w4 * xph[b11 + j]
                        )
                s0 = s1


@njit(**NJIT_OPTIONS)
def _sample_channel_major(
    xph, channels, wp, idx, lh, lw, mask, use_mask, c_per_og, q0, nq, c0, c1, tmp, cols, ld
):
    """Columns of positions ``q0 .. q0+nq-1``, all taps, channels ``c0 .. c1-1``, in the weight's
    own (channel, tap) order: row ``q`` (``ld`` apart) of the flat ``cols`` gets the sample of
    channel ``c`` and tap ``t`` at ``(c - c0) * T + t``.

    Arguments as in :func:`_sample_tap_major`. Each position is sampled tap-major into ``tmp``
    (T * (c1 - c0) values, contiguous and vectorised) and then transposed into its row: writing
    the samples straight to their stride-T places kept LLVM from vectorising the sampling and was
    twice as slow. The transpose reads T streams and writes contiguously; with the 3x3 kernel's
    T = 9 spelled out as a constant LLVM unrolls it, twice as fast as with T a variable.
    """
    taps = idx.shape[1]
    width = c1 - c0
    samples = tmp[: taps * width].reshape((taps, width))
    for qq in range(nq):
        _sample_tap_major(
            xph,
            channels,
            wp,
            idx,
            lh,
            lw,
            mask,
            use_mask,
            c_per_og,
            q0 + qq,
            1,
            c0,
            c1,
            0,
            taps,
            tmp,
            0,
        )
        row = cols[qq * ld : qq * ld + width * taps].reshape((width, taps))
        if taps == 9:
            for j in range(width):
                for t in range(9):
                    row[j, t] = samples[t, j]
        else:
            for j in range(width):
                for t in range(taps):
                    row[j, t] = samples[t, j]


@njit(**NJIT_PARALLEL_OPTIONS)
def _deform_conv_forward(
    gemm,
    xph,
    channels,
    wp,
    idx,
    lh,
    lw,
    mask,
    use_mask,
    w2,
    tap_major,
    groups,
    bias,
    has_bias,
    out,
    block,
    chunk,
    k_parts,
    partial,
    cols_buf,
    tmp_buf,
):
    """One image of the forward pass: every thread samples and multiplies its own work items.

    xph: (Hp*Wp*C,) the padded channels-last image, flat, ``wp`` its row length; idx, lh, lw,
    mask: the plan of this image (G, T, P); w2: (C_out, K) the weight matrix, ``K = C/groups * T``
    in (tap, channel) order when ``tap_major``, else in its own (channel, tap) order; bias: (C_out,),
    added when ``has_bias``; out: (C_out, P) the image's output, C-contiguous, overwritten.

    The P positions are cut into blocks of ``block``, and the ``chunk``-sized pieces of every
    weight group's rows (``chunk`` taps, tap-major, or ``chunk`` channels with all their taps)
    into ``k_parts`` parts: a work item is one block and one part, and thread ``i`` of
    ``cols_buf.shape[0]`` (``prange``) takes a contiguous run of items. For each chunk of its item
    a thread samples the block's columns into its row of ``cols_buf`` (one row per position,
    ``ld`` apart) and multiplies them by the matching rows of the weight with ``gemm`` (BLAS
    ``sgemm``/``dgemm``; the caller holds BLAS to one thread, see
    :func:`convlab._blas.one_blas_thread`), accumulating in place: part 0 into ``out``, part ``j`` into
    ``partial[j - 1]`` (C_out, P), which are added to ``out`` at the end, in order, with the bias.
    BLAS's leading dimensions let it read the weight rows and write the strided output block with
    no copies. In column-major BLAS terms: ``out[:, block]^T (nq x C_out/groups, ld P) +=
    cols^T (nq x kc, the row-major (nq, ld) buffer) @ w2[group, rows]^T (kc x C_out/groups, ld K)``.

    Several parts (split-K) are for layers with few positions and a large weight: split by
    positions, every thread would read (and BLAS pack) the whole weight for its own small block.
    The blocks and parts are fixed by the caller from the shapes alone, so the sums, and the
    result, do not depend on the number of threads.
    """
    n_threads = cols_buf.shape[0]
    taps = idx.shape[1]
    positions = idx.shape[2]
    c_out = w2.shape[0]
    k_rows = w2.shape[1]
    c_per_group = channels // groups
    out_per_group = c_out // groups
    c_per_og = channels // idx.shape[0]
    ld = cols_buf.shape[1] // block
    n_blocks = (positions + block - 1) // block
    n_items = n_blocks * k_parts
    n_chunks = (taps + chunk - 1) // chunk if tap_major else (c_per_group + chunk - 1) // chunk
    w_flat = w2.reshape(-1)
    for th in prange(n_threads):
        cols = cols_buf[th]
        tmp = tmp_buf[th]
        for item in range(n_items * th // n_threads, n_items * (th + 1) // n_threads):
            part = item % k_parts
            q0 = (item // k_parts) * block
            nq = min(positions, q0 + block) - q0
            target = out.reshape(-1) if part == 0 else partial[part - 1].reshape(-1)
            for gw in range(groups):
                c_first = gw * c_per_group
                first = n_chunks * part // k_parts
                for ci in range(first, n_chunks * (part + 1) // k_parts):
                    if tap_major:
                        t0 = ci * chunk
                        t1 = min(taps, t0 + chunk)
                        k0 = t0 * c_per_group
                        kc = (t1 - t0) * c_per_group
                        _sample_tap_major(
                            xph,
                            channels,
                            wp,
                            idx,
                            lh,
                            lw,
                            mask,
                            use_mask,
                            c_per_og,
                            q0,
                            nq,
                            c_first,
                            c_first + c_per_group,
                            t0,
                            t1,
                            cols,
                            ld,
                        )
                    else:
                        c0 = c_first + ci * chunk
                        c1 = min(c_first + c_per_group, c0 + chunk)
                        k0 = (c0 - c_first) * taps
                        kc = (c1 - c0) * taps
                        _sample_channel_major(
                            xph,
                            channels,
                            wp,
                            idx,
                            lh,
                            lw,
                            mask,
                            use_mask,
                            c_per_og,
                            q0,
                            nq,
                            c0,
                            c1,
                            tmp,
                            cols,
                            ld,
                        )
                    gemm_call(
                        gemm,
                        "T",
                        "N",
                        nq,
                        out_per_group,
                        kc,
                        1.0,
                        cols,
                        ld,
                        w_flat[gw * out_per_group * k_rows + k0 :],
                        k_rows,
                        0.0 if ci == first else 1.0,
                        target[gw * out_per_group * positions + q0 :],
                        positions,
                    )
            if has_bias and k_parts == 1:
                for o in range(c_out):
                    b = bias[o]
                    dst = out[o, q0 : q0 + nq]
                    for j in range(nq):
                        dst[j] += b
    if k_parts > 1:  # serial: one pass over the (small) output of a layer with few positions
        for o in range(c_out):
            dst = out[o]
            for j in range(1, k_parts):
                src = partial[j - 1, o]
                for q in range(positions):
                    dst[q] += src[q]
            if has_bias:
                b = bias[o]
                for q in range(positions):
                    dst[q] += b


@njit(**NJIT_PARALLEL_OPTIONS)
def _deform_backward_products(
    gemm, n_threads, grad, p0, length, cols, w2, groups, grad_w2, grad_cols
):
    """The two matrix products of the backward pass for one tile of positions.

    grad: (C_out, P) the output gradient of one image, of which positions ``p0 .. p0+length-1``
    are used; cols: (C*T, ld) the tile's columns (channel-first, the first ``length`` of each
    row); w2: (C_out, K) the weight matrix, ``K = C/groups * T``; grad_w2: (C_out, K),
    accumulated into; grad_cols: (C*T, ld), its first ``length`` columns overwritten. Per weight
    group, with ``o`` its output channels and ``r`` its rows: ``grad_w2[o] += grad[o] @ cols[r].T``
    and ``grad_cols[r] = w2[o].T @ grad[o]``.

    The rows ``K/g`` of both products (columns of ``grad_w2``, rows of ``grad_cols``) are cut
    into ``UNITS`` ranges by the shape only (each product then keeps all of a group's output
    channels as one dimension: cutting the first by output channels gave 16-wide products, which
    ran at half the speed) (:func:`convlab._blas.unit_range`); thread ``i`` of ``n_threads``
    (``prange``) takes whole ranges and computes them with ``gemm`` (BLAS ``sgemm``/``dgemm``)
    held to one thread by the caller (:func:`convlab._blas.one_blas_thread`): the same single-threaded
    calls as the forward pass, so that the backward pass never wakes another BLAS thread pool
    (NumPy's), whose idle workers keep spinning for a while and slowed a following forward pass
    1.6x on two cores. In column-major BLAS terms, ``grad_w2[o, r]^T (r x o, ld K) +=
    cols[r] (r x L, stored L x r, ld) @ grad[o]^T (L x o, ld P)`` and ``grad_cols[r]^T
    (L x K/g, ld) = grad[o]^T (L x o, ld P) @ w2[o, r] (o x K/g, stored K/g x o, ld K)``.
    """
    k_rows = w2.shape[1]
    # ranges cut by the shape only, whole ranges per thread: the same bits on any thread count
    for th in prange(n_threads):
        for u in range(UNITS * th // n_threads, UNITS * (th + 1) // n_threads):
            r0, r1 = unit_range(k_rows, u, UNITS)
            _backward_products_unit(
                gemm, grad, p0, length, cols, w2, groups, grad_w2, grad_cols, r0, r1
            )


@njit(**NJIT_OPTIONS)
def _backward_products_unit(gemm, grad, p0, length, cols, w2, groups, grad_w2, grad_cols, r0, r1):
    """Rows ``r0 .. r1`` (of each group's ``K/g``) of both products, in every group
    (:func:`_deform_backward_products`): columns ``r0 .. r1`` of ``grad_w2`` for all the group's
    output channels, and rows ``r0 .. r1`` of ``grad_cols``."""
    c_out, k_rows = w2.shape
    positions = grad.shape[1]
    ld = cols.shape[1]
    out_per_group = c_out // groups
    g_flat = grad.reshape(-1)
    c_flat = cols.reshape(-1)
    w_flat = w2.reshape(-1)
    gw_flat = grad_w2.reshape(-1)
    gc_flat = grad_cols.reshape(-1)
    for g in range(groups):
        first = g * out_per_group
        if r1 > r0:  # grad_w2[o of g, r0:r1] += grad[o of g] @ cols[rows r0:r1 of g].T
            gemm_call(
                gemm,
                "T",
                "N",
                r1 - r0,
                out_per_group,
                length,
                1.0,
                c_flat[(g * k_rows + r0) * ld :],
                ld,
                g_flat[first * positions + p0 :],
                positions,
                1.0,
                gw_flat[first * k_rows + r0 :],
                k_rows,
            )
        if r1 > r0:  # grad_cols[rows r0:r1 of g] = w2[o of g, r0:r1].T @ grad[o of g]
            gemm_call(
                gemm,
                "N",
                "T",
                length,
                r1 - r0,
                out_per_group,
                1.0,
                g_flat[first * positions + p0 :],
                positions,
                w_flat[first * k_rows + r0 :],
                k_rows,
                0.0,
                gc_flat[(g * k_rows + r0) * ld :],
                ld,
            )

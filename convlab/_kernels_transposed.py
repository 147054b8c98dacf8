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

import math

import numpy as np
from numba import njit, prange

from ._blas import gemm_call
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


@njit(**NJIT_OPTIONS)
def _fold_volume(cols, c0, vol, bias, kernel, stride, pad, dilation, in_shape):
    """Set ``vol`` (one output channel of one image, (OD, OH, OW)) to ``bias`` plus its columns.

    ``cols[c0 + (kd * KH + kh) * KW + kw]`` starts the row of tap ``(kd, kh, kw)``: one value per
    input position ``(i_d * H + ih) * W + iw``, added at output ``(i_d * sd + kd * dd - pd, ...)``.
    This is ``col2im`` with the padding cropped on the fly: for every tap only the input range
    whose targets fall inside the output is read (:func:`_first_in`, :func:`_stop_in`).
    """
    kd_n, kh_n, kw_n = kernel
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    d_n, h_n, w_n = in_shape
    od_n, oh_n, ow_n = vol.shape
    positions = d_n * h_n * w_n
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
                start = c0 + ((kd * kh_n + kh) * kw_n + kw) * positions
                src = cols[start : start + positions]
                first = iw0 * sw + off_w
                last = (iw1 - 1) * sw + off_w
                for i_d in range(id0, id1):
                    for ih in range(ih0, ih1):
                        dst = vol[i_d * sd + off_d, ih * sh + off_h, first : last + 1 : sw]
                        base = (i_d * h_n + ih) * w_n
                        row = src[base + iw0 : base + iw1]
                        for j in range(iw1 - iw0):
                            dst[j] += row[j]


def phase_extents(out_spatial, stride, pad):
    """Per dimension the rows ``Q`` of one stride phase of the uncropped result that a cropped
    output of size ``O`` reads: positions ``F < p + O``, so ``Q = (p + O - 1) // s + 1``."""
    return tuple((p + o - 1) // s + 1 for o, s, p in zip(out_spatial, stride, pad, strict=True))


#: the phase buffer may take this many times the output plane (plus PHASE_SLACK elements)
PHASE_LIMIT = 4
PHASE_SLACK = 4096
#: ... and is used only when every stride phase receives at least this many taps. With one tap a
#: phase (a 2x2 or 1x1 kernel at stride 2, 3x3 at stride 3) zeroing and interleaving the buffer
#: cost more than the strided adds they save: old -> new ms, 2 threads, a 1x1 stride-2 input
#: gradient 256->512 at 14x14 batch 8 1.67 -> 3.02, 2x2 stride 2 128->64 28x28 batch 4 0.96 ->
#: 1.24; a 3x3 kernel at stride 2 (1 to 4 taps a phase) came out even (0.46 -> 0.51, 0.90 ->
#: 0.89); 4x4 at stride 2 (4 taps a phase) gained (0.58 -> 0.34)
PHASE_MIN_TAPS = 2


def phase_taps(kernel, stride, dilation):
    """The fewest taps that any stride phase of the uncropped result receives: per dimension, the
    taps ``k`` with ``(k d) % s == r``, at the phase ``r`` with fewest, multiplied over the
    dimensions (0 when the stride exceeds the kernel: some phase gets none)."""
    fewest = 1
    for k, s, d in zip(kernel, stride, dilation, strict=True):
        if s > k:
            return 0
        counts = [0] * s
        for tap in range(k):
            counts[tap * d % s] += 1
        fewest *= min(counts)
    return fewest


def phase_buffer_size(out_spatial, stride, pad, kernel, dilation):
    """Elements of :func:`_fold_volume_phases`'s buffer: ``s * Q`` per dimension, about the
    uncropped output. 0 (:func:`_fold_volume` then adds with the stride, with no buffer) with
    stride 1 everywhere, when some phase would receive fewer than ``PHASE_MIN_TAPS`` taps
    (:func:`phase_taps`), and when the buffer would exceed ``PHASE_LIMIT`` output planes plus
    ``PHASE_SLACK`` elements: a stride or a padding far beyond the output (a stride of 2**31 with
    a padding of 2**31 - 1 keeps a few output rows of a 2**31-row uncropped result)."""
    if all(s == 1 for s in stride) or phase_taps(kernel, stride, dilation) < PHASE_MIN_TAPS:
        return 0
    size = 1
    for s, q in zip(stride, phase_extents(out_spatial, stride, pad), strict=True):
        size *= s * q
    return size if size <= PHASE_LIMIT * math.prod(out_spatial) + PHASE_SLACK else 0


@njit(**NJIT_OPTIONS)
def _fold_volume_phases(cols, c0, vol, bias, kernel, stride, pad, dilation, in_shape, buf):
    """:func:`_fold_volume` for a strided transposed convolution, with contiguous adds.

    With stride ``s``, tap ``k`` sends input ``i`` to the uncropped position ``F = i * s + k * d =
    q * s + r``, where the phase ``r = (k d) % s`` is the same for every ``i`` and ``q = i + (k d)
    // s`` is consecutive: each row of the tap's columns is added to one row of phase ``r`` of
    ``buf`` (``buf[rd, rh, rw, qd, qh, qw]``, zeroed first) with unit stride on both sides, which
    LLVM vectorises, where adding into ``vol`` with the stride cannot be (the 3x3 stride-2 fold of
    64 channels of 28x28 took as long as their matrix product). One pass then interleaves the
    phases into ``vol``, adds the bias and crops the padding: ``vol[o] = bias + buf[F % s, F // s]``
    with ``F = o + p``. Only the ``Q`` rows of a phase that the cropped output reads are kept
    (:func:`phase_extents`). ``buf`` holds at least :func:`phase_buffer_size` elements; an empty
    ``buf`` (stride 1, or a buffer that would be too large) means :func:`_fold_volume` instead.
    """
    if buf.shape[0] == 0:
        _fold_volume(cols, c0, vol, bias, kernel, stride, pad, dilation, in_shape)
        return
    kd_n, kh_n, kw_n = kernel
    sd, sh, sw = stride
    pd, ph, pw = pad
    dd, dh, dw = dilation
    d_n, h_n, w_n = in_shape
    od_n, oh_n, ow_n = vol.shape
    qd_n = (pd + od_n - 1) // sd + 1
    qh_n = (ph + oh_n - 1) // sh + 1
    qw_n = (pw + ow_n - 1) // sw + 1
    positions = d_n * h_n * w_n
    phases = buf[: sd * sh * sw * qd_n * qh_n * qw_n].reshape((sd, sh, sw, qd_n, qh_n, qw_n))
    flat = phases.reshape(-1)
    for i in range(flat.shape[0]):
        flat[i] = 0.0
    for kd in range(kd_n):
        rd = (kd * dd) % sd
        qd0 = (kd * dd) // sd
        id1 = min(d_n, qd_n - qd0)
        for kh in range(kh_n):
            rh = (kh * dh) % sh
            qh0 = (kh * dh) // sh
            ih1 = min(h_n, qh_n - qh0)
            for kw in range(kw_n):
                rw = (kw * dw) % sw
                qw0 = (kw * dw) // sw
                iw1 = min(w_n, qw_n - qw0)
                if iw1 <= 0:
                    continue
                start = c0 + ((kd * kh_n + kh) * kw_n + kw) * positions
                src = cols[start : start + positions]
                phase = phases[rd, rh, rw]
                for i_d in range(id1):
                    for ih in range(ih1):
                        dst = phase[i_d + qd0, ih + qh0, qw0 : qw0 + iw1]
                        base = (i_d * h_n + ih) * w_n
                        row = src[base : base + iw1]
                        for j in range(iw1):
                            dst[j] += row[j]
    for od in range(od_n):
        fd = od + pd
        for oh in range(oh_n):
            fh = oh + ph
            rows = phases[fd % sd, fh % sh, :, fd // sd, fh // sh]
            for rw in range(sw):
                # the outputs of phase rw: ow = o0, o0 + sw, ... with (o0 + pw) % sw == rw
                o0 = (rw - pw) % sw
                if o0 >= ow_n:
                    continue
                count = (ow_n - o0 + sw - 1) // sw
                q0 = (o0 + pw) // sw
                dst = vol[od, oh, o0::sw]
                src = rows[rw, q0 : q0 + count]
                for j in range(count):
                    dst[j] = bias + src[j]


@njit(**NJIT_PARALLEL_OPTIONS)
def _gemm_fold(
    gemm,
    x,
    w2,
    b,
    out,
    cols_buf,
    oc_block,
    groups,
    kernel,
    stride,
    pad,
    dilation,
    n_threads,
    phase_buf,
):
    """The GEMM form of a transposed convolution, one block of output channels of one image at
    a time: multiply, then fold the block's columns into its planes while they are in cache.

    x: (N, C_in, D, H, W); w2: (C_in, C_out/groups * KD*KH*KW), the weight as PyTorch lays it out,
    flattened; out: (N, C_out, OD, OH, OW), overwritten; cols_buf: (n_threads, oc_block * taps *
    D*H*W) scratch. A unit is (image, group, block of ``oc_block`` output channels of the group):
    its columns are ``w2[group's input channels, block's rows]^T @ x[n, group's input channels]``,
    one single-threaded BLAS call (:func:`convlab._blas.gemm_call`; the caller holds BLAS to one
    thread), ``cols (rows x D*H*W) ^T = x[n, g]^T (D*H*W x C_in/g, ld D*H*W) @ w2 block (C_in/g x
    rows, ld C_out/g * taps)`` in column-major terms. The units are cut by the shapes only and
    each owns its output planes, so no two threads write the same element and every element is
    computed by the same operations on any number of threads. Thread ``t`` takes units
    ``[U t / T, U (t + 1) / T)``. With a stride above 1, ``phase_buf`` (n_threads,
    :func:`phase_buffer_size`) is each thread's buffer for :func:`_fold_volume_phases`; with
    stride 1 it has no columns and the columns are added straight into the output.
    """
    n_batch, c_in, d_n, h_n, w_n = x.shape
    c_out = out.shape[1]
    kd_n, kh_n, kw_n = kernel
    taps = kd_n * kh_n * kw_n
    in_pg = c_in // groups
    out_pg = c_out // groups
    rows_total = out_pg * taps
    positions = d_n * h_n * w_n
    blocks = (out_pg + oc_block - 1) // oc_block
    units = n_batch * groups * blocks
    x_flat = x.reshape(-1)
    w_flat = w2.reshape(-1)
    in_shape = (d_n, h_n, w_n)
    for t in prange(n_threads):
        cols = cols_buf[t]
        for u in range(units * t // n_threads, units * (t + 1) // n_threads):
            n = u // (groups * blocks)
            g = u // blocks % groups
            j0 = u % blocks * oc_block
            nb = min(oc_block, out_pg - j0)
            gemm_call(
                gemm,
                "N",
                "T",
                positions,
                nb * taps,
                in_pg,
                1.0,
                x_flat[(n * c_in + g * in_pg) * positions :],
                positions,
                w_flat[g * in_pg * rows_total + j0 * taps :],
                rows_total,
                0.0,
                cols,
                positions,
            )
            for j in range(nb):
                oc = g * out_pg + j0 + j
                _fold_volume_phases(
                    cols,
                    j * taps * positions,
                    out[n, oc],
                    b[oc],
                    kernel,
                    stride,
                    pad,
                    dilation,
                    in_shape,
                    phase_buf[t],
                )

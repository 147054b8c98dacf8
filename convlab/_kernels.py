"""Numba kernels for plain convolution and im2col/col2im.

Every kernel takes C-contiguous arrays that the public wrappers have already validated, padded and
allocated; kernels only loop. Inputs arrive padded, so every index a kernel forms is in range by
construction: ``(out - 1) * stride + (k - 1) * dilation < padded size`` is exactly the condition
:func:`convlab.shapes.conv_output_size` enforces.
"""

from numba import njit, prange

from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv2d_direct(xp, w, b, out, sh, sw, dh, dw, groups):
    """Direct 2-D cross-correlation over a padded input.

    xp: (N, C_in, Hp, Wp) padded input; w: (C_out, C_in/groups, KH, KW); b: (C_out,) bias (zeros
    when there is none); out: (N, C_out, OH, OW), overwritten.

    One task per (image, output channel) pair. For each input channel and kernel tap the weight is
    held in a register and the whole output plane is updated row by row; the innermost loop walks
    the output row and, at stride 1, the input row contiguously, so LLVM vectorises it.
    """
    n_batch, c_out, oh_n, ow_n = out.shape
    c_per_group = w.shape[1]
    kh_n, kw_n = w.shape[2], w.shape[3]
    out_per_group = c_out // groups
    for task in prange(n_batch * c_out):
        n = task // c_out
        oc = task % c_out
        g = oc // out_per_group
        plane = out[n, oc]
        bias = b[oc]
        for oh in range(oh_n):
            for ow in range(ow_n):
                plane[oh, ow] = bias
        for ci in range(c_per_group):
            src = xp[n, g * c_per_group + ci]
            for kh in range(kh_n):
                for kw in range(kw_n):
                    wv = w[oc, ci, kh, kw]
                    col0 = kw * dw
                    for oh in range(oh_n):
                        row = src[oh * sh + kh * dh]
                        dst = plane[oh]
                        for ow in range(ow_n):
                            dst[ow] += wv * row[ow * sw + col0]


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


@njit(**NJIT_OPTIONS)
def _add_bias(out, b):
    """out: (N, C, L) += b[c]."""
    for n in range(out.shape[0]):
        for c in range(out.shape[1]):
            bias = b[c]
            for i in range(out.shape[2]):
                out[n, c, i] += bias

"""Dedicated Numba kernels for depthwise convolution (``groups == in_channels``).

A depthwise layer has one input channel per group, so the generic grouped kernel
(:func:`convlab._kernels._conv2d_direct`) spends its time on bookkeeping that buys nothing: for
every kernel tap it sweeps the whole output plane once more (nine read-modify-write passes over a
plane that may not fit in L1 for a 3x3 kernel), and its innermost loop multiplies by a runtime
stride, which stops LLVM from vectorising the stride-1 case. The seed article on convolution
layers (``003``) reports the same effect on GPUs, where a dedicated depthwise kernel is about ten
times faster than the grouped path.

The kernels here keep the structure "one task per (image, output channel) pair" (``prange``), so
that a layer with a channel multiplier ``K = C_out / C_in`` or a single input channel still has
``N * C_out`` independent tasks, and change what happens inside a task:

* the output is produced one row at a time, so the row being accumulated stays in L1;
* the weights are read into scalars (registers) and several taps are applied in one pass over the
  row (all nine at once for a 3x3 kernel; three at a time along the kernel width otherwise);
* stride 1 has its own loop with unit-stride indices, which LLVM vectorises;
* for the most common layer (3x3, stride 1, dilation 1) two output rows are computed per pass so
  that they share three of their four input rows.

Every output element is accumulated in exactly the order of the generic kernel
(``bias + w[0, 0] x + w[0, 1] x + ...``, row-major over the taps) and fastmath stays off, so the
results are bit-for-bit those of the generic kernel, not merely close.

Besides the kernels, this module exposes two small plain-Python helpers used by the benchmark
(``benchmarks/bench_depthwise.py``) and the groups chapter to time the alternatives the dedicated
kernel replaces: :func:`conv2d_generic_grouped` (the generic grouped kernel on the same validated
arguments) and :func:`conv2d_per_group` (one :func:`convlab.conv2d` call per group, concatenated,
the way the seed says frameworks used to implement grouped convolution).
"""

import numpy as np
from numba import njit, prange

from .config import NJIT_OPTIONS, NJIT_PARALLEL_OPTIONS

__all__ = ["conv2d_generic_grouped", "conv2d_per_group"]


# inline="always": a row update is called once per (output row, kernel row), and on the short rows
# of late layers (14 or 28 outputs) the call itself cost as much as the arithmetic.
@njit(inline="always", **NJIT_OPTIONS)
def _row_taps(dst, row, taps, sw, dw):
    """``dst[ow] += sum_kw taps[kw] * row[ow * sw + kw * dw]``, taps applied in order.

    Taps are taken three (then two, then one) at a time, each group in one pass over ``dst`` with
    the weights held in scalars. The partial sum is rebuilt left to right (``acc += w * x`` per
    tap), so the rounding is that of one tap per pass.
    """
    n = dst.shape[0]
    k_n = taps.shape[0]
    kw = 0
    while kw + 3 <= k_n:
        w0, w1, w2 = taps[kw], taps[kw + 1], taps[kw + 2]
        c0 = kw * dw
        c1 = c0 + dw
        c2 = c1 + dw
        if sw == 1:
            for ow in range(n):
                acc = dst[ow]
                acc += w0 * row[ow + c0]
                acc += w1 * row[ow + c1]
                acc += w2 * row[ow + c2]
                dst[ow] = acc
        else:
            for ow in range(n):
                j = ow * sw
                acc = dst[ow]
                acc += w0 * row[j + c0]
                acc += w1 * row[j + c1]
                acc += w2 * row[j + c2]
                dst[ow] = acc
        kw += 3
    if kw + 2 == k_n:
        w0, w1 = taps[kw], taps[kw + 1]
        c0 = kw * dw
        c1 = c0 + dw
        if sw == 1:
            for ow in range(n):
                acc = dst[ow]
                acc += w0 * row[ow + c0]
                acc += w1 * row[ow + c1]
                dst[ow] = acc
        else:
            for ow in range(n):
                j = ow * sw
                acc = dst[ow]
                acc += w0 * row[j + c0]
                acc += w1 * row[j + c1]
                dst[ow] = acc
    elif kw + 1 == k_n:
        w0 = taps[kw]
        c0 = kw * dw
        if sw == 1:
            for ow in range(n):
                dst[ow] += w0 * row[ow + c0]
        else:
            for ow in range(n):
                dst[ow] += w0 * row[ow * sw + c0]


@njit(**NJIT_OPTIONS)
def _plane_general(src, k, bias, plane, sh, sw, dh, dw):
    """One output plane of a depthwise 2-D layer, any kernel size: row by row, taps by rows."""
    oh_n = plane.shape[0]
    kh_n = k.shape[0]
    for oh in range(oh_n):
        dst = plane[oh]
        dst[:] = bias
        for kh in range(kh_n):
            _row_taps(dst, src[oh * sh + kh * dh], k[kh], sw, dw)


@njit(**NJIT_OPTIONS)
def _plane_3x3(src, k, bias, plane, sh, sw, dh, dw):
    """One output plane of a depthwise 3x3 layer: all nine weights in scalars, one pass per row."""
    oh_n, ow_n = plane.shape
    w00, w01, w02 = k[0, 0], k[0, 1], k[0, 2]
    w10, w11, w12 = k[1, 0], k[1, 1], k[1, 2]
    w20, w21, w22 = k[2, 0], k[2, 1], k[2, 2]
    c1 = dw
    c2 = 2 * dw
    oh = 0
    if sh == 1 and dh == 1 and sw == 1:
        # The most common depthwise layer (MobileNet's 3x3, stride 1): output rows oh and oh + 1
        # read input rows oh..oh+2 and oh+1..oh+3, so computing them together loads each shared
        # input element once for both.
        while oh + 2 <= oh_n:
            d0 = plane[oh]
            d1 = plane[oh + 1]
            r0 = src[oh]
            r1 = src[oh + 1]
            r2 = src[oh + 2]
            r3 = src[oh + 3]
            for ow in range(ow_n):
                a0 = bias
                a1 = bias
                a0 += w00 * r0[ow]
                a0 += w01 * r0[ow + c1]
                a0 += w02 * r0[ow + c2]
                y0 = r1[ow]
                y1 = r1[ow + c1]
                y2 = r1[ow + c2]
                a0 += w10 * y0
                a0 += w11 * y1
                a0 += w12 * y2
                a1 += w00 * y0
                a1 += w01 * y1
                a1 += w02 * y2
                z0 = r2[ow]
                z1 = r2[ow + c1]
                z2 = r2[ow + c2]
                a0 += w20 * z0
                a0 += w21 * z1
                a0 += w22 * z2
                a1 += w10 * z0
                a1 += w11 * z1
                a1 += w12 * z2
                a1 += w20 * r3[ow]
                a1 += w21 * r3[ow + c1]
                a1 += w22 * r3[ow + c2]
                d0[ow] = a0
                d1[ow] = a1
            oh += 2
    while oh < oh_n:
        dst = plane[oh]
        r0 = src[oh * sh]
        r1 = src[oh * sh + dh]
        r2 = src[oh * sh + 2 * dh]
        if sw == 1:
            for ow in range(ow_n):
                acc = bias
                acc += w00 * r0[ow]
                acc += w01 * r0[ow + c1]
                acc += w02 * r0[ow + c2]
                acc += w10 * r1[ow]
                acc += w11 * r1[ow + c1]
                acc += w12 * r1[ow + c2]
                acc += w20 * r2[ow]
                acc += w21 * r2[ow + c1]
                acc += w22 * r2[ow + c2]
                dst[ow] = acc
        else:
            for ow in range(ow_n):
                j = ow * sw
                acc = bias
                acc += w00 * r0[j]
                acc += w01 * r0[j + c1]
                acc += w02 * r0[j + c2]
                acc += w10 * r1[j]
                acc += w11 * r1[j + c1]
                acc += w12 * r1[j + c2]
                acc += w20 * r2[j]
                acc += w21 * r2[j + c1]
                acc += w22 * r2[j + c2]
                dst[ow] = acc
        oh += 1


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv2d_depthwise(xp, w, b, out, sh, sw, dh, dw):
    """Depthwise 2-D cross-correlation over a padded input (``groups == C_in``).

    xp: (N, C_in, Hp, Wp) padded input; w: (C_out, 1, KH, KW) with ``C_out = K * C_in``; b: (C_out,)
    (zeros when there is no bias); out: (N, C_out, OH, OW), overwritten. Output channel ``oc``
    reads input channel ``oc // K``, as in PyTorch. One task per (image, output channel) pair.
    """
    n_batch, c_out, oh_n, ow_n = out.shape
    multiplier = c_out // xp.shape[1]
    square3 = w.shape[2] == 3 and w.shape[3] == 3
    for task in prange(n_batch * c_out):
        n = task // c_out
        oc = task % c_out
        src = xp[n, oc // multiplier]
        if square3:
            _plane_3x3(src, w[oc, 0], b[oc], out[n, oc], sh, sw, dh, dw)
        else:
            _plane_general(src, w[oc, 0], b[oc], out[n, oc], sh, sw, dh, dw)


@njit(**NJIT_PARALLEL_OPTIONS)
def _conv3d_depthwise(xp, w, b, out, sd, sh, sw, dd, dh, dw):
    """Depthwise 3-D cross-correlation over a padded input (``groups == C_in``).

    xp: (N, C_in, Dp, Hp, Wp); w: (C_out, 1, KD, KH, KW) with ``C_out = K * C_in``; b: (C_out,);
    out: (N, C_out, OD, OH, OW), overwritten. Each output row is accumulated in L1 from
    ``KD * KH`` input rows, taps applied three at a time along the kernel width.
    """
    n_batch, c_out, od_n, oh_n, ow_n = out.shape
    multiplier = c_out // xp.shape[1]
    kd_n, kh_n = w.shape[2], w.shape[3]
    for task in prange(n_batch * c_out):
        n = task // c_out
        oc = task % c_out
        src = xp[n, oc // multiplier]
        k = w[oc, 0]
        bias = b[oc]
        vol = out[n, oc]
        for od in range(od_n):
            for oh in range(oh_n):
                dst = vol[od, oh]
                dst[:] = bias
                for kd in range(kd_n):
                    for kh in range(kh_n):
                        _row_taps(dst, src[od * sd + kd * dd, oh * sh + kh * dh], k[kd, kh], sw, dw)


def conv2d_generic_grouped(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                           padding_mode="zeros"):
    """:func:`convlab.conv2d` forced onto the generic grouped kernel, for benchmarks and tests.

    ``convlab.conv2d`` sends depthwise layers (``groups == C_in``) to the dedicated kernel of this
    module; this helper validates and pads the arguments exactly as ``conv2d`` does and then runs
    :func:`convlab._kernels._conv2d_direct`, the kernel every other grouped layer uses. It exists
    so that the two can be timed and compared on the same inputs; use ``conv2d`` otherwise.

    Parameters
    ----------
    input, weight, bias, stride, padding, dilation, groups, padding_mode
        As in :func:`convlab.conv2d`.

    Returns
    -------
    numpy.ndarray
        The same array ``conv2d`` returns (bit for bit, see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> import convlab
    >>> x = np.arange(18.0).reshape(1, 2, 3, 3)
    >>> w = np.ones((2, 1, 2, 2))
    >>> conv2d_generic_grouped(x, w, groups=2)
    array([[[[ 8., 12.],
             [20., 24.]],
    <BLANKLINE>
            [[44., 48.],
             [56., 60.]]]])
    >>> np.array_equal(conv2d_generic_grouped(x, w, groups=2), convlab.conv2d(x, w, groups=2))
    True
    """
    # Imported here: conv.py imports this module to dispatch depthwise layers.
    from . import _kernels
    from .config import parallel_launch
    from .conv import _finish, _prepare

    p = _prepare(2, input, weight, bias, stride, padding, dilation, groups, padding_mode)
    out = np.empty(p.out_shape, dtype=p.x.dtype)
    if out.size:
        with parallel_launch():
            _kernels._conv2d_direct(p.x, p.w, p.b, out, *p.stride, *p.dilation, p.groups)
    return _finish(p, out)


def conv2d_per_group(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                     padding_mode="zeros"):
    """A grouped convolution as ``groups`` separate :func:`convlab.conv2d` calls, concatenated.

    Group ``g`` convolves input channels ``g*C_in/G ... (g+1)*C_in/G - 1`` with output filters
    ``g*C_out/G ... (g+1)*C_out/G - 1``; the outputs are stacked along the channel axis. This is
    the definition of grouped convolution (and how, per the seed article ``003``, frameworks used
    to run it); it is here to be checked against and timed, not to be fast.

    Parameters
    ----------
    input, weight, bias, stride, padding, dilation, groups, padding_mode
        As in :func:`convlab.conv2d`.

    Returns
    -------
    numpy.ndarray
        Equal to ``convlab.conv2d(input, weight, bias, ..., groups=groups)``.

    Raises
    ------
    ValueError, TypeError
        Whatever ``convlab.conv2d`` raises for the same arguments: they are validated once, as a
        whole, before the loop.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(18.0).reshape(1, 2, 3, 3)
    >>> conv2d_per_group(x, np.ones((2, 1, 2, 2)), groups=2)[0, :, 0, 0]
    array([ 8., 44.])
    """
    from ._args import float_array
    from .conv import _prepare, conv2d

    x = float_array(input, "input")
    # Validate the grouped call as a whole first, so that a bad ``groups`` gets conv2d's message.
    # An empty batch makes _prepare check every rule without padding or copying the images.
    probe = x[:0] if x.ndim == 4 else (x[None][:0] if x.ndim == 3 else x)
    p = _prepare(2, probe, weight, bias, stride, padding, dilation, groups, padding_mode)
    w = p.w
    b = p.b if bias is not None else None
    c_in_g = w.shape[1]
    c_out_g = w.shape[0] // p.groups
    axis = x.ndim - 3  # the channel axis of (N, C, H, W) or (C, H, W)
    parts = []
    for g in range(p.groups):
        xg = x[:, g * c_in_g:(g + 1) * c_in_g] if axis == 1 else x[g * c_in_g:(g + 1) * c_in_g]
        wg = w[g * c_out_g:(g + 1) * c_out_g]
        bg = None if b is None else b[g * c_out_g:(g + 1) * c_out_g]
        parts.append(conv2d(xg, wg, bg, stride, padding, dilation, 1, padding_mode))
    return np.concatenate(parts, axis=axis)

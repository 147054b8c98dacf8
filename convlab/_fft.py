"""Convolution through the fast Fourier transform (the convolution theorem).

A cross-correlation of an ``Hp x Wp`` input with a ``kH x kW`` filter is, in the frequency domain,
a product: ``corr(x, w) = irfft2(rfft2(x) * conj(rfft2(w)))``, where both are zero-padded to a
common size ``L``. The transform computes the *circular* correlation, but every output a valid
convolution needs (``i <= Hp - kH``) reads no wrapped-around element as long as ``L >= Hp``. A
layer sums over input channels, which in the frequency domain is a sum of products per frequency:

1. ``X = rfft2(x)`` of every (image, input channel) plane and ``W = rfft2(w)`` of every filter;
2. ``Y[n, o] = sum_c X[n, c] * conj(W[o, c])`` (a Numba kernel, one task per (image, output
   channel));
3. ``y = irfft2(Y)``, then keep the valid outputs, every ``stride``-th one, and add the bias.

The cost is ``O(N C (Hp Wp) log(Hp Wp))`` for the transforms plus ``O(N C_out C_in Hp Wp)``
complex multiply-adds, independent of the filter size, so it pays off for large filters at
stride 1. A stride only subsamples the result (all outputs are computed); a dilation is a filter
with zeros inserted.

Accuracy: every output of an FFT is computed from every input of the plane, so its rounding error
follows the magnitude of the whole plane (times ``log L``), not of its own receptive field. With
unit-scale data the largest error is about ``2e-7`` of the largest output in float32, like the
direct loop; but a small output far from a bright region inherits that region's error (measured:
an input with one 8x8 corner scaled by 1e4 gives errors of ``2e-2`` on outputs of magnitude ~9
elsewhere, where the direct loop and Winograd stay at ``2e-5``). So the FFT's tolerance is
relative to the largest output of the plane, not to each output: the tests allow ``1e-5 *
max|out|`` in float32 and ``1e-12 * max|out|`` in float64.

Error bound: ``|out - exact| <= c u log2(L) sqrt(C_in kH kW) ||x||_2 ||w||_2`` per plane (the
FFT's normwise bound), i.e. relative to the whole plane's energy; there is no bound relative to an
output's own window (:func:`convlab.conv2d`'s Notes define ``S`` and ``P``, the window measures
that bound direct, im2col and Winograd, as ``"auto"`` requires). tests/test_accuracy.py measures
``max |error| / (u S)`` at 600 on the issue's layer (2 channels, 9x9, one corner x1e4, where
direct and im2col stay below 10) and ``max |error| / (u P)`` at 1.7e4 next to a pixel scaled by
1e6 (Winograd: below 2); so ``algorithm="auto"`` never picks the FFT (issue 13), it runs only
when asked for.

Non-finite values: a NaN or inf anywhere in a plane makes every output of that plane NaN (its
transform spreads it), where PyTorch gives NaN or +-inf only to the outputs whose window holds it.
This is documented, not fixed: propagating as the direct sum does would need a second, direct
pass over the non-finite windows.
"""

import numpy as np
import scipy.fft
from numba import njit

from ._winograd import split_launch
from .config import NJIT_OPTIONS


@njit(**NJIT_OPTIONS)
def _fft_channel_sum(xf, wf, yf, c_per_group, out_per_group, start, stop):
    """``yf[n, o] = sum_c xf[n, g * C_in/groups + c] * conj(wf[o, c])`` per frequency.

    xf: (N, C_in, F) transformed input planes, flattened; wf: (C_out, C_in/groups, F) transformed
    filters; yf: (N, C_out, F), overwritten. Tasks ``start <= task < stop`` of the ``N * C_out``
    (image, output channel) pairs (:func:`convlab._winograd.split_launch`).
    """
    c_out, n_freq = yf.shape[1], yf.shape[2]
    for task in range(start, stop):
        n = task // c_out
        o = task % c_out
        g = o // out_per_group
        dst = yf[n, o]
        for f in range(n_freq):
            dst[f] = 0
        for c in range(c_per_group):
            src = xf[n, g * c_per_group + c]
            filt = wf[o, c]
            for f in range(n_freq):
                dst[f] += src[f] * filt[f].conjugate()


def conv2d_fft(xp, w, b, out, stride, dilation, groups, workers=None):
    """Fill ``out`` with the convolution of the padded input ``xp`` computed by FFT.

    Arguments are validated by :func:`convlab.conv2d`. ``workers`` is passed to ``scipy.fft``
    (default: Numba's current thread count, so that ``numba.set_num_threads`` governs both).
    """
    import numba

    if workers is None:
        workers = numba.get_num_threads()
    n_batch, c_in, hp, wp = xp.shape
    c_out, c_per_group, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    dh, dw = dilation
    sh, sw = stride
    if (dh, dw) != (1, 1):
        wd = np.zeros((c_out, c_per_group, dh * (kh - 1) + 1, dw * (kw - 1) + 1), dtype=w.dtype)
        wd[:, :, ::dh, ::dw] = w
        w = wd
    size = (scipy.fft.next_fast_len(hp, real=True), scipy.fft.next_fast_len(wp, real=True))
    xf = scipy.fft.rfft2(xp, s=size, workers=workers)
    wf = scipy.fft.rfft2(w, s=size, workers=workers)
    spectrum = xf.shape[2:]
    n_freq = spectrum[0] * spectrum[1]
    yf = np.empty((n_batch, c_out, n_freq), dtype=xf.dtype)
    split_launch(
        _fft_channel_sum,
        n_batch * c_out,
        np.ascontiguousarray(xf).reshape(n_batch, c_in, n_freq),
        np.ascontiguousarray(wf).reshape(c_out, c_per_group, n_freq),
        yf,
        c_per_group,
        c_out // groups,
    )
    y = scipy.fft.irfft2(yf.reshape((n_batch, c_out) + spectrum), s=size, workers=workers)
    np.add(
        y[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw], b[None, :, None, None], out=out
    )

"""Slow, obviously-correct references for the separable convolutions.

Written from the definitions with Python loops over every output element, sharing no code with
convlab (nor with tests/naive.py), accumulating in float64.
"""

import numpy as np


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _pads(padding, kernel, dilation):
    if padding == "valid":
        return [(0, 0), (0, 0)]
    if padding == "same":  # PyTorch: total d(k-1), the odd element after
        return [
            (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
            for k, d in zip(kernel, dilation, strict=True)
        ]
    return [(p, p) for p in _pair(padding)]


def depthwise_separable(x, wd, wp, bd=None, bp=None, stride=1, padding=0, dilation=1):
    """``out[n, o, i, j] = bp[o] + sum_m wp[o, m] * (bd[m] + sum_{a,b} wd[m, 0, a, b] *
    xpad[n, m // K, i*sh + a*dh, j*sw + b*dw])`` for batched ``x`` (N, C_in, H, W)."""
    x = np.asarray(x, dtype=np.float64)
    wd = np.asarray(wd, dtype=np.float64)
    wp = np.asarray(wp, dtype=np.float64).reshape(np.shape(wp)[0], -1)
    n_batch, c_in = x.shape[:2]
    c_mid, _, kh, kw = wd.shape
    c_out = wp.shape[0]
    mult = c_mid // c_in
    bd = np.zeros(c_mid) if bd is None else np.asarray(bd, dtype=np.float64)
    bp = np.zeros(c_out) if bp is None else np.asarray(bp, dtype=np.float64)
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    pads = _pads(padding, (kh, kw), (dh, dw))
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    oh_n = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow_n = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    mid = np.zeros((n_batch, c_mid, oh_n, ow_n))
    for n in range(n_batch):
        for m in range(c_mid):
            for i in range(oh_n):
                for j in range(ow_n):
                    total = bd[m]
                    for a in range(kh):
                        for b in range(kw):
                            total += (
                                wd[m, 0, a, b] * xp[n, m // mult, i * sh + a * dh, j * sw + b * dw]
                            )
                    mid[n, m, i, j] = total
    out = np.zeros((n_batch, c_out, oh_n, ow_n))
    for n in range(n_batch):
        for o in range(c_out):
            for i in range(oh_n):
                for j in range(ow_n):
                    out[n, o, i, j] = bp[o] + sum(wp[o, m] * mid[n, m, i, j] for m in range(c_mid))
    return out


def filter_channels(x, kernel, stride=1, padding=0):
    """Cross-correlate every channel of batched ``x`` (N, C, H, W) with one 2-D ``kernel``."""
    x = np.asarray(x, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    kh, kw = kernel.shape
    sh, sw = _pair(stride)
    pads = _pads(padding, (kh, kw), (1, 1))
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    oh_n = (xp.shape[2] - kh) // sh + 1
    ow_n = (xp.shape[3] - kw) // sw + 1
    out = np.zeros(x.shape[:2] + (oh_n, ow_n))
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for i in range(oh_n):
                for j in range(ow_n):
                    out[n, c, i, j] = sum(
                        kernel[a, b] * xp[n, c, i * sh + a, j * sw + b]
                        for a in range(kh)
                        for b in range(kw)
                    )
    return out


def gaussian_kernel(size, sigma):
    """A normalised ``size x size`` Gaussian, built as a 2-D function (not as an outer product)."""
    half = (size - 1) / 2
    k = np.array(
        [
            [np.exp(-((i - half) ** 2 + (j - half) ** 2) / (2 * sigma**2)) for j in range(size)]
            for i in range(size)
        ]
    )
    return k / k.sum()

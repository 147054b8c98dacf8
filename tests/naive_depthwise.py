"""A slow, obviously-correct depthwise convolution, written from the definition.

Output channel ``c * K + m`` (multiplier ``K = C_out / C_in``) is input channel ``c``
cross-correlated with its own filter ``w[c * K + m, 0]``:

    out[n, c*K + m, i, j] = b[c*K + m] + sum_{a, b} w[c*K + m, 0, a, b] * xp[n, c, i*s + a*d, j*s + b*d]

It shares no code with convlab (nor with ``tests/naive.py``): padding by ``np.pad`` and the windows
by ``numpy.lib.stride_tricks.sliding_window_view``, every dimension treated the same way.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def depthwise(x, w, b=None, stride=1, padding=0, dilation=1, padding_mode="zeros"):
    """Depthwise N-d cross-correlation of batched ``x`` (N, C, *S) with ``w`` (K*C, 1, *k).

    ``padding`` is an int or a tuple of per-side paddings (no 'same'); float64 result.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    nd = x.ndim - 2
    as_tuple = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd  # noqa: E731
    stride, padding, dilation = as_tuple(stride), as_tuple(padding), as_tuple(dilation)
    kernel = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding], mode=_PAD[padding_mode])
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    # windows[n, c, *out_position, *tap_position]; keep every stride-th window, every d-th tap
    windows = sliding_window_view(xp, extent, axis=tuple(range(2, 2 + nd)))
    windows = windows[
        (slice(None), slice(None))
        + tuple(slice(None, None, s) for s in stride)
        + tuple(slice(None, None, d) for d in dilation)
    ]
    multiplier = w.shape[0] // x.shape[1]
    c_out = w.shape[0]
    out = np.empty((x.shape[0], c_out) + windows.shape[2 : 2 + nd])
    for oc in range(c_out):
        # tensordot over the tap axes of the window and the filter
        patch = windows[:, oc // multiplier]
        out[:, oc] = np.tensordot(patch, w[oc, 0], axes=nd)
        if b is not None:
            out[:, oc] += b[oc]
    return out

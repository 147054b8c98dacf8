"""Slow, obviously-correct references for the plain convolutions and im2col/col2im.

Written straight from the definitions, with Python loops over every output element, so that they
can be read against the formulas in PyTorch's documentation. They share no code with convlab.
"""

import itertools

import numpy as np

_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _tuple(value, n):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def pad(x, pads, mode):
    """Pad the trailing ``len(pads)`` dims of ``x`` by ``(before, after)`` pairs."""
    width = [(0, 0)] * (x.ndim - len(pads)) + list(pads)
    return np.pad(x, width, mode=_PAD[mode])


def same_pads(kernel, dilation):
    """PyTorch's 'same': total d(k-1), the odd element after."""
    return [
        (d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
        for k, d in zip(kernel, dilation, strict=True)
    ]


def convnd(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros"):
    """N-d cross-correlation of batched ``x`` (N, C, *S) with ``w`` (C_out, C_in/groups, *K).

    Accumulates in float64 and returns float64.
    """
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    kernel = w.shape[2:]
    stride, dilation = _tuple(stride, nd), _tuple(dilation, nd)
    if padding == "valid":
        pads = [(0, 0)] * nd
    elif padding == "same":
        pads = same_pads(kernel, dilation)
    else:
        pads = [(p, p) for p in _tuple(padding, nd)]
    xp = pad(x, pads, padding_mode)
    n_batch, c_in = x.shape[:2]
    c_out, c_per_group = w.shape[:2]
    out_per_group = c_out // groups
    out_sizes = [
        (xp.shape[2 + i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1 for i in range(nd)
    ]
    out = np.zeros((n_batch, c_out, *out_sizes))
    for n, oc in itertools.product(range(n_batch), range(c_out)):
        g = oc // out_per_group
        for pos in itertools.product(*(range(s) for s in out_sizes)):
            total = 0.0 if b is None else float(b[oc])
            for ci in range(c_per_group):
                for tap in itertools.product(*(range(k) for k in kernel)):
                    idx = tuple(pos[i] * stride[i] + tap[i] * dilation[i] for i in range(nd))
                    total += w[(oc, ci) + tap] * xp[(n, g * c_per_group + ci) + idx]
            out[(n, oc) + pos] = total
    return out


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.unfold for batched (N, C, H, W) input, in float64."""
    x = np.asarray(x, dtype=np.float64)
    kh, kw = _tuple(kernel_size, 2)
    dh, dw = _tuple(dilation, 2)
    ph, pw = _tuple(padding, 2)
    sh, sw = _tuple(stride, 2)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    n_batch, channels = x.shape[:2]
    cols = np.zeros((n_batch, channels * kh * kw, oh * ow))
    for n, c, i, j, r, s in itertools.product(
        range(n_batch), range(channels), range(kh), range(kw), range(oh), range(ow)
    ):
        cols[n, (c * kh + i) * kw + j, r * ow + s] = xp[n, c, r * sh + i * dh, s * sw + j * dw]
    return cols


def fold(cols, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """torch.nn.functional.fold for batched (N, C*kh*kw, L) columns, in float64."""
    cols = np.asarray(cols, dtype=np.float64)
    h, w = _tuple(output_size, 2)
    kh, kw = _tuple(kernel_size, 2)
    dh, dw = _tuple(dilation, 2)
    ph, pw = _tuple(padding, 2)
    sh, sw = _tuple(stride, 2)
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    n_batch = cols.shape[0]
    channels = cols.shape[1] // (kh * kw)
    out = np.zeros((n_batch, channels, h + 2 * ph, w + 2 * pw))
    for n, c, i, j, r, s in itertools.product(
        range(n_batch), range(channels), range(kh), range(kw), range(oh), range(ow)
    ):
        out[n, c, r * sh + i * dh, s * sw + j * dw] += cols[n, (c * kh + i) * kw + j, r * ow + s]
    return out[:, :, ph : ph + h, pw : pw + w]


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """``torch.nn.MaxPool2d`` by loops: ``(out, winners)``, where ``winners[n, c, i, j]`` is the
    ``(row, col)`` in ``x`` of the first largest value of the window, padding left out; a NaN
    wins, and of several the last (PyTorch's CPU rule)."""
    kh, kw = _tuple(kernel_size, 2)
    sh, sw = _tuple(kernel_size if stride is None else stride, 2)
    ph, pw = _tuple(padding, 2)
    dh, dw = _tuple(dilation, 2)
    n, c, h, w = x.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.empty((n, c, oh, ow), dtype=x.dtype)
    winners = np.empty((n, c, oh, ow, 2), dtype=np.int64)
    for b, ch, i, j in itertools.product(range(n), range(c), range(oh), range(ow)):
        best, where = -np.inf, None
        for a, e in itertools.product(range(kh), range(kw)):
            r, q = i * sh - ph + a * dh, j * sw - pw + e * dw
            inside = 0 <= r < h and 0 <= q < w
            if inside and (where is None or x[b, ch, r, q] > best or np.isnan(x[b, ch, r, q])):
                best, where = x[b, ch, r, q], (r, q)
        out[b, ch, i, j] = best
        winners[b, ch, i, j] = where
    return out, winners


def max_pool2d_backward(grad_out, winners, input_shape):
    """The input gradient of :func:`max_pool2d`: each output's gradient added at its winner."""
    grad = np.zeros(input_shape, dtype=np.float64)
    for b, ch, i, j in itertools.product(*map(range, grad_out.shape)):
        r, q = winners[b, ch, i, j]
        grad[b, ch, r, q] += grad_out[b, ch, i, j]
    return grad


def cross_entropy(logits, target, reduction="mean"):
    """``torch.nn.CrossEntropyLoss`` in float64 by loops: ``(loss, d loss / d logits)``."""
    n, c = logits.shape
    loss, grad = 0.0, np.zeros((n, c))
    for i in range(n):
        row = [float(v) for v in logits[i]]
        top = max(row)
        total = sum(np.exp(v - top) for v in row)
        loss += np.log(total) - (row[target[i]] - top)
        for k in range(c):
            grad[i, k] = np.exp(row[k] - top) / total - (k == target[i])
    if reduction == "mean":
        loss, grad = loss / n, grad / n
    return loss, grad

"""Slow, obviously-correct references for transposed convolution and the gradients of convolution.

Written from the definitions with Python loops, sharing no code with convlab:

``conv_transpose_scatter``
    every input element times every tap is added to the output position it lands on, in a buffer
    holding the full (uncropped) result, which is then cropped by the padding;
``conv_transpose_zero_insertion``
    seed 001's construction: insert ``s - 1`` zeros between input elements, pad by
    ``d(k - 1) - p`` (plus the output padding at the end), and run a stride-1 convolution with the
    kernel flipped and its channel axes swapped (valid for ``p <= d(k - 1)``);
``conv_forward`` / ``conv_weight_grad``
    a direct convolution and the derivative of ``sum(grad_output * conv(x, w))`` with respect to
    ``w``, each from its definition.

All accumulate in float64 and return float64; inputs are batched ``(N, C, *spatial)``.
"""

import itertools

import numpy as np
from naive import _tuple, convnd  # the direct convolution, from its definition


def conv_transpose_scatter(
    x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Transposed convolution of ``x`` (N, C_in, *S) with ``w`` (C_in, C_out/groups, *K), by scattering."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    kernel = w.shape[2:]
    stride, padding = _tuple(stride, nd), _tuple(padding, nd)
    output_padding, dilation = _tuple(output_padding, nd), _tuple(dilation, nd)
    n_batch, c_in = x.shape[:2]
    in_per_group, out_per_group = c_in // groups, w.shape[1]
    c_out = out_per_group * groups
    full = [
        (x.shape[2 + i] - 1) * stride[i] + dilation[i] * (kernel[i] - 1) + 1 + output_padding[i]
        for i in range(nd)
    ]
    buf = np.zeros((n_batch, c_out, *full))
    for n, ci in itertools.product(range(n_batch), range(c_in)):
        g = ci // in_per_group
        for pos in itertools.product(*(range(s) for s in x.shape[2:])):
            value = x[(n, ci) + pos]
            for ocl in range(out_per_group):
                for tap in itertools.product(*(range(k) for k in kernel)):
                    target = tuple(pos[i] * stride[i] + tap[i] * dilation[i] for i in range(nd))
                    buf[(n, g * out_per_group + ocl) + target] += value * w[(ci, ocl) + tap]
    crop = tuple(slice(padding[i], full[i] - padding[i]) for i in range(nd))
    out = buf[(slice(None), slice(None)) + crop]
    if b is not None:
        out = out + np.asarray(b, dtype=np.float64).reshape((1, -1) + (1,) * nd)
    return out


def conv_forward(x, w, stride=1, padding=0, dilation=1, groups=1):
    """Cross-correlation of ``x`` (N, C_in, *S) with ``w`` (C_out, C_in/groups, *K), zero padding:
    :func:`naive.convnd` without a bias."""
    return convnd(x, w, None, stride, padding, dilation, groups)


def conv_transpose_zero_insertion(
    x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1
):
    """Seed 001's construction: zero insertion, padding, stride-1 convolution with the flipped kernel."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    nd = w.ndim - 2
    kernel = w.shape[2:]
    stride, padding = _tuple(stride, nd), _tuple(padding, nd)
    output_padding, dilation = _tuple(output_padding, nd), _tuple(dilation, nd)
    n_batch, c_in = x.shape[:2]
    in_per_group = c_in // groups
    # 1. s - 1 zeros between neighbouring input elements
    spread = np.zeros((n_batch, c_in, *[(x.shape[2 + i] - 1) * stride[i] + 1 for i in range(nd)]))
    spread[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = x
    # 2. pad by d(k-1) - p on both sides, plus the output padding after
    pads = [
        (
            dilation[i] * (kernel[i] - 1) - padding[i],
            dilation[i] * (kernel[i] - 1) - padding[i] + output_padding[i],
        )
        for i in range(nd)
    ]
    if any(before < 0 for before, _ in pads):
        raise ValueError("zero insertion needs padding <= d(k-1)")
    spread = np.pad(spread, [(0, 0), (0, 0)] + pads)
    # 3. the flipped kernel with in/out channel axes swapped, per group: (C_out, C_in/groups, *K)
    flipped = w[(slice(None), slice(None)) + (slice(None, None, -1),) * nd]
    conv_w = np.concatenate(
        [
            np.swapaxes(flipped[g * in_per_group : (g + 1) * in_per_group], 0, 1)
            for g in range(groups)
        ]
    )
    return convnd(spread, conv_w, b, 1, 0, dilation, groups)


def conv_weight_grad(x, weight_shape, grad_output, stride=1, padding=0, dilation=1, groups=1):
    """d/dw of ``sum(grad_output * conv(x, w))``: each weight entry's coefficient, by definition."""
    x = np.asarray(x, dtype=np.float64)
    g_out = np.asarray(grad_output, dtype=np.float64)
    nd = len(weight_shape) - 2
    kernel = tuple(weight_shape[2:])
    stride, padding, dilation = _tuple(stride, nd), _tuple(padding, nd), _tuple(dilation, nd)
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    c_out, c_per_group = weight_shape[:2]
    out_per_group = c_out // groups
    grad = np.zeros(tuple(weight_shape))
    for oc, ci in itertools.product(range(c_out), range(c_per_group)):
        g = oc // out_per_group
        for tap in itertools.product(*(range(k) for k in kernel)):
            total = 0.0
            for n in range(x.shape[0]):
                for pos in itertools.product(*(range(s) for s in g_out.shape[2:])):
                    idx = tuple(pos[i] * stride[i] + tap[i] * dilation[i] for i in range(nd))
                    total += g_out[(n, oc) + pos] * xp[(n, g * c_per_group + ci) + idx]
            grad[(oc, ci) + tap] = total
    return grad

"""Slow, obviously-correct references for deformable convolution (plain Python loops, float64).

Written from the definition (Dai et al. 2017, Zhu et al. 2019) and torchvision's documented
border rule, independently of the kernels in ``convlab/_kernels_deformable.py``: no padding
trick, no sampling plan, no matrix product.
"""

import math

import numpy as np


def bilinear(plane, y, x):
    """torchvision's ``bilinear_interpolate``: 0 outside ``-1 < y < H, -1 < x < W``; inside, the
    four neighbours weighted by the opposite areas, a neighbour outside the image reading 0."""
    height, width = plane.shape
    if not (y > -1 and y < height and x > -1 and x < width):
        return 0.0
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
        for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
            if 0 <= yy < height and 0 <= xx < width:
                total += wy * wx * plane[yy, xx]
    return total


def sample_points(offset, kernel_size, stride, padding, dilation, out_hw):
    """The sampling point (y, x) of every (n, offset group, tap i, tap j, oy, ox)."""
    kh, kw = kernel_size
    n_batch = offset.shape[0]
    groups = offset.shape[1] // (2 * kh * kw)
    oh, ow = out_hw
    pts = np.empty((n_batch, groups, kh, kw, oh, ow, 2))
    for n in range(n_batch):
        for g in range(groups):
            for i in range(kh):
                for j in range(kw):
                    ch = 2 * ((g * kh + i) * kw + j)
                    for oy in range(oh):
                        for ox in range(ow):
                            pts[n, g, i, j, oy, ox, 0] = (
                                oy * stride[0]
                                - padding[0]
                                + i * dilation[0]
                                + offset[n, ch, oy, ox]
                            )
                            pts[n, g, i, j, oy, ox, 1] = (
                                ox * stride[1]
                                - padding[1]
                                + j * dilation[1]
                                + offset[n, ch + 1, oy, ox]
                            )
    return pts


def deform_conv2d(
    x, offset, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), mask=None
):
    """out[n, o, oy, ox] = b[o] + sum over c in o's group, taps (i, j) of
    w[o, c, i, j] * m * bilinear(x[n, c], point)."""
    x = np.asarray(x, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    n_batch, c_in, height, width = x.shape
    c_out, cpg, kh, kw = weight.shape
    groups = c_in // cpg
    offset_groups = offset.shape[1] // (2 * kh * kw)
    oh = (height + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (width + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    pts = sample_points(offset, (kh, kw), stride, padding, dilation, (oh, ow))
    out = np.zeros((n_batch, c_out, oh, ow))
    opg = c_out // groups
    for n in range(n_batch):
        for o in range(c_out):
            g = o // opg
            for cc in range(cpg):
                c = g * cpg + cc
                og = c // (c_in // offset_groups)
                for i in range(kh):
                    for j in range(kw):
                        for oy in range(oh):
                            for ox in range(ow):
                                y, xx = pts[n, og, i, j, oy, ox]
                                v = bilinear(x[n, c], y, xx)
                                if mask is not None:
                                    v *= mask[n, (og * kh + i) * kw + j, oy, ox]
                                out[n, o, oy, ox] += weight[o, cc, i, j] * v
            if bias is not None:
                out[n, o] += bias[o]
    return out

"""Record torch's depthwise-separable layers and per-channel (depthwise) filtering.

Writes ``separable.npz``. For each case in ``DEPTHWISE_SEPARABLE`` the input, the depthwise and
pointwise weights and biases (``<name>/x``, ``/wd``, ``/bd``, ``/wp``, ``/bp``), the keyword
arguments as a JSON string (``/args``: stride, padding, dilation) and the output of
``F.conv2d(F.conv2d(x, wd, bd, stride, padding, dilation, groups=C_in), wp, bp)`` (``/out``); for
each case in ``SPATIAL`` the input, a kernel and the output of the depthwise ``F.conv2d`` with that
kernel repeated for every channel (``/x``, ``/kernel``, ``/args``, ``/out``).

Run from the repository root: ``/work/torchvenv/bin/python tests/record_references.py separable``.
"""

import json

import numpy as np
import torch
import torch.nn.functional as F

# name, input shape, C_out, kernel (kh, kw), multiplier K, stride, padding, dilation, dtype, bias
DEPTHWISE_SEPARABLE = [
    ("seed_3to4", (1, 3, 6, 6), 4, (3, 3), 1, 1, 0, 1, "float64", False),  # the seed's 27 + 12
    ("bias_pad1", (2, 3, 7, 6), 5, (3, 3), 1, 1, 1, 1, "float32", True),
    ("mult2_stride2", (1, 4, 9, 9), 3, (3, 3), 2, 2, 1, 1, "float32", True),
    ("dilated_rect", (2, 2, 10, 8), 6, (3, 2), 1, (1, 2), (2, 1), (2, 1), "float64", True),
    ("unbatched_same", (3, 8, 8), 2, (5, 5), 1, 1, "same", 1, "float32", True),
    ("mult3_k1", (1, 2, 5, 5), 4, (1, 1), 3, 1, 0, 1, "float64", True),
]

# name, input shape, kernel shape, stride, padding, dtype
SPATIAL = [
    ("gauss5_pad2", (1, 3, 12, 11), (5, 5), 1, 2, "float32"),
    ("rect_stride", (2, 2, 9, 10), (3, 5), (2, 1), (1, 2), "float64"),
    ("unbatched", (2, 7, 7), (3, 3), 1, 0, "float64"),
]


def record(out_dir):
    rng = np.random.default_rng(20261106)
    arrays = {}
    for (
        name,
        xshape,
        c_out,
        kernel,
        mult,
        stride,
        padding,
        dilation,
        dtype,
        bias,
    ) in DEPTHWISE_SEPARABLE:
        c_in = xshape[-3]
        x = rng.standard_normal(xshape).astype(dtype)
        wd = rng.standard_normal((c_in * mult, 1) + kernel).astype(dtype)
        wp = rng.standard_normal((c_out, c_in * mult, 1, 1)).astype(dtype)
        bd = rng.standard_normal(c_in * mult).astype(dtype) if bias else None
        bp = rng.standard_normal(c_out).astype(dtype) if bias else None
        t = lambda a: None if a is None else torch.from_numpy(a)  # noqa: E731
        with torch.no_grad():
            mid = F.conv2d(
                t(x), t(wd), t(bd), stride=stride, padding=padding, dilation=dilation, groups=c_in
            )
            out = F.conv2d(mid, t(wp), t(bp))
        args = dict(stride=stride, padding=padding, dilation=dilation)
        arrays.update(
            {
                f"{name}/x": x,
                f"{name}/wd": wd,
                f"{name}/wp": wp,
                f"{name}/out": out.numpy(),
                f"{name}/args": np.array(json.dumps(args)),
            }
        )
        if bias:
            arrays.update({f"{name}/bd": bd, f"{name}/bp": bp})

    for name, xshape, kshape, stride, padding, dtype in SPATIAL:
        channels = xshape[-3]
        x = rng.standard_normal(xshape).astype(dtype)
        kernel = rng.standard_normal(kshape).astype(dtype)
        weight = torch.from_numpy(kernel)[None, None].repeat(channels, 1, 1, 1)
        with torch.no_grad():
            out = F.conv2d(
                torch.from_numpy(x), weight, stride=stride, padding=padding, groups=channels
            )
        args = dict(stride=stride, padding=padding)
        arrays.update(
            {
                f"{name}/x": x,
                f"{name}/kernel": kernel,
                f"{name}/out": out.numpy(),
                f"{name}/args": np.array(json.dumps(args)),
            }
        )

    np.savez_compressed(out_dir / "separable.npz", **arrays)

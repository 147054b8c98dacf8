"""Record ``torchvision.ops.deform_conv2d`` and its autograd gradients over a case table.

Writes ``deformable.npz``: for each case ``<name>/x``, ``/offset``, ``/w``, ``/b`` (if any),
``/mask`` (if any), ``/args`` (int array ``[sh, sw, ph, pw, dh, dw]``), torchvision's ``/out``,
a seeded ``/grad_out`` and the gradients ``/gx``, ``/goffset``, ``/gw``, ``/gb``, ``/gmask`` that
``torch.autograd`` returns for it. Run with a venv that has torchvision:

    /work/tvvenv/bin/python tests/record_references.py deformable
"""

import numpy as np
import torch
from torchvision.ops import deform_conv2d


def _case(
    name,
    x,
    w,
    offset_groups=1,
    mask=True,
    bias=True,
    stride=(1, 1),
    padding=(0, 0),
    dilation=(1, 1),
    offset_scale=1.5,
    offset_kind="normal",
    dtype="float32",
):
    return dict(
        name=name,
        x=x,
        w=w,
        offset_groups=offset_groups,
        mask=mask,
        bias=bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        offset_scale=offset_scale,
        offset_kind=offset_kind,
        dtype=dtype,
    )


CASES = [
    # --- the layer as DCN uses it: 3x3, padding 1, with and without the v2 mask
    _case("basic", (2, 3, 6, 6), (4, 3, 3, 3), padding=(1, 1)),
    _case("no_mask_no_bias", (1, 3, 6, 6), (4, 3, 3, 3), mask=False, bias=False),
    _case("no_mask", (2, 3, 6, 5), (2, 3, 3, 3), mask=False, padding=(1, 1)),
    # --- stride, padding, dilation, rectangular kernels and arguments
    _case("stride2_pad1", (2, 2, 9, 8), (3, 2, 3, 3), stride=(2, 2), padding=(1, 1)),
    _case("dilation2_pad2", (1, 2, 7, 7), (2, 2, 3, 3), padding=(2, 2), dilation=(2, 2)),
    _case("rect_args", (1, 2, 8, 10), (3, 2, 2, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2)),
    _case("kernel_1x1", (2, 3, 5, 4), (2, 3, 1, 1)),
    # --- groups: offset groups (channels share offsets per group) and weight groups
    _case("offset_groups2", (1, 4, 5, 5), (3, 4, 3, 3), offset_groups=2, padding=(1, 1)),
    _case("weight_groups2", (1, 4, 5, 5), (6, 2, 3, 3), padding=(1, 1)),
    _case("both_groups", (1, 4, 5, 5), (4, 2, 3, 3), offset_groups=4, padding=(1, 1)),
    # --- offsets that push samples past the border, and exact-integer / half-integer points
    _case("far_offsets", (1, 2, 5, 5), (2, 2, 3, 3), padding=(1, 1), offset_scale=6.0),
    _case(
        "integer_offsets",
        (1, 2, 5, 6),
        (2, 2, 3, 3),
        padding=(1, 1),
        offset_kind="integer",
        dtype="float64",
    ),
    _case(
        "half_offsets",
        (1, 2, 5, 5),
        (2, 2, 3, 3),
        padding=(1, 1),
        offset_kind="half",
        dtype="float64",
    ),
    # --- float64
    _case("basic_f64", (1, 3, 6, 6), (4, 3, 3, 3), padding=(1, 1), dtype="float64"),
    _case(
        "groups_f64",
        (1, 4, 6, 5),
        (4, 2, 3, 3),
        offset_groups=2,
        stride=(2, 1),
        padding=(1, 0),
        dtype="float64",
    ),
]


def _out_size(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def record(out_dir):
    torch.set_num_threads(1)
    rng = np.random.default_rng(20261106)
    arrays = {}
    for case in CASES:
        dtype = np.dtype(case["dtype"])
        n, c, h, w_ = case["x"]
        c_out, _, kh, kw = case["w"]
        oh = _out_size(h, kh, case["stride"][0], case["padding"][0], case["dilation"][0])
        ow = _out_size(w_, kw, case["stride"][1], case["padding"][1], case["dilation"][1])
        og = case["offset_groups"]
        x = rng.standard_normal(case["x"]).astype(dtype)
        w = rng.standard_normal(case["w"]).astype(dtype)
        off_shape = (n, 2 * og * kh * kw, oh, ow)
        if case["offset_kind"] == "integer":
            off = rng.integers(-3, 4, off_shape).astype(dtype)
        elif case["offset_kind"] == "half":
            off = (rng.integers(-6, 7, off_shape) / 2).astype(dtype)
        else:
            off = (case["offset_scale"] * rng.standard_normal(off_shape)).astype(dtype)
        b = rng.standard_normal(c_out).astype(dtype) if case["bias"] else None
        m = rng.random((n, og * kh * kw, oh, ow)).astype(dtype) if case["mask"] else None
        grad_out = rng.standard_normal((n, c_out, oh, ow)).astype(dtype)

        tx, toff, tw = (torch.tensor(a, requires_grad=True) for a in (x, off, w))
        tb = torch.tensor(b, requires_grad=True) if b is not None else None
        tm = torch.tensor(m, requires_grad=True) if m is not None else None
        out = deform_conv2d(
            tx,
            toff,
            tw,
            tb,
            stride=case["stride"],
            padding=case["padding"],
            dilation=case["dilation"],
            mask=tm,
        )
        out.backward(torch.from_numpy(grad_out))

        name = case["name"]
        arrays[f"{name}/x"] = x
        arrays[f"{name}/offset"] = off
        arrays[f"{name}/w"] = w
        arrays[f"{name}/args"] = np.array(case["stride"] + case["padding"] + case["dilation"])
        arrays[f"{name}/out"] = out.detach().numpy()
        arrays[f"{name}/grad_out"] = grad_out
        arrays[f"{name}/gx"] = tx.grad.numpy()
        arrays[f"{name}/goffset"] = toff.grad.numpy()
        arrays[f"{name}/gw"] = tw.grad.numpy()
        if b is not None:
            arrays[f"{name}/b"] = b
            arrays[f"{name}/gb"] = tb.grad.numpy()
        if m is not None:
            arrays[f"{name}/mask"] = m
            arrays[f"{name}/gmask"] = tm.grad.numpy()
    np.savez_compressed(out_dir / "deformable.npz", **arrays)

"""Record torch's conv_transpose1d/2d/3d and torch.nn.grad.conv*_input / conv*_weight.

Writes two files (run through ``tests/record_references.py transposed`` in a venv with torch):

``transposed.npz``
    for each case of ``TRANSPOSED_CASES``: ``<name>/x``, ``<name>/w`` (torch's transposed layout
    ``(C_in, C_out/groups, *k)``), ``<name>/b`` (when the case has a bias), ``<name>/out``, and
    ``<name>/args``, a JSON string with the keyword arguments (``stride``, ``padding``,
    ``output_padding``, ``groups``, ``dilation``, or ``output_size`` instead of
    ``output_padding``). ``output_size`` cases go through ``torch.nn.ConvTransposeNd.forward(x,
    output_size)`` so that torch's own derivation of the output padding is what gets recorded.
``transposed_grad.npz``
    for each case of ``GRAD_CASES``: ``<name>/x``, ``<name>/w`` (convolution layout),
    ``<name>/grad_output``, ``<name>/grad_input`` (``torch.nn.grad.conv*_input``),
    ``<name>/grad_weight`` (``torch.nn.grad.conv*_weight``), ``<name>/args`` (JSON: ``stride``,
    ``padding``, ``dilation``, ``groups``).

The tests read these files and never import torch.
"""

import json
import pathlib

import numpy as np
import torch
import torch.nn.functional as F
import torch.nn.grad


def _t(
    name,
    nd,
    x,
    w,
    bias=True,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    dtype="float32",
    output_size=None,
):
    args = dict(stride=stride, padding=padding, groups=groups, dilation=dilation)
    if output_size is None:
        args["output_padding"] = output_padding
    else:
        args["output_size"] = output_size
    return dict(name=name, nd=nd, x=x, w=w, bias=bias, dtype=dtype, args=args)


# x: input shape; w: weight shape (C_in, C_out/groups, *k)
TRANSPOSED_CASES = [
    # --- 1-D
    _t("1d_basic", 1, (2, 3, 7), (3, 4, 3)),
    _t("1d_s2_p1_op1", 1, (2, 2, 6), (2, 3, 3), stride=2, padding=1, output_padding=1),
    _t("1d_dil2_groups2", 1, (2, 4, 5), (4, 2, 3), padding=1, groups=2, dilation=2),
    _t("1d_s3_p2_unbatched", 1, (3, 6), (3, 2, 4), stride=3, padding=2, bias=False),
    _t("1d_float64", 1, (2, 3, 5), (3, 2, 3), stride=2, output_padding=1, dtype="float64"),
    _t("1d_output_size", 1, (1, 2, 5), (2, 2, 3), stride=2, output_size=[12]),
    # --- 2-D
    _t("2d_basic", 2, (2, 3, 5, 6), (3, 4, 3, 3)),
    _t("2d_s2", 2, (2, 3, 4, 5), (3, 2, 3, 3), stride=2),
    _t("2d_s2_p1_op1", 2, (2, 4, 5, 5), (4, 3, 3, 3), stride=2, padding=1, output_padding=1),
    _t("2d_dcgan_k4_s2_p1", 2, (1, 4, 6, 6), (4, 2, 4, 4), stride=2, padding=1),
    _t(
        "2d_rect_args",
        2,
        (1, 2, 4, 5),
        (2, 3, 2, 3),
        stride=(3, 1),
        padding=(1, 0),
        output_padding=(2, 0),
        dilation=(1, 2),
    ),
    _t("2d_op_below_dilation", 2, (1, 2, 4, 4), (2, 2, 3, 3), dilation=3, output_padding=2),
    _t("2d_groups2", 2, (2, 4, 5, 5), (4, 3, 3, 3), stride=2, padding=1, groups=2),
    _t("2d_depthwise", 2, (1, 3, 5, 5), (3, 1, 3, 3), stride=2, groups=3),
    _t("2d_depthwise_x2", 2, (1, 3, 4, 4), (3, 2, 3, 3), groups=3, padding=1),
    _t("2d_padding_crops", 2, (1, 2, 6, 6), (2, 2, 3, 3), padding=2),
    _t("2d_kernel_larger_than_input", 2, (2, 2, 2, 2), (2, 3, 5, 5), stride=3, padding=(1, 2)),
    _t("2d_1x1_s2_op1", 2, (2, 3, 4, 4), (3, 2, 1, 1), stride=2, output_padding=1),
    _t("2d_nobias", 2, (2, 3, 4, 4), (3, 2, 3, 3), stride=2, padding=1, bias=False),
    _t("2d_unbatched", 2, (3, 4, 4), (3, 2, 3, 3), stride=2, padding=1, output_padding=1),
    _t("2d_float64", 2, (2, 4, 5, 4), (4, 2, 3, 2), stride=2, padding=1, groups=2, dtype="float64"),
    _t(
        "2d_float64_dil",
        2,
        (1, 2, 5, 5),
        (2, 3, 3, 3),
        stride=2,
        dilation=2,
        output_padding=1,
        dtype="float64",
    ),
    _t("2d_wide_gemm", 2, (2, 16, 5, 5), (16, 8, 3, 3), stride=2, padding=1, output_padding=1),
    _t("2d_output_size", 2, (1, 2, 4, 4), (2, 3, 3, 3), stride=2, padding=1, output_size=[8, 7]),
    _t(
        "2d_output_size_full_unbatched", 2, (2, 3, 3), (2, 3, 3, 3), stride=2, output_size=[3, 8, 7]
    ),
    _t(
        "2d_output_size_full_batched",
        2,
        (2, 2, 3, 3),
        (2, 3, 3, 3),
        stride=3,
        output_size=[2, 3, 10, 9],
    ),
    # --- 3-D
    _t("3d_basic", 3, (1, 2, 3, 4, 3), (2, 3, 3, 3, 2)),
    _t(
        "3d_stride_pad_op",
        3,
        (2, 2, 3, 3, 4),
        (2, 2, 3, 2, 3),
        stride=(2, 1, 2),
        padding=(1, 0, 1),
        output_padding=(1, 0, 1),
    ),
    _t("3d_groups_dil", 3, (1, 4, 3, 3, 3), (4, 1, 2, 2, 2), groups=2, dilation=2),
    _t("3d_unbatched", 3, (2, 3, 3, 3), (2, 2, 2, 2, 2), stride=2, padding=1),
    _t("3d_float64", 3, (1, 2, 3, 3, 3), (2, 2, 3, 3, 3), stride=2, padding=1, dtype="float64"),
    _t("3d_output_size", 3, (1, 2, 2, 3, 2), (2, 2, 3, 3, 3), stride=2, output_size=[6, 7, 5]),
]


def _g(name, nd, x, w, stride=1, padding=0, dilation=1, groups=1, dtype="float32"):
    return dict(
        name=name,
        nd=nd,
        x=x,
        w=w,
        dtype=dtype,
        args=dict(stride=stride, padding=padding, dilation=dilation, groups=groups),
    )


# x: convolution input shape; w: convolution weight shape (C_out, C_in/groups, *k)
GRAD_CASES = [
    _g("1d_basic", 1, (2, 3, 9), (4, 3, 3)),
    _g("1d_s2_leftover", 1, (2, 3, 10), (4, 3, 3), stride=2, padding=1),
    _g("1d_groups_dil", 1, (1, 4, 11), (6, 2, 3), dilation=2, groups=2, stride=3),
    _g("2d_basic", 2, (2, 3, 6, 6), (4, 3, 3, 3), padding=1),
    _g("2d_s2_leftover", 2, (2, 3, 8, 7), (4, 3, 3, 3), stride=2, padding=1),
    _g("2d_groups_dil", 2, (2, 4, 9, 9), (6, 2, 3, 3), stride=2, padding=2, dilation=2, groups=2),
    _g("2d_rect", 2, (1, 2, 7, 10), (3, 2, 2, 3), stride=(3, 2), padding=(1, 0), dilation=(1, 2)),
    _g("2d_depthwise", 2, (2, 3, 6, 6), (3, 1, 3, 3), padding=1, groups=3),
    _g("2d_float64", 2, (2, 3, 7, 7), (2, 3, 3, 3), stride=2, dtype="float64"),
    _g("3d_basic", 3, (1, 2, 5, 6, 5), (3, 2, 3, 2, 3), stride=(2, 1, 2), padding=1),
    _g(
        "3d_groups_float64",
        3,
        (2, 4, 4, 4, 5),
        (2, 2, 2, 2, 2),
        groups=2,
        dilation=(1, 2, 1),
        dtype="float64",
    ),
]

_FUNCTIONAL = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MODULE = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _torch_transposed(case, x, w, b):
    args = case["args"]
    nd = case["nd"]
    if "output_size" not in args:
        return _FUNCTIONAL[nd](x, w, b, **args)
    groups = args["groups"]
    m = _MODULE[nd](
        w.shape[0],
        w.shape[1] * groups,
        w.shape[2:],
        stride=args["stride"],
        padding=args["padding"],
        groups=groups,
        dilation=args["dilation"],
        bias=b is not None,
    ).to(w.dtype)
    with torch.no_grad():
        m.weight.copy_(w)
        if b is not None:
            m.bias.copy_(b)
        return m(x, output_size=args["output_size"])


def record(out_dir):
    out_dir = pathlib.Path(out_dir)
    rng = np.random.default_rng(20261126)
    arrays = {}
    for case in TRANSPOSED_CASES:
        dtype = np.dtype(case["dtype"])
        x = rng.standard_normal(case["x"]).astype(dtype)
        w = rng.standard_normal(case["w"]).astype(dtype)
        c_out = case["w"][1] * case["args"]["groups"]
        b = rng.standard_normal(c_out).astype(dtype) if case["bias"] else None
        with torch.no_grad():
            out = _torch_transposed(
                case,
                torch.from_numpy(x),
                torch.from_numpy(w),
                None if b is None else torch.from_numpy(b),
            )
        name = case["name"]
        arrays[f"{name}/x"], arrays[f"{name}/w"], arrays[f"{name}/out"] = x, w, out.numpy()
        if b is not None:
            arrays[f"{name}/b"] = b
        arrays[f"{name}/args"] = np.array(json.dumps(dict(case["args"], nd=case["nd"])))
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(out_dir / "transposed.npz", **arrays)

    arrays = {}
    for case in GRAD_CASES:
        dtype = np.dtype(case["dtype"])
        nd, args = case["nd"], case["args"]
        x = rng.standard_normal(case["x"]).astype(dtype)
        w = rng.standard_normal(case["w"]).astype(dtype)
        xt, wt = torch.from_numpy(x), torch.from_numpy(w)
        with torch.no_grad():
            y = _CONV[nd](xt, wt, None, **args)
        go = rng.standard_normal(tuple(y.shape)).astype(dtype)
        got = torch.from_numpy(go)
        grad_input = getattr(torch.nn.grad, f"conv{nd}d_input")(x.shape, wt, got, **args)
        grad_weight = getattr(torch.nn.grad, f"conv{nd}d_weight")(xt, w.shape, got, **args)
        name = case["name"]
        arrays[f"{name}/x"], arrays[f"{name}/w"], arrays[f"{name}/grad_output"] = x, w, go
        arrays[f"{name}/grad_input"] = grad_input.numpy()
        arrays[f"{name}/grad_weight"] = grad_weight.numpy()
        arrays[f"{name}/args"] = np.array(json.dumps(dict(args, nd=nd)))
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(out_dir / "transposed_grad.npz", **arrays)

"""Record PyTorch's results for huge but valid integer arguments, for tests/test_robustness.py.

Issue 13 found that these crashed the interpreter, returned garbage or raised ``SystemError`` in
convlab, while PyTorch computes them: a stride larger than the input is a valid layer with one
output, and a huge padding with a huge stride or dilation is a valid layer whose outputs mostly
see zeros. Writes ``robustness.npz``: for each case ``<name>/args`` (a JSON string: the function,
its integer arguments and the shapes of its arrays), the arrays (``<name>/x``, ``<name>/w``, and
``<name>/go`` for gradients) and ``<name>/out`` (torch's result), so that the test needs nothing
but the file.

Run with a venv that has torch: ``python tests/record_references.py robustness``.
"""

import json

import numpy as np
import torch
import torch.nn.functional as F

BIG = 2**40

# Left out because torch 2.13 itself fails them, so tests/test_robustness.py checks them against
# tests/naive*.py instead: conv3d with groups == C_in and stride 2**62 (oneMKL "Parameter 7 was
# incorrect on entry to mkl_domatcopy2", 54 times), conv_transpose2d on a size-1 input with
# stride 2**62 and conv_transpose3d with stride 2**31 ("stride should be greater than zero, but
# got stride_height: 0": an int32 overflow in its kernels).

# name, function, array shapes (x, w[, go]), keyword arguments
CASES = [
    # the depthwise path (groups == C_in) of the issue
    (
        "dw_stride_2p32",
        "conv2d",
        [(1, 4, 8, 8), (4, 1, 3, 3)],
        dict(stride=[2**32, 2**32], groups=4),
    ),
    (
        "dw_stride_2p62_rows",
        "conv2d",
        [(1, 4, 8, 64), (4, 1, 3, 3)],
        dict(stride=[2**62, 1], groups=4),
    ),
    ("dw_stride_2p62", "conv2d", [(1, 4, 8, 8), (4, 1, 3, 3)], dict(stride=2**62, groups=4)),
    (
        "dw_stride_int64_max",
        "conv2d",
        [(1, 4, 8, 8), (4, 1, 3, 3)],
        dict(stride=2**63 - 1, groups=4),
    ),
    (
        "dw_pad_stride_2p40",
        "conv2d",
        [(1, 4, 8, 8), (4, 1, 3, 3)],
        dict(stride=BIG, padding=BIG, groups=4),
    ),
    ("dw_stride_30000", "conv2d", [(1, 4, 8, 8), (4, 1, 3, 3)], dict(stride=30000, groups=4)),
    (
        "dw_stride_5000_wide_f32",
        "conv2d",
        [(1, 2, 3, 10001), (2, 1, 3, 3)],
        dict(stride=[1, 5000], groups=2),
    ),
    (
        "dw_dilation_pad_2p40",
        "conv2d",
        [(1, 4, 8, 8), (4, 1, 3, 3)],
        dict(dilation=BIG, padding=BIG, groups=4),
    ),
    ("conv1d_dw_stride_1e9", "conv1d", [(1, 4, 8), (4, 1, 3)], dict(stride=10**9, groups=4)),
    # dense and grouped layers
    (
        "dense_pad_stride_2p40",
        "conv2d",
        [(1, 4, 8, 8), (4, 4, 3, 3)],
        dict(stride=BIG, padding=BIG),
    ),
    (
        "grouped_dilation_pad_2p40",
        "conv2d",
        [(2, 4, 8, 8), (6, 2, 3, 3)],
        dict(dilation=[BIG, 1], padding=[BIG, 1], groups=2),
    ),
    ("conv1d_pad_stride_2p40", "conv1d", [(1, 2, 9), (3, 2, 3)], dict(stride=BIG, padding=BIG)),
    (
        "conv3d_pad_stride_2p40",
        "conv3d",
        [(1, 2, 4, 4, 4), (2, 2, 3, 3, 3)],
        dict(stride=BIG, padding=BIG),
    ),
    # transposed convolution: crops all but a few rows of a 2**32-row uncropped result
    # (float32: torch 2.13's float64 transposed kernel overflows an int32 stride at 2**31)
    (
        "convT_stride_2p31_f32",
        "conv_transpose2d",
        [(1, 4, 3, 3), (4, 3, 3, 3)],
        dict(stride=[2**31, 1], padding=[2**31 - 1, 0], groups=2),
    ),
    # gradients
    (
        "grad_input_stride_2p62",
        "conv2d_input",
        [(1, 4, 8, 8), (4, 1, 3, 3), (1, 4, 1, 1)],
        dict(stride=2**62, groups=4),
    ),
    (
        "grad_weight_pad_stride_2p40",
        "conv2d_weight",
        [(1, 4, 8, 8), (4, 4, 3, 3), (1, 4, 3, 3)],
        dict(stride=BIG, padding=BIG),
    ),
    # unfold / fold
    (
        "unfold_pad_stride_2p40",
        "unfold",
        [(1, 3, 8, 7)],
        dict(kernel_size=3, stride=BIG, padding=BIG),
    ),
    (
        "fold_pad_stride_2p40",
        "fold",
        [(1, 27, 9)],
        dict(output_size=[8, 7], kernel_size=3, stride=BIG, padding=BIG),
    ),
]


def _tuple(v):
    return tuple(v) if isinstance(v, list) else v


def _run(func, arrays, kw):
    kw = {k: _tuple(v) for k, v in kw.items()}
    t = [torch.from_numpy(a) for a in arrays]
    if func in ("conv1d", "conv2d", "conv3d", "conv_transpose2d", "conv_transpose3d"):
        return getattr(F, func)(t[0], t[1], **kw)
    if func == "conv2d_input":
        return torch.nn.grad.conv2d_input(arrays[0].shape, t[1], t[2], **kw)
    if func == "conv2d_weight":
        return torch.nn.grad.conv2d_weight(t[0], arrays[1].shape, t[2], **kw)
    if func == "unfold":
        return F.unfold(t[0], **kw)
    if func == "fold":
        return F.fold(t[0], **kw)
    raise ValueError(func)


def record(out_dir):
    rng = np.random.default_rng(13)
    data = {}
    for name, func, shapes, kw in CASES:
        # float64 (torch's double kernels), unless the name says float32
        dtype = np.float32 if name.endswith("_f32") else np.float64
        arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
        print(f"  {name} ...", flush=True)
        out = _run(func, arrays, kw).numpy()
        data[f"{name}/args"] = json.dumps(dict(func=func, kwargs=kw))
        for key, a in zip(("x", "w", "go"), arrays, strict=False):
            data[f"{name}/{key}"] = a
        data[f"{name}/out"] = out
        print(f"  {name}: {func} -> {out.shape}")
    np.savez_compressed(out_dir / "robustness.npz", **data)

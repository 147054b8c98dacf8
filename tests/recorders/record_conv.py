"""Record torch's conv1d/conv2d/conv3d (as nn.ConvNd applies padding_mode) and unfold/fold.

Writes ``conv.npz`` and ``unfold.npz``: for each case the input, weight, bias and torch's output
under keys ``<name>/x``, ``<name>/w``, ``<name>/b``, ``<name>/out``; NaN/inf propagation cases too.
"""

import pathlib
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from conv_cases import CASES, UNFOLD_CASES

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def torch_conv(case, x, w, b):
    """torch.nn.ConvNd's forward: F.pad with the mode, then convolution without padding."""
    nd = case["nd"]
    conv = _CONV[nd]
    kwargs = dict(stride=case["stride"], dilation=case["dilation"], groups=case["groups"])
    if case["padding_mode"] == "zeros":
        return conv(x, w, b, padding=case["padding"], **kwargs)
    # Build the module so its own padding logic (incl. 'same' splitting) is what gets recorded.
    module_cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[nd]
    c_in = x.shape[-nd - 1]
    m = module_cls(
        c_in,
        w.shape[0],
        w.shape[2:],
        stride=case["stride"],
        padding=case["padding"],
        dilation=case["dilation"],
        groups=case["groups"],
        bias=b is not None,
        padding_mode=case["padding_mode"],
    ).to(w.dtype)
    with torch.no_grad():
        m.weight.copy_(w)
        if b is not None:
            m.bias.copy_(b)
        return m(x)


def record_case(rng, case, arrays):
    """Draw a case's input, weight and bias from ``rng``, run torch, store all four in ``arrays``."""
    dtype = np.dtype(case["dtype"])
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    b = rng.standard_normal(case["w"][0]).astype(dtype) if case["bias"] else None
    with torch.no_grad():
        out = torch_conv(
            case,
            torch.from_numpy(x),
            torch.from_numpy(w),
            None if b is None else torch.from_numpy(b),
        )
    name = case["name"]
    arrays[f"{name}/x"] = x
    arrays[f"{name}/w"] = w
    if b is not None:
        arrays[f"{name}/b"] = b
    arrays[f"{name}/out"] = out.numpy()


def record(out_dir):
    rng = np.random.default_rng(20261125)
    arrays = {}
    for case in CASES:
        record_case(rng, case, arrays)

    # NaN and inf propagate through the windows that contain them.
    x = rng.standard_normal((1, 2, 7, 7)).astype(np.float32)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 5, 4] = np.inf
    x[0, 1, 0, 6] = -np.inf
    w = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    with torch.no_grad():
        out = F.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1)
    arrays["nonfinite/x"], arrays["nonfinite/w"], arrays["nonfinite/out"] = x, w, out.numpy()
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(pathlib.Path(out_dir) / "conv.npz", **arrays)

    arrays = {}
    for case in UNFOLD_CASES:
        x = rng.standard_normal(case["x"]).astype(np.float32)
        kwargs = {k: case[k] for k in ("kernel_size", "dilation", "padding", "stride")}
        xt = torch.from_numpy(x)
        cols = F.unfold(xt, **kwargs)
        back = F.fold(cols, x.shape[-2:], **kwargs)
        arrays[f"{case['name']}/x"] = x
        arrays[f"{case['name']}/cols"] = cols.numpy()
        arrays[f"{case['name']}/fold"] = back.numpy()
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(pathlib.Path(out_dir) / "unfold.npz", **arrays)

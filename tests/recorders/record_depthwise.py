"""Record torch's depthwise convolutions (``groups == in_channels``) for tests/test_depthwise.py.

Writes ``depthwise.npz``: for each case ``<name>/x``, ``<name>/w``, ``<name>/b`` (when the case has a
bias), ``<name>/out`` (torch's output) and ``<name>/args`` (a JSON string with ``nd``, ``stride``,
``padding``, ``dilation``, ``groups``, ``padding_mode``), so that the test needs nothing but the
file. The cases cover what the dedicated kernels special-case: the 3x3 fast path (stride 1 and
dilation 1, two rows at a time, odd and even output heights), the general path (kernel widths
1, 2, 3, 4, 5, 7 taken three taps at a time), strides, dilations, padding modes, multipliers
K = 1, 2, 3, a single input channel, NaN/inf propagation, and 1-D and 3-D layers.

Run with a venv that has torch: ``python tests/record_references.py depthwise``.
"""

import json
import pathlib
import sys

import numpy as np
import torch

# the same torch call as the plain-convolution references (nn.ConvNd's padding_mode handling)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from record_conv import record_case


def _case(
    name,
    nd,
    x,
    k,
    multiplier=1,
    bias=True,
    stride=1,
    padding=0,
    dilation=1,
    padding_mode="zeros",
    dtype="float32",
):
    c_in = x[-nd - 1]
    return dict(
        name=name,
        nd=nd,
        x=x,
        w=(c_in * multiplier, 1) + tuple(k),
        bias=bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=c_in,
        padding_mode=padding_mode,
        dtype=dtype,
    )


CASES = [
    # --- 2-D, 3x3: the fast path and its fall-backs
    _case("3x3_s1_even_rows", 2, (2, 4, 8, 9), (3, 3), padding=1),
    _case("3x3_s1_odd_rows", 2, (1, 3, 9, 7), (3, 3), padding=1),
    _case("3x3_valid_x2", 2, (2, 3, 7, 8), (3, 3), multiplier=2),
    _case("3x3_s2", 2, (1, 5, 11, 10), (3, 3), stride=2, padding=1),
    _case("3x3_s_2_1", 2, (1, 2, 9, 9), (3, 3), stride=(2, 1), padding=1, bias=False),
    _case("3x3_s_1_3", 2, (1, 2, 9, 10), (3, 3), stride=(1, 3)),
    _case("3x3_dil2", 2, (2, 2, 11, 11), (3, 3), dilation=2, padding=2),
    _case("3x3_dil_1_3", 2, (1, 3, 9, 12), (3, 3), dilation=(1, 3), padding=(1, 3), multiplier=3),
    _case("3x3_dil_3_1", 2, (1, 2, 12, 8), (3, 3), dilation=(3, 1)),
    _case("3x3_single_channel_k4", 2, (2, 1, 6, 7), (3, 3), multiplier=4, padding=1),
    _case("3x3_unbatched", 2, (3, 6, 6), (3, 3), padding=1),
    # --- 2-D, general kernel sizes
    _case("1x1", 2, (1, 3, 5, 6), (1, 1), multiplier=2),
    _case("5x5_s2", 2, (1, 4, 13, 12), (5, 5), stride=2, padding=2),
    _case(
        "7x7_x3_dil2", 2, (1, 2, 16, 15), (7, 7), multiplier=3, dilation=2, padding=6, bias=False
    ),
    _case("2x4", 2, (2, 3, 7, 9), (2, 4), padding=(0, 1)),
    _case("3x2_s3", 2, (1, 3, 10, 10), (3, 2), stride=3),
    _case("1x3_rowwise", 2, (1, 4, 5, 9), (1, 3), padding=(0, 1)),
    _case("5x1_dil2", 2, (1, 2, 12, 5), (5, 1), dilation=2),
    _case("same_even_4x4", 2, (1, 3, 8, 8), (4, 4), padding="same"),
    # --- padding modes
    _case("reflect_3x3", 2, (1, 3, 6, 7), (3, 3), padding=2, padding_mode="reflect"),
    _case(
        "replicate_5x5_x2",
        2,
        (1, 2, 6, 6),
        (5, 5),
        multiplier=2,
        padding=(3, 1),
        padding_mode="replicate",
    ),
    _case(
        "circular_3x3_s2",
        2,
        (2, 2, 7, 6),
        (3, 3),
        stride=2,
        padding=(4, 2),
        padding_mode="circular",
    ),
    # --- float64
    _case("f64_3x3_x2", 2, (1, 3, 9, 8), (3, 3), multiplier=2, padding=1, dtype="float64"),
    _case(
        "f64_5x3_s2_dil2",
        2,
        (1, 4, 14, 11),
        (5, 3),
        stride=2,
        dilation=2,
        padding=3,
        dtype="float64",
    ),
    # --- 1-D (runs on the 2-D kernel with a height-1 kernel)
    _case("1d_k3_x2", 1, (2, 3, 12), (3,), multiplier=2, padding=1),
    _case("1d_k5_dil3_s2", 1, (1, 4, 20), (5,), dilation=3, stride=2, padding=2),
    _case("1d_reflect", 1, (1, 2, 9), (3,), padding=2, padding_mode="reflect", dtype="float64"),
    # --- 3-D
    _case("3d_3x3x3", 3, (1, 3, 5, 6, 7), (3, 3, 3), padding=1),
    _case(
        "3d_x2_s2_dil",
        3,
        (1, 2, 7, 8, 9),
        (2, 3, 4),
        multiplier=2,
        stride=(1, 2, 2),
        dilation=(2, 1, 2),
        padding=1,
    ),
    _case(
        "3d_f64_circular",
        3,
        (1, 2, 5, 5, 6),
        (3, 1, 3),
        padding=(1, 0, 2),
        padding_mode="circular",
        dtype="float64",
    ),
]


def record(out_dir):
    import pathlib

    rng = np.random.default_rng(4_2026)
    arrays = {}
    for case in CASES:
        record_case(rng, case, arrays)
        name = case["name"]
        args = {
            k: case[k] for k in ("nd", "stride", "padding", "dilation", "groups", "padding_mode")
        }
        arrays[f"{name}/args"] = np.array(json.dumps(args))

    # NaN and inf reach exactly the outputs whose windows contain them (3x3 fast path, multiplier 2).
    x = rng.standard_normal((1, 2, 7, 8)).astype(np.float32)
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 5, 4] = np.inf
    x[0, 1, 0, 7] = -np.inf
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    with torch.no_grad():
        out = torch.nn.functional.conv2d(
            torch.from_numpy(x), torch.from_numpy(w), padding=1, groups=2
        )
    arrays["nonfinite/x"], arrays["nonfinite/w"], arrays["nonfinite/out"] = x, w, out.numpy()
    arrays["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(pathlib.Path(out_dir) / "depthwise.npz", **arrays)

"""conv2d's algorithms (direct, im2col, winograd, fft, auto): agreement, torch references, the auto
rule, Winograd's transforms and the rejections.

Tolerances, in one place. For data of unit scale (the recorded torch cases, N(0, 1) inputs):

* direct, im2col and winograd: ``rtol = atol = 2e-5`` in float32, ``1e-12`` in float64, the same as
  tests/test_conv.py. Winograd F(2x2, 3x3) needs nothing looser: its transforms use only 0, +-1 and
  1/2 (exact in binary) and add at most four terms (measured below 1e-6 of the largest output).
* fft: ``atol = 1e-5 * max|out|`` in float32 and ``1e-12 * max|out|`` in float64, no relative
  term, because the FFT's rounding error follows the magnitude of the whole plane, not of each
  output (``test_fft_error_follows_the_plane`` shows the difference on a high-contrast input).
"""

import pathlib
import threading
import tracemalloc
import warnings

import numba
import numpy as np
import pytest
from conv_cases import CASES
from hypothesis import given, settings
from hypothesis import strategies as st
from traced import traced_peak

import convlab
from convlab import conv as conv_module
from convlab._winograd import AT, BT, G, winograd_weight_transform
from convlab.algorithms import im2col_buffer_nbytes, im2col_workspace_nbytes
from convlab.conv import IM2COL_AUTO_LIMIT, choose_algorithm

DATA = pathlib.Path(__file__).parent / "data"
ALGORITHMS = ("direct", "im2col", "implicit", "winograd", "fft", "auto")
TRANSFORMS = ("winograd", "fft")


def assert_close(out, expected, algorithm, dtype):
    """The per-algorithm, per-dtype tolerance of the module docstring."""
    expected = np.asarray(expected, dtype=np.float64)
    single = np.dtype(dtype) == np.float32
    if algorithm == "fft":
        scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
        np.testing.assert_allclose(
            out,
            expected,
            rtol=0,
            atol=(1e-5 if single else 1e-12) * scale,
            err_msg=f"algorithm={algorithm}",
        )
    else:
        tol = 2e-5 if single else 1e-12
        np.testing.assert_allclose(
            out, expected, rtol=tol, atol=tol, err_msg=f"algorithm={algorithm}"
        )


def winograd_applies(kernel, stride, dilation, padding=0, padding_mode="zeros"):
    """3x3, stride 1, and dilation 1 or a zero padding before the input that is a multiple of
    the dilation (string paddings give d before a 3x3 kernel, other modes pad first)."""
    if tuple(kernel) != (3, 3) or stride not in (1, (1, 1)):
        return False
    d = (dilation, dilation) if np.isscalar(dilation) else tuple(dilation)
    if d == (1, 1) or padding_mode != "zeros" or isinstance(padding, str):
        return True
    p = (padding, padding) if np.isscalar(padding) else tuple(padding)
    return all(pi % di == 0 for pi, di in zip(p, d, strict=True))


def einsum_conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Float64 reference: one einsum per kernel tap over zero-padded input (shares no convlab code)."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    dh, dw = (dilation, dilation) if np.isscalar(dilation) else dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    c_out, c_per_group, kh_n, kw_n = w.shape
    oh = (xp.shape[2] - dh * (kh_n - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw_n - 1) - 1) // sw + 1
    out = np.zeros((x.shape[0], c_out, oh, ow))
    o_per_g = c_out // groups
    for g in range(groups):
        xg = xp[:, g * c_per_group : (g + 1) * c_per_group]
        wg = w[g * o_per_g : (g + 1) * o_per_g]
        for kh in range(kh_n):
            for kw in range(kw_n):
                patch = xg[
                    :,
                    :,
                    kh * dh : kh * dh + (oh - 1) * sh + 1 : sh,
                    kw * dw : kw * dw + (ow - 1) * sw + 1 : sw,
                ]
                out[:, g * o_per_g : (g + 1) * o_per_g] += np.einsum(
                    "nchw,oc->nohw", patch, wg[:, :, kh, kw]
                )
    if b is not None:
        out += np.asarray(b, dtype=np.float64)[None, :, None, None]
    return out


# --- the case table: (name, x shape, w shape, conv2d keyword arguments) ---------------------------
AGREEMENT_CASES = [
    # Winograd's tiling: even and odd output sizes (the last tile half outside), 1x1 outputs
    ("3x3_even", (2, 3, 8, 10), (4, 3, 3, 3), dict(padding=1)),
    ("3x3_odd", (1, 4, 7, 9), (5, 4, 3, 3), dict(padding=1)),
    ("3x3_odd_valid", (2, 2, 6, 5), (3, 2, 3, 3), dict()),
    ("3x3_single_output", (1, 3, 3, 3), (2, 3, 3, 3), dict()),
    ("3x3_rect_padding", (1, 2, 5, 9), (3, 2, 3, 3), dict(padding=(2, 0))),
    ("3x3_groups2", (2, 4, 9, 9), (6, 2, 3, 3), dict(padding=1, groups=2)),
    ("3x3_groups4_narrow", (1, 8, 6, 6), (8, 2, 3, 3), dict(padding=1, groups=4)),
    ("3x3_depthwise", (1, 5, 7, 7), (10, 1, 3, 3), dict(padding=1, groups=5)),
    ("3x3_reflect", (1, 3, 6, 7), (2, 3, 3, 3), dict(padding=2, padding_mode="reflect")),
    ("3x3_circular", (2, 2, 5, 6), (3, 2, 3, 3), dict(padding=1, padding_mode="circular")),
    ("3x3_same", (1, 3, 8, 5), (4, 3, 3, 3), dict(padding="same")),
    ("3x3_wide_channels", (1, 40, 6, 6), (24, 40, 3, 3), dict(padding=1)),
    # dilated Winograd on the interleaved sub-images: sizes that do not divide by the dilation
    # (phases of unequal length), rectangular dilation, groups, no padding, "same"
    ("3x3_d2_odd", (2, 3, 9, 11), (4, 3, 3, 3), dict(dilation=2, padding=2)),
    (
        "3x3_d23_groups",
        (1, 4, 13, 10),
        (6, 2, 3, 3),
        dict(dilation=(2, 3), padding=(4, 3), groups=2),
    ),
    ("3x3_d3_valid", (1, 2, 12, 14), (3, 2, 3, 3), dict(dilation=3)),
    ("3x3_d2_same", (1, 3, 10, 7), (2, 3, 3, 3), dict(dilation=2, padding="same")),
    (
        "3x3_d2_reflect",
        (1, 2, 9, 8),
        (3, 2, 3, 3),
        dict(dilation=2, padding=1, padding_mode="reflect"),
    ),
    # FFT (and im2col, direct) beyond Winograd's reach
    ("5x5_stride2", (2, 3, 11, 10), (4, 3, 5, 5), dict(stride=2, padding=2)),
    ("3x3_dilation2", (1, 2, 11, 11), (3, 2, 3, 3), dict(dilation=2, padding=2)),
    (
        "rect_kernel_mixed",
        (1, 2, 10, 12),
        (3, 2, 3, 5),
        dict(stride=(2, 1), padding=(4, 2), dilation=(3, 1)),
    ),
    ("1x1", (2, 6, 5, 5), (4, 6, 1, 1), dict()),
    ("1x1_stride2", (1, 6, 7, 6), (4, 6, 1, 1), dict(stride=2)),
    ("7x7_stem", (1, 3, 20, 20), (4, 3, 7, 7), dict(stride=2, padding=3)),
    ("9x9_fft_auto", (1, 2, 24, 20), (2, 2, 9, 9), dict(padding=4)),
    ("kernel_eq_input", (2, 3, 4, 5), (2, 3, 4, 5), dict()),
    ("1d_like", (1, 3, 1, 17), (2, 3, 1, 3), dict(padding=(0, 1))),
]


def _applies(algorithm, w_shape, kwargs):
    if algorithm != "winograd":
        return True
    return winograd_applies(
        w_shape[2:],
        kwargs.get("stride", 1),
        kwargs.get("dilation", 1),
        kwargs.get("padding", 0),
        kwargs.get("padding_mode", "zeros"),
    )


def _case_params():
    for name, xs, ws, kw in AGREEMENT_CASES:
        for algorithm in ALGORITHMS:
            if _applies(algorithm, ws, kw):
                yield pytest.param(xs, ws, kw, algorithm, id=f"{name}-{algorithm}")


def _data(x_shape, w_shape, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(x_shape),
        rng.standard_normal(w_shape),
        rng.standard_normal(w_shape[0]),
    )


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, w_shape, kwargs, algorithm", list(_case_params()))
def test_agrees_with_direct(x_shape, w_shape, kwargs, algorithm, dtype):
    x, w, b = _data(x_shape, w_shape)
    x, w, b = x.astype(dtype), w.astype(dtype), b.astype(dtype)
    expected = convlab.conv2d(
        x.astype(np.float64),
        w.astype(np.float64),
        b.astype(np.float64),
        **kwargs,
        algorithm="direct",
    )
    out = convlab.conv2d(x, w, b, **kwargs, algorithm=algorithm)
    assert out.dtype == dtype
    assert out.shape == expected.shape
    assert_close(out, expected, algorithm, dtype)


@pytest.mark.parametrize(
    "name, x_shape, w_shape, kwargs",
    [c for c in AGREEMENT_CASES if "padding_mode" not in c[3] and c[3].get("padding") != "same"],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_einsum_reference_float64(name, x_shape, w_shape, kwargs):
    """Every algorithm against the einsum reference, which shares no code with convlab."""
    x, w, b = _data(x_shape, w_shape, seed=1)
    expected = einsum_conv2d(x, w, b, **kwargs)
    for algorithm in ALGORITHMS:
        if _applies(algorithm, w_shape, kwargs):
            assert_close(
                convlab.conv2d(x, w, b, **kwargs, algorithm=algorithm),
                expected,
                algorithm,
                np.float64,
            )


# --- recorded torch references (tests/data/conv.npz, written by tests/recorders/record_conv.py) ---
@pytest.fixture(scope="module")
def torch_ref():
    with np.load(DATA / "conv.npz") as f:
        return {k: f[k] for k in f.files}


def _torch_params():
    for case in CASES:
        if case["nd"] not in (1, 2):
            continue
        for algorithm in TRANSFORMS:
            if algorithm == "winograd" and not (
                case["nd"] == 2
                and winograd_applies(
                    case["w"][2:],
                    case["stride"],
                    case["dilation"],
                    case["padding"],
                    case["padding_mode"],
                )
            ):
                continue
            yield pytest.param(case, algorithm, id=f"{case['name']}-{algorithm}")


@pytest.mark.kernels
@pytest.mark.parametrize("case, algorithm", list(_torch_params()))
def test_transforms_match_torch(case, algorithm, torch_ref):
    """Winograd and FFT on the recorded torch cases (direct and im2col: tests/test_conv.py)."""
    name = case["name"]
    x, w, expected = torch_ref[f"{name}/x"], torch_ref[f"{name}/w"], torch_ref[f"{name}/out"]
    b = torch_ref.get(f"{name}/b")
    args = {k: case[k] for k in ("stride", "padding", "dilation", "groups", "padding_mode")}
    conv = convlab.conv1d if case["nd"] == 1 else convlab.conv2d
    out = conv(x, w, b, **args, algorithm=algorithm)
    assert out.dtype == x.dtype and out.shape == expected.shape
    assert_close(out, expected, algorithm, x.dtype)


def test_winograd_covers_several_torch_cases():
    """The torch comparison above is not vacuous for Winograd."""
    assert sum(1 for p in _torch_params() if p.values[1] == "winograd") >= 8


# --- precision and non-finite values ----------------------------------------------------------------
def test_fft_error_follows_the_plane():
    """Why the FFT's tolerance is relative to the largest output: a bright corner's rounding error
    lands on small outputs far away, where direct and Winograd stay accurate."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 32, 32))
    x[:, :, :8, :8] *= 1e4
    w = rng.standard_normal((8, 8, 3, 3))
    exact = convlab.conv2d(x, w, padding=1, algorithm="direct")
    far = np.s_[:, :, 16:, 16:]
    err = {
        a: np.abs(
            convlab.conv2d(x.astype(np.float32), w.astype(np.float32), padding=1, algorithm=a)
            - exact
        )[far].max()
        for a in ("direct", "winograd", "fft")
    }
    assert err["winograd"] < 1e-4 and err["direct"] < 1e-4
    assert err["fft"] > 100 * err["direct"]
    assert err["fft"] < 1e-5 * np.abs(exact).max() * 10  # still within the plane-relative bound


@pytest.mark.kernels
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_auto_keeps_torch_nonfinite_propagation_for_transform_shapes(value):
    """Non-finite values: the transforms differ from PyTorch, "auto" does not.

    Winograd puts a NaN exactly where the direct loop does (its hand-written transforms never
    multiply by zero) but turns an inf into NaNs (``inf - inf`` inside a tile); the FFT spreads
    either over the whole plane. "auto" therefore falls back to im2col for non-finite data.
    """
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 48, 16, 16)).astype(np.float32)
    w = rng.standard_normal((48, 48, 3, 3)).astype(np.float32)
    assert choose_algorithm((1, 48, 18, 18), w.shape, (1, 48, 16, 16), 1, 4) == "winograd"
    x[0, 3, 5, 5] = value
    direct = convlab.conv2d(x, w, padding=1, algorithm="direct")
    auto = convlab.conv2d(x, w, padding=1)
    for pattern in (np.isnan, np.isinf):
        np.testing.assert_array_equal(pattern(auto), pattern(direct))
    assert (~np.isfinite(direct)).sum() == 48 * 9  # every channel, the 3x3 outputs around (5, 5)
    wino = convlab.conv2d(x, w, padding=1, algorithm="winograd")
    np.testing.assert_array_equal(np.isfinite(wino), np.isfinite(direct))
    if np.isnan(value):
        np.testing.assert_array_equal(np.isnan(wino), np.isnan(direct))
    else:
        assert np.isnan(wino).any() and not np.isnan(direct).any()
    assert not np.isfinite(convlab.conv2d(x, w, padding=1, algorithm="fft")).any()


def test_auto_fft_shape_with_inf_weight_uses_no_transform():
    x = np.ones((1, 1, 30, 30))
    w = np.ones((1, 1, 9, 9))
    w[0, 0, 0, 0] = np.inf
    out = convlab.conv2d(x, w)
    assert np.isinf(out).all() and not np.isnan(out).any()  # inf * 1 summed: +inf, never inf - inf


# --- the auto rule --------------------------------------------------------------------------------
def _shapes(n, c_in, c_out, size, k, stride=1, padding=None, groups=1):
    padding = k // 2 if padding is None else padding
    out = convlab.conv_output_size((size, size), k, stride, padding)
    return dict(
        x_shape=(n, c_in, size + 2 * padding, size + 2 * padding),
        w_shape=(c_out, c_in // groups, k, k),
        out_shape=(n, c_out) + out,
        groups=groups,
        itemsize=4,
        stride=(stride, stride),
    )


AUTO_RULE = [
    # (layer, expected): each row of the measured table in choose_algorithm's docstring
    (_shapes(1, 64, 64, 56, 3), "winograd"),
    (_shapes(8, 64, 64, 56, 3), "winograd"),
    (_shapes(1, 256, 256, 14, 3), "winograd"),  # 49 tiles, but wide: its threads split channels
    (_shapes(1, 64, 64, 14, 3), "winograd"),
    (_shapes(1, 32, 32, 14, 3), "implicit"),  # 49 tiles of a narrower layer
    (_shapes(1, 16, 16, 14, 3), "implicit"),
    (_shapes(1, 64, 64, 12, 3), "winograd"),  # 36 tiles: the smallest wide case
    (_shapes(1, 64, 64, 10, 3), "implicit"),  # 25 tiles
    (_shapes(1, 512, 512, 7, 3), "im2col"),  # 16 tiles, 49 positions: a product over the batch
    (_shapes(1, 64, 64, 16, 3), "winograd"),  # 64 tiles
    (_shapes(4, 256, 256, 14, 3), "winograd"),  # 4 images: 196 tiles
    (_shapes(1, 8, 8, 56, 3), "im2col"),  # too narrow for Winograd, 72 rows: short for implicit
    (_shapes(1, 64, 64, 56, 3, groups=32), "implicit"),
    (_shapes(1, 128, 128, 28, 3, groups=8), "implicit"),  # 16 per group: Winograd 1.4x slower
    (_shapes(1, 32, 32, 56, 3, groups=2), "implicit"),
    (_shapes(1, 256, 256, 56, 3, groups=8), "implicit"),  # 32 per group
    (_shapes(1, 512, 512, 28, 3, groups=8), "winograd"),  # 64 per group
    (_shapes(1, 64, 128, 56, 3, stride=2), "im2col"),
    (_shapes(1, 3, 64, 224, 7, stride=2), "implicit"),  # 49 taps: the stem
    (_shapes(1, 3, 32, 224, 3, stride=2), "im2col"),  # 9 taps at stride 2
    (_shapes(1, 64, 256, 56, 1), "im2col"),
    (_shapes(1, 256, 128, 28, 1, stride=2), "im2col"),
    (_shapes(1, 64, 64, 28, 5), "implicit"),
    (_shapes(1, 16, 16, 64, 9), "implicit"),  # 256 channel pairs: too many filters to transform
    (_shapes(1, 8, 8, 64, 15), "implicit"),  # the FFT's speed, not its accuracy
    (_shapes(1, 3, 3, 128, 9), "implicit"),  # the FFT's speed, not its accuracy
    (_shapes(1, 1, 1, 256, 31), "implicit"),  # the FFT's speed, not its accuracy
    (
        _shapes(1, 8, 8, 64, 15, stride=2),
        "implicit",
    ),  # the FFT computes every output: not for strides
]


@pytest.mark.parametrize(
    "shapes, expected",
    AUTO_RULE,
    ids=[f"{s['w_shape']}-s{s['stride'][0]}-g{s['groups']}" for s, _ in AUTO_RULE],
)
def test_auto_rule(shapes, expected):
    assert choose_algorithm(**shapes) == expected


def test_auto_rule_counts_the_tiles_of_a_dilated_layer_on_its_sub_images():
    # 256 channels: too wide for the implicit product's dilated rule
    w = (256, 256, 3, 3)
    # 56x56 with dilation 2: four 28x28 sub-images, 784 tiles; with padding 2, a multiple of 2
    args = ((1, 256, 56, 56), w, (1, 256, 56, 56), 1, 4)
    assert choose_algorithm(*args, dilation=(2, 2), padding=(2, 2)) == "winograd"
    assert choose_algorithm(*args, dilation=(2, 2), padding=(2, 2), finite=False) == "im2col"
    assert choose_algorithm(*args, dilation=(2, 2), padding=(1, 2)) == "im2col"  # no sub-images
    assert choose_algorithm(*args, dilation=(2, 2)) == "im2col"  # padding unknown
    # 8x8 with dilation 4: sixteen 2x2 sub-images of one tile each: 16 tiles, too few
    small = ((1, 256, 8, 8), w, (1, 256, 8, 8), 1, 4)
    assert choose_algorithm(*small, dilation=(4, 4), padding=(4, 4)) == "im2col"
    # 32x32 with dilation 6: 324 tiles, but on 36 sub-images of 6x6 (fewer than 8 rows each);
    # 64x64 with dilation 4: 16x16 sub-images
    d6 = ((1, 256, 32, 32), w, (1, 256, 32, 32), 1, 4)
    assert choose_algorithm(*d6, dilation=(6, 6), padding=(6, 6)) == "im2col"
    d4 = ((1, 256, 64, 64), w, (1, 256, 64, 64), 1, 4)
    assert choose_algorithm(*d4, dilation=(4, 4), padding=(4, 4)) == "winograd"


def test_auto_rule_takes_the_implicit_product_for_dilated_layers_that_waste_little():
    """A dilated 2-D layer of at most 128 channels per group whose thrown-away positions, (kW - 1)
    dW at the end of each row, are at most an eighth of the row: the implicit product, before
    Winograd's sub-images and for non-finite data too. More waste, or wider layers: as before."""
    w = (64, 64, 3, 3)
    d2 = ((1, 64, 56, 56), w, (1, 64, 56, 56), 1, 4)  # 4 of 60 positions per row
    assert choose_algorithm(*d2, dilation=(2, 2), padding=(2, 2)) == "implicit"
    assert choose_algorithm(*d2, dilation=(2, 2)) == "implicit"
    assert choose_algorithm(*d2, dilation=(2, 2), padding=(2, 2), finite=False) == "implicit"
    d4 = ((1, 64, 64, 64), w, (1, 64, 64, 64), 1, 4)  # 8 of 72
    assert choose_algorithm(*d4, dilation=(4, 4), padding=(4, 4)) == "implicit"
    d6 = ((1, 128, 32, 32), (128, 128, 3, 3), (1, 128, 32, 32), 1, 4)  # 12 of 44
    assert choose_algorithm(*d6, dilation=(6, 6), padding=(6, 6)) == "im2col"
    d4_32 = ((1, 64, 32, 32), w, (1, 64, 32, 32), 1, 4)  # 8 of 40
    assert choose_algorithm(*d4_32, dilation=(4, 4), padding=(4, 4)) == "winograd"
    strided = ((1, 64, 56, 56), w, (1, 64, 28, 28), 1, 4)
    assert choose_algorithm(*strided, stride=(2, 2), dilation=(2, 2)) == "im2col"
    # at the limit of 128 channels per group, and in groups
    wide = ((1, 128, 28, 28), (128, 128, 3, 3), (1, 128, 28, 28), 1, 4)  # 4 of 32
    assert choose_algorithm(*wide, dilation=(2, 2), padding=(2, 2)) == "implicit"
    grouped = ((1, 256, 28, 28), (256, 64, 3, 3), (1, 256, 28, 28), 4, 4)
    assert choose_algorithm(*grouped, dilation=(2, 2), padding=(2, 2)) == "implicit"


def test_dilated_auto_runs_winograd_and_falls_back_for_inf(monkeypatch):
    """conv2d's "auto" sends a dilated 3x3 layer with a multiple padding to Winograd, and for
    non-finite data computes it again without the transform, as for dilation 1."""
    from convlab import _winograd

    calls = []
    real = _winograd.conv2d_winograd
    monkeypatch.setattr(
        _winograd, "conv2d_winograd", lambda *a, **k: calls.append(a[0].shape) or real(*a, **k)
    )
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 48, 20, 20)).astype(np.float32)
    w = rng.standard_normal((48, 48, 3, 3)).astype(np.float32)
    expected = einsum_conv2d(x, w, padding=2, dilation=2)
    out = convlab.conv2d(x, w, padding=2, dilation=2)
    assert calls == [(4, 48, 10, 10)]  # one call, the four sub-images as a batch
    assert_close(out, expected, "winograd", np.float32)
    x[0, 2, 7, 8] = np.inf
    out = convlab.conv2d(x, w, padding=2, dilation=2)
    direct = convlab.conv2d(x, w, padding=2, dilation=2, algorithm="direct")
    for pattern in (np.isnan, np.isinf):
        np.testing.assert_array_equal(pattern(out), pattern(direct))
    assert np.isinf(direct).sum() == 48 * 9


def test_auto_rule_without_finite_data_avoids_transforms():
    assert choose_algorithm(**_shapes(1, 64, 64, 56, 3), finite=False) == "implicit"
    assert choose_algorithm(**_shapes(1, 1, 1, 256, 31), finite=False) == "implicit"
    assert choose_algorithm(**_shapes(1, 8, 8, 56, 3), finite=False) == "im2col"


def test_auto_keeps_im2col_for_a_5_gb_matrix_because_conv2d_never_builds_it():
    # 3x3 stride 2: neither Winograd, the implicit product nor the FFT applies; a 1022x1022 map
    # would need a 5 GB column matrix, but conv2d's im2col works in blocks of a few MB per thread
    shapes = _shapes(1, 512, 512, 1022, 3, stride=2)
    out = shapes["out_shape"][2:]
    assert im2col_buffer_nbytes(1, 512, (3, 3), out, 4) > 15 * IM2COL_AUTO_LIMIT
    assert im2col_workspace_nbytes(1, 512, 512, (3, 3), out, 4, stride=(2, 2)) < 2**25
    assert choose_algorithm(**shapes) == "im2col"


def test_auto_picks_direct_when_the_im2col_blocks_exceed_the_limit_without_allocating(monkeypatch):
    shapes = _shapes(1, 512, 512, 1022, 3, stride=2)
    needed = im2col_workspace_nbytes(1, 512, 512, (3, 3), shapes["out_shape"][2:], 4, stride=(2, 2))
    monkeypatch.setattr(conv_module, "IM2COL_AUTO_LIMIT", needed - 1)
    tracemalloc.start()
    try:
        assert choose_algorithm(**shapes) == "direct"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20  # nothing near the buffer's size was allocated


def test_auto_limit_is_respected_by_conv2d(monkeypatch):
    """With the limit lowered below a layer's blocks, conv2d(auto) never calls im2col."""
    x = np.random.default_rng(0).standard_normal((1, 4, 12, 12))
    w = np.random.default_rng(1).standard_normal((8, 4, 5, 5))
    calls = []
    needed = im2col_workspace_nbytes(1, 4, 8, (5, 5), (8, 8), 8)
    monkeypatch.setattr(conv_module, "conv2d_im2col", lambda *a: calls.append(a))
    monkeypatch.setattr(conv_module, "IM2COL_AUTO_LIMIT", needed - 1)
    out = convlab.conv2d(x, w)
    assert calls == []
    np.testing.assert_allclose(out, einsum_conv2d(x, w), rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(conv_module, "IM2COL_AUTO_LIMIT", needed)
    convlab.conv2d(x, w)
    assert len(calls) == 1


@pytest.mark.parametrize("threads", [1, 2])
def test_im2col_conv2d_allocates_its_blocks_not_the_matrix(threads):
    """Traced warm, in a fresh thread whose reused buffers start empty (tests/traced.py)."""
    import numba

    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    x = np.random.default_rng(2).standard_normal((1, 64, 56, 56)).astype(np.float32)
    w = (np.random.default_rng(3).standard_normal((64, 64, 5, 5)) / 40).astype(
        np.float32
    )  # unit scale
    matrix = im2col_buffer_nbytes(1, 64, (5, 5), (56, 56), 4)
    blocks = im2col_workspace_nbytes(1, 64, 64, (5, 5), (56, 56), 4, threads=threads)
    peak, out = traced_peak(
        lambda: convlab.conv2d(x, w, padding=2, algorithm="im2col"),
        thread_warmup=lambda: convlab.conv2d(x[:, :, :6, :6], w, padding=2, algorithm="im2col"),
        threads=threads,
    )
    # blocks + output (the size of x) + small arrays: no padded copy of the input (the kernel
    # writes the padding's zeros into the columns) and no buffer of products (BLAS writes into
    # the output); the full matrix is 19 MiB. Slack 64 KiB: the weight reshaped to a contiguous
    # matrix is a view here (w is contiguous), so what remains are array headers, views and
    # argument tuples, a few KiB; it would not hide a padded copy (0.9 MiB).
    assert blocks + x.nbytes <= peak <= blocks + x.nbytes + 2**16
    assert peak < matrix / 3
    assert_close(out, einsum_conv2d(x, w, padding=2), "im2col", np.float32)


def test_im2col_buffer_nbytes_is_the_buffer_im2col_builds():
    x = np.zeros((2, 3, 9, 8), dtype=np.float32)
    cols = convlab.im2col(x, (3, 2), padding=1, stride=(2, 1))
    out = convlab.conv_output_size((9, 8), (3, 2), (2, 1), 1)
    assert im2col_buffer_nbytes(2, 3, (3, 2), out, 4) == cols.nbytes
    # ~K^2 times the input for a 'same' 3x3 layer
    assert im2col_buffer_nbytes(1, 64, (3, 3), (56, 56), 4) == 9 * 64 * 56 * 56 * 4


# --- Winograd's transforms --------------------------------------------------------------------------
def test_winograd_f23_one_dimension():
    """y = A^T [(G g) * (B^T d)]: two outputs of a 3-tap correlation from 4 multiplications."""
    rng = np.random.default_rng(5)
    for _ in range(5):
        d, g = rng.standard_normal(4), rng.standard_normal(3)
        products = (G @ g) * (BT @ d)
        assert products.size == 4
        np.testing.assert_allclose(AT @ products, [d[0:3] @ g, d[1:4] @ g], rtol=1e-14, atol=1e-14)


def test_winograd_f2x2_3x3_nested():
    """Y = A^T [(G g G^T) * (B^T d B)] A: a 2x2 output tile from 16 multiplications, not 36."""
    rng = np.random.default_rng(6)
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    products = (G @ g @ G.T) * (BT @ d @ BT.T)
    direct = np.array([[np.sum(d[i : i + 3, j : j + 3] * g) for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(AT @ products @ AT.T, direct, rtol=1e-13, atol=1e-13)
    assert products.size == 16 and direct.size * g.size == 36


def test_winograd_weight_transform_layout():
    rng = np.random.default_rng(7)
    w = rng.standard_normal((3, 2, 3, 3))
    u = winograd_weight_transform(w)
    assert u.shape == (16, 3, 2)
    for o in range(3):
        for c in range(2):
            np.testing.assert_allclose(
                u[:, o, c].reshape(4, 4), G @ w[o, c] @ G.T, rtol=1e-14, atol=1e-14
            )


# --- rejections: one test per rule ------------------------------------------------------------------
def test_winograd_rejects_other_kernel_sizes():
    with pytest.raises(ValueError, match=r"winograd.*3x3 kernel, got kernel size 5x5"):
        convlab.conv2d(np.ones((1, 1, 8, 8)), np.ones((1, 1, 5, 5)), algorithm="winograd")


def test_winograd_rejects_stride():
    with pytest.raises(ValueError, match=r"winograd.*stride 1, got stride=\(2, 1\)"):
        convlab.conv2d(
            np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3)), stride=(2, 1), algorithm="winograd"
        )


def test_winograd_rejects_dilation_without_a_multiple_padding():
    with pytest.raises(
        ValueError,
        match=r"winograd.*multiple of the dilation.*got dilation=\(2, 2\) with padding=\(1, 1\)",
    ):
        convlab.conv2d(
            np.ones((1, 1, 8, 8)),
            np.ones((1, 1, 3, 3)),
            dilation=2,
            padding=1,
            algorithm="winograd",
        )


def test_winograd_rejects_conv1d():
    with pytest.raises(ValueError, match=r"winograd.*got kernel size 1x3"):
        convlab.conv1d(np.ones((1, 1, 8)), np.ones((1, 1, 3)), algorithm="winograd")


def test_winograd_rejects_before_any_work_even_for_an_empty_batch():
    with pytest.raises(ValueError, match="3x3 kernel"):
        convlab.conv2d(np.ones((0, 1, 8, 8)), np.ones((1, 1, 5, 5)), algorithm="winograd")


def test_unknown_algorithm_lists_the_new_ones():
    with pytest.raises(ValueError, match=r"'winograd', 'fft', got 'fastest'"):
        convlab.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), algorithm="fastest")


# --- reuse of buffers, threads, empty inputs ----------------------------------------------------------
@pytest.mark.kernels
@pytest.mark.parametrize("algorithm", ["winograd", "im2col", "fft"])
def test_workspace_reuse_across_shapes(algorithm):
    """Reused scratch buffers: a big call, then a small one, then the big one again."""
    rng = np.random.default_rng(8)
    shapes = [
        ((2, 6, 13, 11), (5, 6, 3, 3)),
        ((1, 2, 4, 4), (3, 2, 3, 3)),
        ((2, 6, 13, 11), (5, 6, 3, 3)),
    ]
    for xs, ws in shapes:
        x, w = rng.standard_normal(xs), rng.standard_normal(ws)
        assert_close(
            convlab.conv2d(x, w, padding=1, algorithm=algorithm),
            einsum_conv2d(x, w, padding=1),
            algorithm,
            np.float64,
        )


def test_transforms_from_several_threads():
    rng = np.random.default_rng(9)
    jobs = [
        (rng.standard_normal((1, 16, 10 + i, 9)), rng.standard_normal((16, 16, 3, 3)))
        for i in range(6)
    ]
    expected = [einsum_conv2d(x, w, padding=1) for x, w in jobs]
    results, errors = {}, []

    def worker(t):
        try:
            for j, (x, w) in enumerate(jobs):
                algorithm = ("winograd", "fft", "im2col")[(t + j) % 3]
                results[(t, j)] = (algorithm, convlab.conv2d(x, w, padding=1, algorithm=algorithm))
        except Exception as exc:  # pragma: no cover - reported by the assert
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for (_, j), (algorithm, out) in results.items():
        assert_close(out, expected[j], algorithm, np.float64)


# --- the per-thread blocks of im2col and Winograd ----------------------------------------------------
# Both split the output among the threads and walk each share in blocks (im2col: blocks of output
# positions, which may start and end mid-row and never cross an image; Winograd: blocks of tile
# rows). The default blocks are bigger than the small test inputs, so these tests shrink them.
BLOCK_CASES = [
    # (x shape, w shape, conv2d keyword arguments)
    ((3, 4, 9, 7), (6, 4, 3, 3), dict(padding=1)),
    ((2, 6, 11, 13), (4, 3, 3, 2), dict(padding=(2, 1), stride=(2, 1), dilation=(1, 2), groups=2)),
    ((2, 3, 15, 12), (5, 3, 5, 5), dict(stride=3, padding=2)),
    ((3, 8, 7, 5), (4, 8, 1, 1), {}),
    ((1, 4, 13, 13), (4, 2, 3, 3), dict(padding=1, groups=2)),
]


@pytest.mark.kernels
@pytest.mark.parametrize("block", [1, 5, 7, 64])
@pytest.mark.parametrize("case", range(len(BLOCK_CASES)))
def test_im2col_blocks_across_rows_and_images(monkeypatch, case, block):
    """Blocks of 1, 5 and 7 positions split output rows (widths 3-13) and images anywhere."""
    from convlab import algorithms

    monkeypatch.setattr(algorithms, "IM2COL_MIN_BLOCK", block)
    monkeypatch.setattr(algorithms, "IM2COL_BLOCK_BYTES", 1)
    xs, ws, kwargs = BLOCK_CASES[case]
    rng = np.random.default_rng(20 + case)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    assert_close(
        convlab.conv2d(x, w, b, algorithm="im2col", **kwargs),
        einsum_conv2d(x, w, b, **kwargs),
        "im2col",
        np.float64,
    )


@pytest.mark.kernels
@pytest.mark.parametrize("tiles", [1, 3, 8, 1000])
@pytest.mark.parametrize("shape", [(3, 4, 9, 7), (2, 6, 8, 8), (1, 4, 1, 1), (2, 4, 2, 5)])
def test_winograd_blocks_and_odd_sizes(monkeypatch, shape, tiles):
    """Blocks of 1 tile row up to all of them; odd heights and widths drop the extra outputs."""
    from convlab import _winograd

    monkeypatch.setattr(_winograd, "BLOCK_TILES", tiles)
    monkeypatch.setattr(_winograd, "MIN_BLOCK_TILES", 1)
    rng = np.random.default_rng(30)
    x = rng.standard_normal(shape)
    for groups in (1, 2):
        w, b = rng.standard_normal((6, shape[1] // groups, 3, 3)), rng.standard_normal(6)
        assert_close(
            convlab.conv2d(x, w, b, padding=1, groups=groups, algorithm="winograd"),
            einsum_conv2d(x, w, b, padding=1, groups=groups),
            "winograd",
            np.float64,
        )


@pytest.mark.kernels
@pytest.mark.parametrize("split", ["tiles", "channels"])
@pytest.mark.parametrize("u_block", [1, 3, 10**6])  # filters per block: 1, a few, all
@pytest.mark.parametrize("threads", [1, 2])
def test_winograd_splits_pad_as_they_read(monkeypatch, split, u_block, threads):
    """Both ways of splitting a layer between threads, with the zero padding read in the kernel.

    Padding 0-3 (more padding than the 3x3 window reaches gives outputs that see only zeros and
    the bias), odd and tiny images, groups whose output channels straddle a thread's range or a
    filter block, and filter blocks of 1 filter up to all of them.
    """
    from convlab import _winograd

    monkeypatch.setattr(_winograd, "CHANNEL_SPLIT_TILES", 10**9 if split == "channels" else 0)
    bytes_per_filter = 16 * 2 * 8  # 16 entries of 2 input channels per group, float64
    monkeypatch.setattr(_winograd, "U_BLOCK_BYTES", u_block * bytes_per_filter)
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        rng = np.random.default_rng(40 + threads)
        for shape, padding, groups in [
            ((2, 4, 9, 7), 1, 2),
            ((1, 6, 1, 2), 2, 3),
            ((2, 2, 5, 5), 0, 1),
            ((1, 4, 3, 8), 3, 2),
            ((3, 6, 6, 11), (2, 0), 3),
        ]:
            x = rng.standard_normal(shape)
            c_in = shape[1]
            w = rng.standard_normal((3 * groups, c_in // groups, 3, 3))
            b = rng.standard_normal(3 * groups)
            assert_close(
                convlab.conv2d(x, w, b, padding=padding, groups=groups, algorithm="winograd"),
                einsum_conv2d(x, w, b, padding=padding, groups=groups),
                "winograd",
                np.float64,
            )
    finally:
        numba.set_num_threads(before)


@pytest.mark.parametrize("algorithm", ["im2col", "winograd"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_thread_and_two_threads(algorithm, dtype):
    """Both thread counts are right. They need not agree bit for bit: the split changes the width
    of the blocks, and BLAS may pick another kernel (and summation order) for another width."""
    import numba

    rng = np.random.default_rng(31)
    x = rng.standard_normal((2, 16, 14, 14)).astype(dtype)
    w = rng.standard_normal((16, 16, 3, 3)).astype(dtype)
    previous = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = convlab.conv2d(x, w, padding=1, algorithm=algorithm)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = convlab.conv2d(x, w, padding=1, algorithm=algorithm)
    finally:
        numba.set_num_threads(previous)
    expected = einsum_conv2d(x, w, padding=1)
    assert_close(one, expected, algorithm, dtype)
    assert_close(two, expected, algorithm, dtype)


def test_blas_setter_is_found_and_restores():
    """The thread-count setter exists for SciPy's OpenBLAS wheels and round-trips."""
    from convlab._blas import blas_library, blas_threads_setter

    setter = blas_threads_setter()
    assert blas_library() is not None, "SciPy's BLAS has no thread-count setter"
    previous = setter(1)
    assert setter(previous) == 1


@pytest.mark.parametrize("algorithm", ["im2col", "winograd"])
def test_blas_thread_count_is_restored_after_calls_from_several_threads(algorithm):
    """conv2d holds SciPy's BLAS at one thread only while its kernels run, even when several
    Python threads call it at once (the setter is global in SciPy's OpenBLAS build)."""
    from convlab._blas import blas_threads_setter

    setter = blas_threads_setter()
    before = setter(3)
    try:
        x = np.random.default_rng(40).standard_normal((2, 16, 20, 20))
        w = np.random.default_rng(41).standard_normal((16, 16, 3, 3))
        expected = einsum_conv2d(x, w, padding=1)
        errors = []

        def work():
            try:
                for _ in range(20):
                    assert_close(
                        convlab.conv2d(x, w, padding=1, algorithm=algorithm),
                        expected,
                        algorithm,
                        np.float64,
                    )
            except Exception as exc:  # pragma: no cover - reported by the assert
                errors.append(repr(exc))

        threads = [threading.Thread(target=work) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert setter(3) == 3, "conv2d left SciPy's BLAS thread count changed"
    finally:
        setter(before)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_empty_batch(algorithm):
    out = convlab.conv2d(
        np.ones((0, 2, 6, 6)), np.ones((3, 2, 3, 3)), padding=1, algorithm=algorithm
    )
    assert out.shape == (0, 3, 6, 6)


# --- property: every algorithm agrees with the einsum reference --------------------------------------
@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 2),
    groups=st.integers(1, 2),
    c_per_group=st.integers(1, 3),
    out_per_group=st.integers(1, 3),
    h=st.integers(3, 9),
    w=st.integers(3, 9),
    k=st.sampled_from([1, 2, 3, 4]),
    stride=st.integers(1, 2),
    padding=st.integers(0, 2),
    dilation=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_property_all_algorithms_agree(
    n, groups, c_per_group, out_per_group, h, w, k, stride, padding, dilation, seed
):
    if dilation * (k - 1) + 1 > min(h, w) + 2 * padding:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, groups * c_per_group, h, w))
    wt = rng.standard_normal((groups * out_per_group, c_per_group, k, k))
    kwargs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    expected = einsum_conv2d(x, wt, **kwargs)
    for algorithm in ALGORITHMS:
        if _applies(algorithm, wt.shape, kwargs):
            assert_close(
                convlab.conv2d(x, wt, **kwargs, algorithm=algorithm),
                expected,
                algorithm,
                np.float64,
            )


def test_auto_recomputes_when_transform_output_is_not_finite(monkeypatch):
    """auto runs Winograd, sees a non-finite output and computes the layer again without the
    transform (by the implicit product, as the rule picks for these shapes without Winograd)."""
    calls = []
    real = {name: getattr(conv_module, name) for name in ("conv2d_winograd", "conv2d_im2col")}
    for name in real:
        monkeypatch.setattr(
            conv_module, name, lambda *a, _n=name: (calls.append(_n), real[_n](*a))[1]
        )
    implicit = conv_module._implicit.conv
    monkeypatch.setattr(
        conv_module._implicit, "conv", lambda *a: (calls.append("implicit"), implicit(*a))[1]
    )
    x = np.random.default_rng(4).standard_normal((1, 48, 16, 16))
    w = np.random.default_rng(5).standard_normal((48, 48, 3, 3))
    convlab.conv2d(x, w, padding=1)
    assert calls == ["conv2d_winograd"]
    x[0, 0, 0, 0] = np.inf
    out = convlab.conv2d(x, w, padding=1)
    assert calls == ["conv2d_winograd", "conv2d_winograd", "implicit"]
    np.testing.assert_array_equal(
        np.isnan(out), np.isnan(convlab.conv2d(x, w, padding=1, algorithm="direct"))
    )


def test_auto_overflowing_sum_still_gives_the_right_result():
    x = np.full((1, 48, 16, 16), 3e37, dtype=np.float32)  # Winograd's shape for auto
    w = np.full((48, 48, 3, 3), 1e-2, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the overflowing check itself must not warn
        out = convlab.conv2d(x, w, padding=1)  # outputs ~1.3e38: finite, their sum is not
    np.testing.assert_allclose(out, convlab.conv2d(x, w, padding=1, algorithm="direct"), rtol=1e-5)
    assert np.isfinite(out).all()

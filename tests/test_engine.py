"""convlab._engine (the weight gradients) and conv3d and the stride-1 transposed convolution
(:mod:`convlab._implicit`).

Against slow references written from the definitions (tests/naive_transposed.py for small
layers, a float64 sum over kernel taps for larger ones), on small layers with the engine's
cut forced into several channel parts and several ranges of blocks (so that the partial sums
and their reduction run), and on layers large enough that the default cut splits them.
"""

import itertools
import math

import numpy as np
import pytest
import tolerances
from naive_transposed import conv_weight_grad
from test_implicit import force_small_cut

import convlab
import convlab.grad
from convlab import _engine, _tile, transposed

WEIGHT = {
    1: convlab.grad.conv1d_weight,
    2: convlab.grad.conv2d_weight,
    3: convlab.grad.conv3d_weight,
}


def tol(dtype):
    # a weight gradient sums over every output position and batch element: looser in float32
    return tolerances.tol(dtype, float32=1e-4)


def weight_grad_by_taps(x, weight_shape, go, stride, padding, dilation, groups):
    """float64 ``dL/dw``: for every kernel tap, the inner product of ``go`` with the input
    elements that tap reads (a strided slice of the zero-padded input), per group."""
    x = np.asarray(x, dtype=np.float64)
    go = np.asarray(go, dtype=np.float64)
    nd = x.ndim - 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    c_out, c_per_group = weight_shape[:2]
    m = c_out // groups
    out = go.shape[2:]
    grad = np.zeros(tuple(weight_shape))
    for tap in itertools.product(*(range(k) for k in weight_shape[2:])):
        window = tuple(
            slice(
                tap[i] * dilation[i], tap[i] * dilation[i] + (out[i] - 1) * stride[i] + 1, stride[i]
            )
            for i in range(nd)
        )
        sl = xp[(slice(None), slice(None)) + window]
        for g in range(groups):
            grad[(slice(g * m, (g + 1) * m), slice(None)) + tap] = np.einsum(
                "nop,ncp->oc",
                go[:, g * m : (g + 1) * m].reshape(go.shape[0], m, -1),
                sl[:, g * c_per_group : (g + 1) * c_per_group].reshape(
                    go.shape[0], c_per_group, -1
                ),
            )
    return grad


def _layer(nd, batch, c_in, c_out, size, kernel, stride, padding, dilation, groups, dtype, seed):
    rng = np.random.default_rng(seed)
    t = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    size, kernel, stride, padding, dilation = map(t, (size, kernel, stride, padding, dilation))
    x = rng.standard_normal((batch, c_in) + size).astype(dtype)
    out = tuple(
        (size[i] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i in range(nd)
    )
    go = rng.standard_normal((batch, c_out) + out).astype(dtype)
    w_shape = (c_out, c_in // groups) + kernel
    return x, go, w_shape, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


# nd, batch, C_in, C_out, size, kernel, stride, padding, dilation, groups
SMALL = [
    (1, 2, 4, 6, 11, 3, 1, 1, 1, 1),
    (1, 3, 6, 4, 17, 4, 2, 2, 3, 2),
    (2, 2, 4, 6, (7, 9), 3, 1, 1, 1, 1),
    (2, 3, 6, 4, (8, 7), (2, 3), (2, 1), (0, 2), (1, 2), 2),
    (2, 1, 3, 3, (9, 6), (3, 1), (3, 2), (1, 0), (2, 1), 3),
    (3, 2, 4, 4, (4, 5, 6), 3, 1, 1, 1, 2),
    (3, 2, 2, 3, (5, 4, 7), (2, 3, 2), (2, 1, 3), (1, 1, 2), (1, 2, 1), 1),
]


def use_path(monkeypatch, path):
    """Make weight_grad run by BLAS over columns or by the tile, whatever it would pick."""
    monkeypatch.setattr(_engine, "weight_grad_uses_tile", lambda *a: path == "tile")


def tile_plan(x, w_shape, go, kw, threads):
    """weight_grad_tile_plan for a layer of _layer, its sizes as (depth, height, width)."""
    t = lambda v: (1,) * (5 - x.ndim) + tuple(v)  # noqa: E731
    return _engine.weight_grad_tile_plan(
        x.shape[0],
        x.shape[1],
        w_shape[0],
        t(w_shape[2:]),
        t(kw["stride"]),
        t(kw["dilation"]),
        t(go.shape[2:]),
        x.itemsize,
        kw["groups"],
        threads,
    )


def force_tile_cut(monkeypatch):
    """The tiled weight gradient cut into blocks of a few positions (several segments of each
    row in 1-D), with as many ranges of blocks as there are blocks (up to 12) and the output
    channels in parts, as seven threads would cut them."""
    plan = _engine.weight_grad_tile_plan
    monkeypatch.setattr(_engine, "TILE_BLOCK", 6)
    monkeypatch.setattr(_engine, "TILE_BUFFER_BYTES", 1)
    monkeypatch.setattr(_engine, "weight_grad_tile_plan", lambda *a: plan(*a[:-1], 7))


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("forced", [False, True], ids=["default-cut", "forced-cut"])
@pytest.mark.parametrize("path", ["blas", "tile"])
@pytest.mark.parametrize("case", SMALL, ids=[f"{c[0]}d-{i}" for i, c in enumerate(SMALL)])
def test_weight_grad_matches_naive(case, path, forced, dtype, monkeypatch):
    nd = case[0]
    x, go, w_shape, kw = _layer(*case, dtype, seed=len(SMALL) + case[1])
    use_path(monkeypatch, path)
    if forced and path == "blas":
        # tiny blocks, several channel parts and several ranges with their own partial sums
        monkeypatch.setattr(_engine, "MIN_BLOCK", 3)
        monkeypatch.setattr(_engine, "BLOCK_BYTES", 1)
        monkeypatch.setattr(_engine, "WGRAD_MIN_ROWS", 1)
        blocks, c_parts, r_parts, _, _ = _engine.weight_grad_plan(
            x.shape[0], x.shape[1], w_shape[0], w_shape[2:], go.shape[2:], x.itemsize, kw["groups"]
        )
        assert blocks > 1 and r_parts > 1 and (c_parts > 1 or w_shape[1] == 1)
    if forced and path == "tile":
        force_tile_cut(monkeypatch)
        plan = tile_plan(x, w_shape, go, kw, 1)
        panels = -(-w_shape[0] // kw["groups"] // _tile.panel_rows(plan[0]))
        assert plan[3] > 1 and (plan[4] > 1 or panels == 1)
        assert nd > 1 or plan[1] > 0  # 1-D: segments of the row
    got = WEIGHT[nd](x, w_shape, go, **kw)
    assert got.dtype == dtype and got.shape == w_shape
    np.testing.assert_allclose(got, conv_weight_grad(x, w_shape, go, **kw), **tol(dtype))


@pytest.mark.kernels
@pytest.mark.parametrize("transposed", [False, True], ids=["rows-as-M", "channels-as-M"])
@pytest.mark.parametrize("case", SMALL[:4], ids=[f"{c[0]}d-{i}" for i, c in enumerate(SMALL[:4])])
def test_weight_grad_both_orientations(case, transposed, monkeypatch):
    """The weight gradient multiplies with the output channels or the rows of columns as BLAS's
    M (weight_grad_transposed picks by the layer); both, with several ranges of partial sums."""
    x, go, w_shape, kw = _layer(*case, np.float64, seed=40 + case[1])
    monkeypatch.setattr(_engine, "weight_grad_transposed", lambda *a: transposed)
    monkeypatch.setattr(_engine, "MIN_BLOCK", 3)
    monkeypatch.setattr(_engine, "BLOCK_BYTES", 1)
    got = WEIGHT[case[0]](x, w_shape, go, **kw)
    np.testing.assert_allclose(got, conv_weight_grad(x, w_shape, go, **kw), **tol(np.float64))


LARGE = [
    (1, 4, 64, 64, 300, 5, 1, 2, 1, 1),
    (1, 2, 32, 48, 257, 3, 2, 1, 4, 2),
    (1, 2, 32, 40, 1500, 3, 1, 3, 3, 1),
    (2, 3, 48, 40, (20, 22), 3, 1, 1, 1, 1),
    (2, 2, 64, 32, (31, 37), (3, 5), (2, 1), (1, 2), (1, 2), 4),
    (2, 2, 64, 24, (61, 37), 3, 2, 1, 1, 1),
    (3, 2, 24, 16, (6, 10, 12), 3, 1, 1, 1, 1),
    (3, 1, 16, 24, (7, 9, 8), (3, 2, 3), (2, 1, 2), (1, 0, 1), (1, 2, 1), 2),
]


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", LARGE, ids=[f"{c[0]}d-{i}" for i, c in enumerate(LARGE)])
def test_weight_grad_large_layers(case, dtype):
    """Layers whose default cut has several channel parts or ranges of blocks, by the path
    weight_grad picks (the tile for most of them)."""
    nd = case[0]
    x, go, w_shape, kw = _layer(*case, dtype, seed=case[1] + case[2])
    t = lambda v: (1,) * (3 - nd) + tuple(v)  # noqa: E731
    if _engine.weight_grad_uses_tile(
        x.shape[1],
        w_shape[0],
        t(w_shape[2:]),
        kw["groups"],
        x.itemsize,
        t(kw["stride"]),
    ):
        plan = tile_plan(x, w_shape, go, kw, 2)
        assert plan[3] * plan[4] > 1
    else:
        blocks, c_parts, r_parts, _, _ = _engine.weight_grad_plan(
            x.shape[0], x.shape[1], w_shape[0], w_shape[2:], go.shape[2:], x.itemsize, kw["groups"]
        )
        assert c_parts * r_parts > 1
    got = WEIGHT[nd](x, w_shape, go, **kw)
    want = weight_grad_by_taps(
        x, w_shape, go, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
    )
    np.testing.assert_allclose(got, want, **tol(dtype))


def test_weight_grad_picks_the_tile_where_a_row_fills_a_strip():
    """The tile for the training-sized layers of the breadth benchmark; BLAS for 1x1 kernels
    and for layers whose product rows are narrower than one strip of the tile."""
    uses = _engine.weight_grad_uses_tile
    # a strip of the tile: 48 float32 columns with AVX-512, 24 with AVX2
    strip = _tile.tile_columns(_tile.tile_shape(32), 4)
    # groups of 128 input channels or more: the tile with AVX-512, BLAS with AVX2
    wide = _tile.VECTOR_BYTES == 64
    assert uses(48, 80, (1, 3, 3), 1, 4)
    assert uses(16, 32, (3, 3, 3), 1, 4)
    assert uses(128, 128, (1, 1, 3), 1, 4) == wide  # a TCN layer
    assert uses(96, 96, (1, 1, 3), 1, 4)
    assert uses(256, 256, (1, 3, 3), 2, 4) == wide  # 128 channels per group
    assert uses(128, 64, (1, 3, 3), 2, 4)  # 64 per group
    assert uses(64, 64, (1, 3, 3), 4, 4)  # 16 channels per group, 3 wide
    assert not uses(256, 512, (1, 1, 1), 1, 4)  # 1x1
    assert uses(strip // 3, 32, (1, 3, 3), 1, 4)  # a row of 3 * C_in fills one strip ...
    assert not uses(strip // 3 - 1, 32, (1, 3, 3), 1, 4)  # ... or not
    assert not uses(3, 64, (1, 7, 7), 1, 4)  # the stem: 21 values per row
    assert uses(8, 16, (1, 3, 3), 1, 8)  # float64: strips of half as many
    # strided and wide: BLAS; strided and narrower: the tile
    assert not uses(256, 512, (1, 3, 3), 1, 4, (1, 2, 2))
    assert uses(128, 256, (1, 3, 3), 1, 4, (1, 2, 2)) == wide
    assert uses(64, 256, (1, 3, 3), 1, 4, (1, 2, 2))
    assert uses(256, 512, (1, 3, 3), 1, 4) == wide


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_tile_weight_grad_matches_blas_path_on_odd_layers(nd, monkeypatch):
    """The tiled gradient against the BLAS one (both float64) on layers with odd sizes, stride,
    dilation, padding, groups and a tail of output channels that is not a whole panel."""
    case = {
        1: (1, 3, 30, 13, 707, 4, 3, 5, 2, 1),
        2: (2, 2, 32, 26, (19, 23), (3, 4), (2, 1), (2, 1), (1, 2), 2),
        3: (3, 2, 24, 9, (5, 9, 11), (2, 3, 3), (1, 2, 1), (1, 1, 0), (2, 1, 1), 3),
    }[nd]
    x, go, w_shape, kw = _layer(*case, np.float64, seed=nd)
    use_path(monkeypatch, "blas")
    want = WEIGHT[nd](x, w_shape, go, **kw)
    use_path(monkeypatch, "tile")
    np.testing.assert_allclose(WEIGHT[nd](x, w_shape, go, **kw), want, rtol=1e-12, atol=1e-11)
    force_tile_cut(monkeypatch)
    np.testing.assert_allclose(WEIGHT[nd](x, w_shape, go, **kw), want, rtol=1e-12, atol=1e-11)


def test_reference_by_taps_matches_naive():
    x, go, w_shape, kw = _layer(
        2, 2, 4, 6, (6, 7), (2, 3), (2, 1), (1, 2), (2, 1), 2, np.float64, 3
    )
    np.testing.assert_allclose(
        weight_grad_by_taps(
            x, w_shape, go, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
        ),
        conv_weight_grad(x, w_shape, go, **kw),
        rtol=1e-12,
        atol=1e-12,
    )


def test_plan_depends_on_shapes_only(monkeypatch):
    import numba

    args = (8, 48, 80, (1, 3, 3), (1, 40, 40), 4, 1)
    plan = _engine.weight_grad_plan(*args)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 7)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "7")
    assert _engine.weight_grad_plan(*args) == plan
    blocks, c_parts, r_parts, rows, width = plan
    # every range has a block and every part a channel; the columns fit the block budget
    assert r_parts <= 8 * blocks and c_parts <= 48
    assert rows * width * 4 <= max(_engine.BLOCK_BYTES, rows * _engine.MIN_BLOCK * 4)
    # the tiled gradient: the ranges (and so the order of every sum) from the shapes only
    tile_args = (8, 48, 80, (1, 3, 3), (1, 1, 1), (1, 1, 1), (1, 40, 40), 4, 1)
    plans = [_engine.weight_grad_tile_plan(*tile_args, threads) for threads in (1, 2, 3, 7)]
    assert len({p[:4] for p in plans}) == 1 and plans[0][3] > 1


# --- conv3d ---------------------------------------------------------------------------------------

# batch, C_in, C_out, size, kernel, stride, padding, dilation, groups, padding_mode
CONV3D = [
    (2, 3, 4, (5, 6, 7), 3, 1, 1, 1, 1, "zeros"),
    (1, 4, 6, (6, 5, 8), (2, 3, 2), (2, 1, 3), (1, 0, 2), (1, 2, 1), 2, "zeros"),
    (3, 2, 2, (4, 7, 5), (3, 1, 2), 1, "same", (1, 1, 2), 1, "zeros"),
    (2, 6, 3, (5, 5, 6), (1, 3, 3), (1, 2, 2), (0, 2, 1), 1, 3, "reflect"),
    (1, 2, 4, (3, 4, 9), 2, (3, 1, 2), 1, 2, 1, "circular"),
]


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("forced", [False, True], ids=["default-cut", "forced-cut"])
@pytest.mark.parametrize("case", CONV3D, ids=[f"case{i}" for i in range(len(CONV3D))])
def test_conv3d_matches_naive(case, forced, dtype, monkeypatch):
    from naive import convnd

    batch, c_in, c_out, size, kernel, stride, padding, dilation, groups, mode = case
    rng = np.random.default_rng(c_in + c_out)
    t = lambda v: (v,) * 3 if isinstance(v, int) else v  # noqa: E731
    x = rng.standard_normal((batch, c_in) + size).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups) + t(kernel)).astype(dtype)
    b = rng.standard_normal(c_out).astype(dtype)
    if forced:
        # blocks of one row, sums in passes of 3 rows, output channels in parts
        force_small_cut(monkeypatch)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=mode)
    got = convlab.conv3d(x, w, b, **kw)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, convnd(x, w, b, **kw), **tolerances.tol(dtype))


# --- stride-1 transposed convolution (and so the input gradient) as a gathered convolution -------

# nd, batch, C_in, C_out / groups, size, kernel, padding, output_padding, dilation, groups
GATHER = [
    (1, 2, 8, 4, 13, 5, 2, 0, 1, 1),
    (1, 1, 16, 6, 9, 3, 1, 1, 2, 2),
    (2, 2, 8, 4, (6, 7), 3, 1, 0, 1, 1),
    (2, 3, 16, 3, (5, 8), (2, 3), (0, 2), (1, 0), (2, 1), 2),
    (3, 2, 8, 2, (3, 4, 5), 3, (1, 0, 2), 0, (1, 1, 1), 1),
    (3, 1, 16, 2, (4, 3, 5), (2, 2, 3), (1, 1, 0), (0, 1, 0), (1, 2, 1), 2),
]
TRANSPOSE = {1: convlab.conv_transpose1d, 2: convlab.conv_transpose2d, 3: convlab.conv_transpose3d}


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("case", GATHER, ids=[f"{c[0]}d-{i}" for i, c in enumerate(GATHER)])
def test_stride1_transpose_gathers_and_matches_naive(case, dtype, monkeypatch):
    from naive_transposed import conv_transpose_scatter

    nd, batch, c_in, m, size, kernel, padding, output_padding, dilation, groups = case
    rng = np.random.default_rng(c_in + m + nd)
    t = lambda v: (v,) * nd if isinstance(v, int) else v  # noqa: E731
    x = rng.standard_normal((batch, c_in) + t(size)).astype(dtype)
    w = rng.standard_normal((c_in, m) + t(kernel)).astype(dtype)
    b = rng.standard_normal(m * groups).astype(dtype)
    calls = []
    # the gather form: in 3-D the engine's own, in 1-D and 2-D conv2d's algorithms
    module, name = (_engine, "conv_transpose_gather") if nd == 3 else (transposed, "_gather2d")
    original = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a: calls.append(1) or original(*a))
    kw = dict(padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)
    got = TRANSPOSE[nd](x, w, b, **kw)
    assert calls == [1] and got.dtype == dtype
    want = conv_transpose_scatter(x, w, b, **kw)
    np.testing.assert_allclose(got, want, **tolerances.tol(dtype))
    # the same numbers as the scattering kernel, to rounding
    np.testing.assert_allclose(
        got, TRANSPOSE[nd](x, w, b, **kw, algorithm="direct"), **tolerances.tol(dtype)
    )


def test_gather_only_for_stride_1_and_small_padding():
    assert _engine.gather_applies((1, 1), (1, 2), (1, 1), (3, 5))
    assert not _engine.gather_applies((2, 1), (1, 1), (1, 1), (3, 3))
    assert not _engine.gather_applies((1, 1), (3, 1), (1, 1), (3, 3))  # crops more than d(k-1)


# --- weight gradients with one input channel per group (depthwise) ------------------------------

# nd, batch, C_in, C_out, size, kernel, stride, padding, dilation
DEPTHWISE = [
    (1, 2, 5, 5, 37, 3, 1, 1, 1),
    (1, 1, 4, 4, 40, 4, 3, 2, 2),
    (1, 3, 3, 6, 20, 3, 1, 0, 3),  # a channel multiplier of 2
    (2, 2, 6, 6, (11, 9), 3, 1, 1, 1),
    (2, 3, 5, 5, (13, 10), (3, 2), (2, 3), (2, 0), (1, 2)),
    (2, 1, 7, 7, (30, 31), (4, 3), 1, 2, (2, 3)),
    (2, 5, 3, 3, (8, 8), 3, 1, 1, 1),  # small maps: several images per stack
    (2, 2, 3, 9, (14, 15), 7, 2, 3, 1),  # 49 taps (six passes of tap_dots), stride 2: pairs
    (2, 2, 4, 4, (9, 9), 1, 2, 0, 1),  # a 1x1 kernel at stride 2: one phase of four
    (2, 2, 4, 4, (9, 9), 3, 3, 4, 1),  # padding beyond the kernel
    (2, 1, 2, 2, (6, 7), 3, 1, 0, 1),  # no padding
    (3, 2, 4, 4, (5, 6, 7), (3, 2, 3), (1, 2, 1), 1, (2, 1, 1)),
    (3, 3, 2, 4, (4, 5, 6), 3, 1, 1, 1),  # 27 taps in 3-D, a multiplier of 2
]

# few input channels per group (nd, groups, C_in, C_out, size, kernel, stride, padding, dilation)
FEW_CHANNELS = [
    (2, 1, 3, 8, (13, 12), 3, 1, 1, 1),  # a stem's three channels
    (2, 2, 8, 6, (9, 10), 3, 2, 1, 1),  # two groups of four, stride 2
    (2, 3, 12, 12, (11, 9), (3, 2), 1, (1, 0), (2, 1)),  # groups of 4, dilated
    (3, 2, 8, 4, (5, 6, 4), (1, 3, 3), 1, (0, 1, 1), 1),  # 3-D, 8 channels per group
    (1, 1, 3, 5, 30, 3, 2, 1, 2),  # 1-D
    (2, 1, 3, 7, (19, 18), 7, 2, 3, 1),  # a 7x7 stem: 49 taps, odd output channels (pairs + 1)
]


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("stacks", ["default", "one-image", "two-images"])
@pytest.mark.parametrize("case", DEPTHWISE, ids=[f"{c[0]}d-{i}" for i, c in enumerate(DEPTHWISE)])
def test_depthwise_weight_grad_matches_naive(case, stacks, dtype, monkeypatch):
    """The depthwise weight gradient (every layer with one input channel per group takes it)
    against the naive one, with the default stacks of images, one image at a time, and two (a
    short last stack when the batch is odd)."""
    nd, batch, c_in, c_out, size, kernel, stride, padding, dilation = case
    x, go, w_shape, kw = _layer(
        nd, batch, c_in, c_out, size, kernel, stride, padding, dilation, c_in, dtype, seed=c_out
    )
    t = lambda v: (1,) * (3 - nd) + tuple(v)  # noqa: E731
    p = (0,) * (3 - nd) + tuple(kw["padding"])
    if stacks != "default":
        _engine.dots_plan.cache_clear()
        vol = math.prod(
            _engine.dots_plan(
                batch, t(w_shape[2:]), t(kw["stride"]), t(kw["dilation"]), p, t(go.shape[2:]), 8
            )[0][:3]
        )
        images = 1 if stacks == "one-image" else 2
        monkeypatch.setattr(_engine, "DOTS_STACK_BYTES", images * vol * x.itemsize)
        monkeypatch.setattr(_engine, "dots_plan", _engine.dots_plan.__wrapped__)
    plan, offs, _ = _engine.dots_plan(
        batch, t(w_shape[2:]), t(kw["stride"]), t(kw["dilation"]), p, t(go.shape[2:]), x.itemsize
    )
    assert _engine.weight_grad_uses_dots(c_in, c_out, c_in, math.prod(w_shape[2:]))
    assert len(offs) == math.prod(w_shape[2:])
    if stacks == "one-image":
        assert plan[6] == 1
    got = WEIGHT[nd](x, w_shape, go, **kw)
    assert got.dtype == dtype and got.shape == w_shape
    np.testing.assert_allclose(got, conv_weight_grad(x, w_shape, go, **kw), **tol(dtype))


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "case", FEW_CHANNELS, ids=[f"{c[0]}d-{i}" for i, c in enumerate(FEW_CHANNELS)]
)
def test_few_channel_weight_grad_by_dots_matches_naive(case, dtype):
    """Several input channels per group also take the dot products: each channel's phases in the
    thread's buffer, the group's output channels against each two at a time (tap_dots2), an odd
    last one alone."""
    nd, groups, c_in, c_out, size, kernel, stride, padding, dilation = case
    x, go, w_shape, kw = _layer(
        nd, 2, c_in, c_out, size, kernel, stride, padding, dilation, groups, dtype, seed=c_in
    )
    assert _engine.weight_grad_uses_dots(c_in, c_out, groups, math.prod(w_shape[2:]))
    got = WEIGHT[nd](x, w_shape, go, **kw)
    np.testing.assert_allclose(got, conv_weight_grad(x, w_shape, go, **kw), **tol(dtype))


def test_dots_weight_grad_rule():
    """Up to DOTS_MAX_CHANNELS input channels per group take the dot products (depthwise layers
    with or without a channel multiplier, stems, narrow groups), whatever the kernel but 1x1
    over several channels; a single input channel with several filters (a plain convolution)
    does not."""
    uses = _engine.weight_grad_uses_dots
    assert uses(144, 144, 144, 9) and uses(32, 64, 32, 25) and uses(1, 1, 1, 9)
    assert uses(3, 64, 1, 49) and uses(128, 128, 16, 9) and uses(64, 64, 32, 9)
    assert uses(_engine.DOTS_MAX_CHANNELS, 32, 1, 9)
    assert not uses(_engine.DOTS_MAX_CHANNELS + 1, 32, 1, 9)  # wide enough for the tile
    assert not uses(1, 16, 1, 9)  # one input channel, 16 filters: the columns are faster
    assert not uses(8, 32, 1, 1) and uses(64, 64, 64, 1)  # 1x1: BLAS, unless depthwise


def test_depthwise_weight_grad_picked_and_matches_blas_path(monkeypatch):
    """A MobileNet-sized layer takes the depthwise path by default, and agrees with the BLAS
    path on it."""
    x, go, w_shape, kw = _layer(2, 2, 128, 128, 20, 3, 2, 1, 1, 128, np.float64, seed=9)
    calls = []
    real = _engine._dots
    monkeypatch.setattr(_engine, "_dots", lambda *a: calls.append(1) or real(*a))
    got = WEIGHT[2](x, w_shape, go, **kw)
    assert calls
    monkeypatch.setattr(_engine, "weight_grad_uses_dots", lambda *a: False)
    np.testing.assert_allclose(got, WEIGHT[2](x, w_shape, go, **kw), rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_depthwise_weight_grad_nonfinite_input_matches_naive(value):
    """An inf in the input's last column: the dot products would also meet it through the zero
    columns of the gradient's buffer (0 * inf = NaN in a tap whose sum never reads it), so the
    gradient falls back to the columns; the pattern of infs and NaNs is the naive one's."""
    x, go, w_shape, kw = _layer(2, 2, 4, 4, (6, 7), 3, 1, 1, 1, 4, np.float64, seed=5)
    x[1, 2, 3, 6] = value
    got = WEIGHT[2](x, w_shape, go, **kw)
    want = conv_weight_grad(x, w_shape, go, **kw)
    for pattern in (np.isnan, np.isinf):
        np.testing.assert_array_equal(pattern(got), pattern(want))
    finite = np.isfinite(want)
    assert finite.any() and not finite.all()
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-11)
    # the dot products alone would have put a NaN where the sum is finite
    x5, go5 = x.reshape(2, 4, 1, 6, 7), go.reshape(go.shape[:2] + (1,) + go.shape[2:])
    gw = np.empty((4, 9))
    _engine._dots(x5, go5, gw, (1, 3, 3), (1, 1, 1), (1, 1, 1), (0, 1, 1), 4, 1)
    if value == np.inf:
        assert np.isnan(gw).sum() > np.isnan(want).sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_tile_weight_grad_takes_several_small_planes_per_block(dtype, monkeypatch):
    """On small maps a block of the tiled gradient holds several whole planes (images, output
    depths), so that each product still sums over many positions; against the BLAS path, in 2-D
    and 3-D."""
    for case in (
        (2, 5, 16, 24, (5, 6), 3, 1, 1, 1, 1),
        (3, 2, 16, 12, (3, 4, 5), 3, 1, 1, 1, 1),
    ):
        x, go, w_shape, kw = _layer(*case, dtype, seed=7)
        assert tile_plan(x, w_shape, go, kw, 1)[8] > 1
        use_path(monkeypatch, "blas")
        want = WEIGHT[case[0]](x, w_shape, go, **kw)
        use_path(monkeypatch, "tile")
        np.testing.assert_allclose(WEIGHT[case[0]](x, w_shape, go, **kw), want, **tol(dtype))


@pytest.mark.kernels
@pytest.mark.parametrize("strips", [0.5, 1, 1.25])
def test_tile_weight_grad_dilated_width_by_phases_or_runs_per_tap(strips, monkeypatch):
    """A dilated width: the buffer's columns in phases (half a strip or a strip and a quarter
    of channels, whose runs per tap would leave a strip part empty) or in order with one run
    per tap (whole strips). A strip of float64 columns is 24 with AVX-512, 12 with AVX2."""
    c_in = int(strips * _tile.tile_columns(_tile.tile_shape(32), 8))
    assert _engine.tile_column_phases(c_in, 32, 3, 8) == (1 if strips == 1 else 3)
    assert _engine.tile_column_phases(c_in, 32, 1, 8) == 1
    x, go, w_shape, kw = _layer(
        2, 2, c_in, 32, (9, 23), (2, 3), (1, 2), (1, 3), (1, 3), 1, np.float64, seed=c_in
    )
    use_path(monkeypatch, "tile")
    want = weight_grad_by_taps(
        x, w_shape, go, kw["stride"], kw["padding"], kw["dilation"], kw["groups"]
    )
    np.testing.assert_allclose(WEIGHT[2](x, w_shape, go, **kw), want, rtol=1e-12, atol=1e-11)
    force_tile_cut(monkeypatch)
    np.testing.assert_allclose(WEIGHT[2](x, w_shape, go, **kw), want, rtol=1e-12, atol=1e-11)

"""convlab's register-tiled product (:mod:`convlab._tile`) against NumPy's matmul.

Every tile shape, float32 and float64, sizes around the tiles' edges (fewer columns than one
strip, a partial last strip, a partial last panel), passes over the sum of several lengths, rows
of B anywhere (a shuffled table of offsets, overlapping rows), storing and adding; and the bounds
it checks before any tile runs.
"""

import numpy as np
import pytest

from convlab import _tile

SIZES = [
    (1, 1, 1),
    (5, 7, 3),
    (12, 32, 10),
    (13, 33, 17),
    (4, 64, 36),
    (16, 95, 144),
    (25, 130, 300),
    (7, 49, 0),
]


def _case(rng, dtype, m, n, k, groups, shape):
    a = rng.standard_normal((groups * m, k)).astype(dtype)
    # B's rows: a shuffled table of offsets into a longer array, two of them overlapping
    ld = n + 3
    b = rng.standard_normal(ld * (k + 2) + 5).astype(dtype)
    boff = (rng.permutation(k + 1)[:k] * ld).astype(np.int64)
    if k >= 2:
        boff[1] = boff[0] + 1
    ap = _tile.pack_panels(a, groups, shape)
    return a, b, boff, ap


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", range(len(_tile.TILES)))
def test_tile_matmul_matches_numpy(dtype, shape):
    rng = np.random.default_rng(shape)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    mr = _tile.panel_rows(shape)
    for m, n, k in SIZES:
        groups = 2
        a, b, boff, ap = _case(rng, dtype, m, n, k, groups, shape)
        panels = ap.shape[1]
        rows_b = np.stack([b[5 + o : 5 + o + n] for o in boff]) if k else np.zeros((0, n))
        for kc in (1, 3, max(1, k)):
            for accumulate in (0, 1):
                ldc = n + 2
                c = rng.standard_normal((groups * m, ldc)).astype(dtype)
                before = c.copy()
                for g in range(groups):
                    _tile.tile_matmul(
                        shape,
                        m,
                        n,
                        k,
                        kc,
                        ap.reshape(-1),
                        g * panels * k * mr,
                        k * mr,
                        b,
                        5,
                        boff,
                        c.reshape(-1),
                        g * m * ldc,
                        ldc,
                        accumulate,
                    )
                want = a.astype(np.float64) @ rows_b.astype(np.float64)
                if accumulate:
                    want += before[:, :n]
                scale = 1 + np.abs(a).sum(1, keepdims=True) * np.abs(b).max()
                assert np.all(np.abs(c[:, :n] - want) <= tol * scale), (m, n, k, kc, accumulate)
                # nothing outside the product's columns is written
                np.testing.assert_array_equal(c[:, n:], before[:, n:])


def _panels_by_numpy(a, groups, mr):
    """The layout of pack_panels written with NumPy: each group's rows padded with zero rows to
    whole panels of mr, each panel transposed to (k, mr)."""
    rows, k = a.shape
    m = rows // groups
    panels = -(-m // mr)
    padded = np.zeros((groups, panels * mr, k), a.dtype)
    padded[:, :m] = a.reshape(groups, m, k)
    return padded.reshape(groups, panels, mr, k).transpose(0, 1, 3, 2)


def test_pack_range_matches_pack_panels():
    rng = np.random.default_rng(1)
    for shape in range(len(_tile.TILES)):
        mr = _tile.panel_rows(shape)
        a = rng.standard_normal((3 * 13, 11)).astype(np.float32)
        want = _panels_by_numpy(a, 3, mr).reshape(-1)
        np.testing.assert_array_equal(_tile.pack_panels(a, 3, shape).reshape(-1), want)
        got = np.full(want.size, np.nan, np.float32)
        panels = 3 * -(-13 // mr)
        _tile.pack_range(a, 3, mr, got, 0, panels // 2)
        _tile.pack_range(a, 3, mr, got, panels // 2, panels)
        np.testing.assert_array_equal(got, want)


def test_tile_shape_wastes_least():
    smallest = min(range(len(_tile.TILES)), key=_tile.panel_rows)
    assert _tile.tile_shape(_tile.panel_rows(smallest)) == smallest
    assert _tile.tile_shape(48) == 0  # whole panels of the largest tile
    for m in range(1, 80):
        mr = _tile.panel_rows(_tile.tile_shape(m))
        assert -(-m // mr) * mr < m + max(_tile.TILES_ROWS)


def _call(
    shape=0,
    m=12,
    n=40,
    k=8,
    kc=8,
    a_size=None,
    b_size=None,
    c_size=None,
    boff=None,
    b_off=0,
    c_off=0,
    ldc=40,
):
    mr = _tile.panel_rows(shape)
    ap = np.zeros(a_size if a_size is not None else k * mr * -(-m // mr), np.float32)
    b = np.zeros(b_size if b_size is not None else k * n, np.float32)
    c = np.zeros(c_size if c_size is not None else m * ldc, np.float32)
    if boff is None:
        boff = np.arange(k, dtype=np.int64) * n
    _tile.tile_matmul(shape, m, n, k, kc, ap, 0, k * mr, b, b_off, boff, c, c_off, ldc, 0)


def test_tile_matmul_checks_bounds():
    _call()  # in bounds
    with pytest.raises(IndexError, match="operand"):
        _call(a_size=10)
    with pytest.raises(IndexError, match="operand"):
        _call(b_size=8 * 40 - 1)
    with pytest.raises(IndexError, match="operand"):
        _call(boff=np.array([0, 40, 80, -1, 160, 200, 240, 280], np.int64))
    with pytest.raises(IndexError, match="operand"):
        _call(b_off=1)
    with pytest.raises(IndexError, match="output"):
        _call(c_size=12 * 40 - 1)
    with pytest.raises(IndexError, match="output"):
        _call(ldc=39)
    with pytest.raises(IndexError, match="operand"):
        _call(boff=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="kc"):
        _call(kc=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_tap_dots_matches_numpy(dtype):
    """tap_dots: for 1 to TAP_DOTS_MAX taps, ``n`` vectors (0, 1, several), offsets anywhere
    (repeated, decreasing), start indices in all three arrays, adding to what ``out`` holds."""
    rng = np.random.default_rng(4)
    lanes = _tile.vector_lanes(np.dtype(dtype).itemsize)
    assert lanes * np.dtype(dtype).itemsize == _tile.VECTOR_BYTES
    for nt in range(1, _tile.TAP_DOTS_MAX + 1):
        for n in (0, 1, 7):
            g = rng.standard_normal(n * lanes + 9).astype(dtype)
            x = rng.standard_normal(n * lanes + 80).astype(dtype)
            offs = np.concatenate([[5], rng.integers(0, 60, nt + 2)]).astype(np.int64)
            offs[2] = offs[1]  # two taps reading the same window
            out = rng.standard_normal(nt + 4).astype(dtype)
            want = out.astype(np.float64)
            for t in range(nt):
                start = 3 + offs[1 + t]
                want[2 + t] += g[4 : 4 + n * lanes] @ x[start : start + n * lanes].astype(
                    np.float64
                )
            _tile.tap_dots(n, g, 4, x, 3, offs, 1, out, 2, nt)
            rtol = 1e-5 if dtype == np.float32 else 1e-13
            np.testing.assert_allclose(out, want, rtol=rtol, atol=rtol * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_tap_dots2_gives_the_bits_of_tap_dots(dtype):
    """tap_dots2 sums two gradient vectors against the same windows: each result is the same
    bits as tap_dots on that vector alone, for 1 to TAP_DOTS2_MAX taps."""
    rng = np.random.default_rng(5)
    lanes = _tile.vector_lanes(np.dtype(dtype).itemsize)
    n = 6
    g = rng.standard_normal(2 * n * lanes + 20).astype(dtype)
    x = rng.standard_normal(n * lanes + 60).astype(dtype)
    gs = n * lanes + 7  # the second vector's start, past the first
    for nt in range(1, _tile.TAP_DOTS2_MAX + 1):
        offs = rng.integers(0, 50, nt).astype(np.int64)
        pair = np.zeros(2 * nt + 3, dtype)
        _tile.tap_dots2(n, g, 2, gs, x, 1, offs, 0, pair, 0, nt + 3, nt)
        for r in range(2):
            one = np.zeros(nt, dtype)
            _tile.tap_dots(n, g, 2 + r * gs, x, 1, offs, 0, one, 0, nt)
            np.testing.assert_array_equal(pair[r * (nt + 3) : r * (nt + 3) + nt], one)
            want = [g[2 + r * gs :][: n * lanes] @ x[1 + o :][: n * lanes] for o in offs]
            np.testing.assert_allclose(one, want, rtol=1e-5 if dtype == np.float32 else 1e-12)

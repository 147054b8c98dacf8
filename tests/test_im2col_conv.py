"""conv2d(..., algorithm="im2col") against the naive loop, cut every way its kernel cuts the work.

The im2col kernel (:func:`convlab._kernels._im2col_gemm`) reads the *unpadded* input and writes
zeros for every tap that falls in the padding, splits each row segment of a column into a zero
head, a copied middle and a zero tail, and multiplies each block of positions with BLAS straight
into the output. These tests check it against ``tests/naive.py``'s ``convnd`` (float64, plain
loops over a padded copy) for padding 0-4 (also more after than before: "same" with even kernels),
padding wider than the kernel's reach (outputs that see only zeros), strides and dilations 1-3,
groups, batches, odd sizes, images smaller than a block, blocks of a few positions that start and
end mid-row, both dtypes, and one and two Numba threads.

Tolerances: ``tests/tolerances.py`` (float64 1e-12, float32 2e-5, data of unit scale).
"""

import itertools

import numba
import numpy as np
import pytest
from naive import convnd
from tolerances import tol
from traced import traced_peak

import convlab
from convlab import _kernels, algorithms
from convlab._blas import blas_gemm, one_blas_thread
from convlab._winograd import workspace

pytestmark = pytest.mark.kernels

THREADS = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})


def _random_case(rng):
    """(x shape, w shape, conv2d keyword arguments) of a small random layer."""
    groups = int(rng.choice([1, 1, 2, 3]))
    c_in = groups * int(rng.integers(1, 4))
    c_out = groups * int(rng.integers(1, 4))
    kh, kw = (int(k) for k in rng.integers(1, 5, size=2))
    sh, sw = (int(s) for s in rng.integers(1, 4, size=2))
    dh, dw = (int(d) for d in rng.integers(1, 4, size=2))
    ph, pw = (int(p) for p in rng.integers(0, 5, size=2))
    # at least one output in each direction
    h = max(int(rng.integers(1, 12)), dh * (kh - 1) + 1 - 2 * ph, 1)
    w = max(int(rng.integers(1, 12)), dw * (kw - 1) + 1 - 2 * pw, 1)
    batch = int(rng.integers(1, 4))
    return (
        (batch, c_in, h, w),
        (c_out, c_in // groups, kh, kw),
        dict(stride=(sh, sw), dilation=(dh, dw), padding=(ph, pw), groups=groups),
    )


RANDOM_CASES = [_random_case(np.random.default_rng(1000 + i)) for i in range(40)]

FIXED_CASES = [
    # padding wider than the kernel's reach: the border outputs see only zeros (= the bias)
    ((1, 2, 3, 3), (3, 2, 2, 2), dict(padding=4)),
    ((2, 3, 2, 5), (2, 3, 3, 1), dict(padding=(4, 3), stride=(3, 2))),
    # "same" with even kernels and dilation: one more zero after than before
    ((2, 3, 8, 7), (4, 3, 4, 2), dict(padding="same")),
    ((1, 4, 9, 6), (2, 4, 2, 4), dict(padding="same", dilation=(3, 1))),
    ((1, 4, 6, 9), (4, 2, 2, 2), dict(padding="same", dilation=2, groups=2)),
    # 1x1: stride 1 without padding reads the input in place; with stride or padding it copies
    ((3, 8, 7, 5), (4, 8, 1, 1), {}),
    ((2, 6, 5, 9), (6, 2, 1, 1), dict(groups=3)),
    ((2, 6, 9, 7), (4, 6, 1, 1), dict(stride=2)),
    ((1, 4, 5, 5), (3, 4, 1, 1), dict(padding=2)),
    ((2, 4, 1, 1), (5, 4, 1, 1), {}),
    # a whole image narrower than the kernel's reach without padding would be invalid; with it,
    # every column of every output comes from a zero head, a middle and a zero tail
    ((1, 3, 1, 2), (2, 3, 3, 3), dict(padding=1)),
    ((2, 2, 13, 17), (3, 2, 7, 7), dict(padding=3, stride=2)),
    ((1, 3, 16, 15), (4, 3, 3, 3), dict(padding=1)),
]

CASES = FIXED_CASES + RANDOM_CASES

_EXPECTED = {}


def _data(case, dtype):
    xs, ws, kwargs = CASES[case]
    rng = np.random.default_rng(50 + case)
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws)
    b = rng.standard_normal(ws[0])
    if case not in _EXPECTED:
        _EXPECTED[case] = convnd(x, w, b, **kwargs)
    return x.astype(dtype), w.astype(dtype), b.astype(dtype), kwargs, _EXPECTED[case]


def _poison_columns(dtype):
    """Fill the reused column buffer with NaN, so that a column the kernel forgets to write (a
    zero of the padding, say) shows up in the result instead of reading an earlier call's value."""
    workspace("im2col", (2**18,), np.dtype(dtype))[:] = np.nan


def _conv_threads(threads, *args, **kwargs):
    _poison_columns(args[0].dtype)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        return convlab.conv2d(*args, algorithm="im2col", **kwargs)
    finally:
        numba.set_num_threads(previous)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_im2col_matches_naive(case, dtype):
    """Default blocks (bigger than these images: one block per thread), one and two threads."""
    x, w, b, kwargs, expected = _data(case, dtype)
    for threads in THREADS:
        out = _conv_threads(threads, x, w, b, **kwargs)
        assert out.dtype == dtype and out.shape == expected.shape
        np.testing.assert_allclose(out, expected, **tol(dtype), err_msg=f"{threads} threads")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("block", [1, 3, 7])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_im2col_blocks_that_start_and_end_mid_row(monkeypatch, case, block, dtype):
    """Blocks of 1, 3 and 7 positions cut rows (widths 1-17) and images anywhere."""
    monkeypatch.setattr(algorithms, "IM2COL_MIN_BLOCK", block)
    monkeypatch.setattr(algorithms, "IM2COL_BLOCK_BYTES", 1)
    x, w, b, kwargs, expected = _data(case, dtype)
    for threads in THREADS:
        out = _conv_threads(threads, x, w, b, **kwargs)
        np.testing.assert_allclose(out, expected, **tol(dtype), err_msg=f"{threads} threads")


def test_outputs_that_see_only_padding_are_the_bias():
    x = np.random.default_rng(3).standard_normal((1, 2, 3, 3))
    w = np.random.default_rng(4).standard_normal((3, 2, 2, 2))
    b = np.array([1.5, -2.0, 0.25])
    out = convlab.conv2d(x, w, b, padding=4, algorithm="im2col")
    assert out.shape == (1, 3, 10, 10)
    # output i reads padded rows i, i + 1, and the image is padded rows 4-6: rows (and columns)
    # 0-2 and 7-9 of the output hold windows entirely in the padding
    for o in range(3):
        assert np.all(out[0, o, :3] == b[o]) and np.all(out[0, o, 7:] == b[o])
        assert np.all(out[0, o, :, :3] == b[o]) and np.all(out[0, o, :, 7:] == b[o])
        assert np.all(out[0, o, 3:7, 3:7] != b[o])


def test_input_weight_and_bias_are_not_modified():
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 4, 6, 7)), rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6)
    copies = x.copy(), w.copy(), b.copy()
    convlab.conv2d(x, w, b, padding=(2, 1), groups=2, algorithm="im2col")
    for original, copy in zip((x, w, b), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_non_contiguous_input_and_several_blocks_per_thread(monkeypatch, dtype):
    """A strided view as input, walked in blocks of 64 positions (5-11 blocks per thread)."""
    monkeypatch.setattr(algorithms, "IM2COL_MIN_BLOCK", 64)
    monkeypatch.setattr(algorithms, "IM2COL_BLOCK_BYTES", 1)
    rng = np.random.default_rng(6)
    base = rng.standard_normal((2, 6, 30, 44))
    x = base[:, ::2, :, ::2]  # (2, 3, 30, 22), not contiguous
    w = rng.standard_normal((5, 3, 3, 3))
    expected = convnd(x, w, padding=(1, 2), stride=(1, 2))
    for threads in THREADS:
        out = _conv_threads(
            threads, x.astype(dtype), w.astype(dtype), padding=(1, 2), stride=(1, 2)
        )
        np.testing.assert_allclose(out, expected, **tol(dtype))


@numba.njit
def _block(x, n, c0, c1, cols, ld, kh, kw, sh, sw, dh, dw, ph, pw, ow_n, p0, p1):
    _kernels._im2col_block(x, n, c0, c1, cols, ld, kh, kw, sh, sw, dh, dw, ph, pw, ow_n, p0, p1)


def test_im2col_block_writes_its_columns_and_nothing_else():
    """The kernel's im2col step alone, for 3000 random geometries, blocks and channel ranges:
    equal to columns cut from a padded copy (np.pad and slicing), and every element outside the
    block's columns (the row padding up to ``ld``, the rows past the last) still holds the NaN it
    was filled with."""
    rng = np.random.default_rng(7)
    checked = 0
    while checked < 3000:
        c, h, w = (int(v) for v in rng.integers(1, 9, size=3))
        c = min(c, 3)
        c0 = int(rng.integers(0, c))
        c1 = int(rng.integers(c0 + 1, c + 1))
        kh, kw, sh, sw = (int(v) for v in rng.integers(1, 4, size=4))
        dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
        ph, pw, pha, pwa = (int(v) for v in rng.integers(0, 4, size=4))  # before and after
        oh = (h + ph + pha - dh * (kh - 1) - 1) // sh + 1
        ow = (w + pw + pwa - dw * (kw - 1) - 1) // sw + 1
        if oh < 1 or ow < 1:
            continue
        x = rng.standard_normal((2, c, h, w))
        xp = np.pad(x[1], ((0, 0), (ph, pha), (pw, pwa)))
        expected = np.empty(((c1 - c0) * kh * kw, oh * ow))
        for ci, i, j in itertools.product(range(c0, c1), range(kh), range(kw)):
            rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
            window = xp[ci, rows, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
            expected[((ci - c0) * kh + i) * kw + j] = window.reshape(-1)
        p0 = int(rng.integers(0, oh * ow))
        p1 = int(rng.integers(p0 + 1, oh * ow + 1))
        ld = p1 - p0 + int(rng.integers(0, 3))
        cols = np.full(((c1 - c0) * kh * kw + 1) * ld, np.nan)
        _block(x, 1, c0, c1, cols, ld, kh, kw, sh, sw, dh, dw, ph, pw, ow, p0, p1)
        rows = cols.reshape(-1, ld)
        np.testing.assert_array_equal(rows[:-1, : p1 - p0], expected[:, p0:p1])
        assert np.isnan(rows[:-1, p1 - p0 :]).all() and np.isnan(rows[-1]).all()
        checked += 1


# --- the kernel's ways of cutting the work, called directly -------------------------------------
# conv2d picks one plan per layer and thread count (algorithms._im2col_plan); calling the kernel
# with other plans checks every cut on any machine: threads (the first axis of the column buffer,
# which may exceed Numba's thread count: prange then runs several on one thread), parts of the
# input channels (split-K), blocks of positions, the 1x1 kernel read in place.

KERNEL_CASES = [
    ((2, 4, 7, 9), (6, 4, 3, 3), dict(stride=(1, 1), padding=(1, 1), groups=1)),
    ((3, 6, 8, 5), (4, 3, 2, 3), dict(stride=(2, 1), padding=(2, 0), groups=2)),
    ((2, 8, 5, 6), (6, 8, 1, 1), dict(stride=(1, 1), padding=(0, 0), groups=1)),  # in place
    ((2, 8, 5, 6), (4, 4, 1, 1), dict(stride=(1, 1), padding=(0, 0), groups=2)),  # in place
    ((1, 4, 9, 9), (5, 4, 1, 1), dict(stride=(2, 2), padding=(0, 0), groups=1)),
    # stride 2 across: the rows are split into even and odd columns (odd and even widths)
    ((2, 3, 11, 13), (4, 3, 7, 7), dict(stride=(2, 2), padding=(3, 3), groups=1)),
    ((1, 4, 6, 10), (6, 2, 3, 2), dict(stride=(1, 2), padding=(2, 1), groups=2)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(len(KERNEL_CASES)))
def test_every_split_of_the_work(case, dtype):
    xs, ws, kw = KERNEL_CASES[case]
    rng = np.random.default_rng(60 + case)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    expected = convnd(x, w, b, **kw)
    x, w, b = x.astype(dtype), w.astype(dtype), b.astype(dtype)
    c_out, c_per_group, kh, kwid = w.shape
    groups = kw["groups"]
    in_place = (kh, kwid) == (1, 1) and kw["stride"] == (1, 1) and kw["padding"] == (0, 0)
    w2 = w.reshape(c_out, -1)
    gemm = blas_gemm(dtype)
    checked = 0
    positions = expected.shape[2] * expected.shape[3]
    for threads, k_parts, pieces in [(1, 1, 1), (2, 1, 2), (3, 1, 3), (2, 2, 1), (4, 2, 2)]:
        if c_per_group < k_parts:
            continue
        per_part = -(-c_per_group // k_parts)
        # chunks of the part's input channels, one GEMM each: all in one, one by one, uneven
        for segments, chunk in [(1, per_part), (2, 1), (3, max(1, per_part - 1))]:
            k_rows = 0 if in_place else chunk * kh * kwid
            # blocks start at multiples of 16 positions: the longest is this long
            units = -(-positions // 16)
            block = min(positions, 16 * -(-units // (pieces * segments)))
            out = np.full(expected.shape, np.nan, dtype=dtype)
            cols = np.full((threads, k_rows * block + 1), np.nan, dtype=dtype)
            partial = np.full((k_parts - 1, out.size), np.nan, dtype=dtype)
            split = algorithms._split_size(
                xs[2:], expected.shape[2:], (kh, kwid), kw["stride"], (1, 1), block, chunk
            )
            assert split > 0 or kw["stride"][1] != 2 or kwid == 1
            split_buf = np.full((threads, split), np.nan, dtype=dtype)
            with one_blas_thread():
                _kernels._im2col_gemm(
                    gemm,
                    x,
                    w2,
                    b,
                    out,
                    kh,
                    kwid,
                    *kw["stride"],
                    1,
                    1,
                    *kw["padding"],
                    groups,
                    block,
                    k_parts,
                    pieces,
                    segments,
                    chunk,
                    cols,
                    partial,
                    split_buf,
                )
            np.testing.assert_allclose(
                out,
                expected,
                **tol(dtype),
                err_msg=f"threads={threads} k_parts={k_parts} pieces={pieces} segments={segments} "
                f"chunk={chunk}",
            )
            checked += 1
    assert checked >= 9


def test_plan_splits_positions_or_channels():
    plan = algorithms._im2col_plan
    # (threads, block, k_parts, k_rows, pieces, segments); 56x56 = 3136 positions: 12 pieces of
    # at least IM2COL_MIN_BLOCK positions, cut at multiples of 16 (256 or 272 positions)
    # k_rows: at most 26 channels' columns fit IM2COL_CHUNK_BYTES = 256 KiB, so the 64 channels
    # go in 3 chunks of at most 22
    assert plan(1, 64, 64, (3, 3), (56, 56), 4, threads=2) == (2, 272, 1, 22 * 9, 12, 1)
    assert 26 * 9 * 272 * 4 <= 2**18 < 27 * 9 * 272 * 4
    # 28x28 = 784: 2 pieces (4 would leave 196 each), each one block of 400 or 384, not 256 + 136;
    # at most 18 channels' columns fit 256 KiB: 4 equal chunks of 16
    assert plan(1, 64, 64, (3, 3), (28, 28), 4, threads=2) == (2, 400, 1, 16 * 9, 2, 1)
    # 14x14 = 196 positions, fewer than 2 * 256: the 256 channels in two halves, each in four
    # chunks of 32 ...
    assert plan(1, 256, 256, (3, 3), (14, 14), 4, threads=2) == (2, 196, 2, 32 * 9, 1, 1)
    # ... never thinner than IM2COL_CHUNK_ROWS rows (a 7x7 kernel: 3 channels, 147 rows)
    assert plan(1, 64, 64, (7, 7), (28, 28), 4, threads=2)[3] == 3 * 49
    assert plan(1, 256, 128, (1, 1), (14, 14), 4, threads=2) == (2, 196, 2, 128, 1, 1)
    # ... unless there are two images, or a group has only one channel
    assert plan(2, 256, 256, (3, 3), (14, 14), 4, threads=2)[2] == 1
    assert plan(1, 8, 8, (3, 3), (14, 14), 4, groups=8, threads=2)[2] == 1
    # a 1x1 kernel read in place has no column buffer
    assert plan(1, 64, 256, (1, 1), (56, 56), 4, threads=2, in_place=True)[3] == 0
    # few channels, large image: several blocks of about IM2COL_BLOCK_BYTES per piece
    threads, block, k_parts, k_rows, pieces, segments = plan(1, 4, 4, (3, 3), (448, 448), 4)
    assert (k_parts, k_rows, pieces) == (1, 36, 12) and segments > 1
    per_block = 2**19 // ((4 + 36) * 4)  # positions in IM2COL_BLOCK_BYTES of columns and output
    assert per_block <= block < 2 * per_block


@pytest.mark.parametrize(
    "shape",
    [(1, 64, 64, (3, 3), (56, 56)), (1, 256, 256, (3, 3), (14, 14)), (4, 32, 16, (5, 5), (9, 31))],
)
def test_plan_does_not_depend_on_the_thread_count(shape):
    """Only how many threads get work changes; the cut of the work (and the sums) does not."""
    plans = {t: algorithms._im2col_plan(*shape, 4, threads=t) for t in (1, 2, 3, 8)}
    assert len({p[1:] for p in plans.values()}) == 1
    items = shape[0] * plans[1][4] * plans[1][2]
    assert [p[0] for p in plans.values()] == [min(t, items) for t in plans]


@pytest.mark.parametrize("size", [56, 14])  # positions split, split-K
def test_pointwise_layer_allocates_only_what_workspace_nbytes_counts(size):
    """A 1x1 kernel with stride 1 reads the input in place: on 56x56 nothing but the output is
    allocated; on 14x14 (split-K) one output-sized buffer of partial sums, on any number of
    threads, which im2col_workspace_nbytes counts (the columns it also counts are not needed in place)."""
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    x = np.random.default_rng(8).standard_normal((1, 64, size, size)).astype(np.float32)
    w = np.random.default_rng(9).standard_normal((128, 64, 1, 1)).astype(np.float32)
    out_bytes = 128 * size * size * 4
    partial = out_bytes if size == 14 else 0  # the second half of the channels' sums
    # traced warm, in a fresh thread whose reused buffers start empty (tests/traced.py): the
    # first call in a process traced 18 KiB of one-time allocations on a fresh machine (issue 13)
    peak, out = traced_peak(
        lambda: convlab.conv2d(x, w, algorithm="im2col"),
        thread_warmup=lambda: convlab.conv2d(x[:, :, :4, :4], w, algorithm="im2col"),
        threads=threads,
    )
    # Slack 16 KiB: array headers, views and argument tuples of one call (a few KiB), far below
    # any buffer this test is about (out_bytes is 98 KiB at 14x14).
    assert out_bytes + partial <= peak <= out_bytes + partial + 2**14
    assert partial <= algorithms.im2col_workspace_nbytes(
        1, 64, 128, (1, 1), (size, size), 4, threads=threads
    )
    # a 1x1 convolution is a matrix product over the channels
    expected = np.einsum("oc,nchw->nohw", w[:, :, 0, 0].astype(np.float64), x.astype(np.float64))
    np.testing.assert_allclose(out, expected, **tol(np.float32))


# small maps with a batch: blocks of whole images per product (_im2col_gemm_images); x shape,
# w shape, keyword arguments
SMALL_MAP_CASES = [
    ((30, 4, 5, 7), (6, 2, 3, 3), dict(stride=2, padding=1, groups=2)),
    ((13, 3, 4, 4), (4, 3, 3, 3), dict(padding=1)),
    ((16, 2, 6, 5), (2, 2, 2, 2), dict(stride=2)),
    ((45, 6, 5, 5), (6, 2, 3, 3), dict(padding=2, dilation=2, groups=3)),
    ((17, 4, 3, 9), (8, 2, 3, 3), dict(stride=(1, 2), padding=(1, 0), groups=2)),
    ((21, 2, 5, 5), (3, 2, 1, 1), dict(stride=2)),
    ((24, 4, 8, 8), (4, 1, 5, 5), dict(stride=3, padding=2, groups=4)),
    ((19, 3, 6, 6), (5, 3, 3, 3), dict(stride=2, dilation=2)),
    ((18, 2, 11, 4), (4, 2, 3, 1), dict(stride=(3, 1))),
    ((32, 32, 4, 4), (32, 32, 3, 3), dict(stride=2, padding=1)),  # chapter 8's strided layer
    ((40, 3, 9, 9), (2, 3, 7, 7), dict(padding=1)),  # the input wider than the outputs read
]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", SMALL_MAP_CASES, ids=str)
def test_small_maps_take_blocks_of_images(case, dtype, threads):
    x_shape, w_shape, kw = case
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    got = _conv_threads(threads, x, w, b, **kw)
    positions = got.shape[2] * got.shape[3]
    groups = kw.get("groups", 1)
    per_block, _ = algorithms._images_plan(
        x_shape[0], w_shape[1] * w_shape[2] * w_shape[3], positions, x.itemsize, groups
    )
    assert per_block >= algorithms.IMAGES_MIN_PER_BLOCK  # the case runs the path it is for
    want = convnd(*(a.astype(np.float64) for a in (x, w, b)), **kw)
    np.testing.assert_allclose(got, want, **tol(dtype))


def test_small_maps_allocate_only_what_workspace_nbytes_counts():
    """The small-map path's columns, products and copy of the images: within
    im2col_workspace_nbytes, which does not grow with the batch beyond a block per thread."""
    threads = min(2, numba.config.NUMBA_NUM_THREADS)
    rng = np.random.default_rng(10)
    x = rng.standard_normal((64, 32, 8, 8)).astype(np.float32)
    w = rng.standard_normal((48, 32, 3, 3)).astype(np.float32)
    peak, out = traced_peak(
        lambda: convlab.conv2d(x, w, stride=2, padding=1, algorithm="im2col"),
        thread_warmup=lambda: convlab.conv2d(x[:4], w, stride=2, padding=1, algorithm="im2col"),
        threads=threads,
    )
    space = algorithms.im2col_workspace_nbytes(
        64, 32, 48, (3, 3), (4, 4), 4, threads=threads, stride=(2, 2)
    )
    assert out.nbytes <= peak <= out.nbytes + space + 2**14
    assert algorithms._images_plan(64, 288, 16, 4)[0] >= algorithms.IMAGES_MIN_PER_BLOCK
    sizes = [
        algorithms.im2col_workspace_nbytes(n, 32, 48, (3, 3), (4, 4), 4, threads=2, stride=(2, 2))
        for n in (64, 1024)
    ]
    assert sizes[0] == sizes[1]  # bounded: larger batches take more blocks, not larger ones


@pytest.mark.parametrize("k_rows, positions", [(1152, 16), (288, 4), (576, 36), (27, 49)])
def test_small_map_blocks_are_even(k_rows, positions):
    """The images of a batch go into blocks of one size (the last at most one image per block
    short), not into full blocks and a remainder that leaves one thread with less work."""
    for batch in range(2, 300):
        per_block, cols = algorithms._images_plan(batch, k_rows, positions, 4)
        if not per_block:
            continue
        blocks = -(-batch // per_block)
        assert per_block >= algorithms.IMAGES_MIN_PER_BLOCK and cols == per_block * positions
        assert blocks * per_block - batch < blocks or per_block == algorithms.IMAGES_MIN_PER_BLOCK
    assert algorithms._images_plan(128, 1152, 16, 4)[0] == 13  # 10 blocks, not 9 of 14 and 2
